"""A provider-batch run SIGKILLed at a named point (``crash.arm``, what
``$LLMFAST_BATCH_CRASH`` does: while
uploading, after the create call, while polling, while downloading) and run again:
every item's result is in the checkpoint exactly once and no item was ever in two
created batches (the mock server counts)."""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import signal
from collections import Counter
from pathlib import Path

import msgspec
import pytest

from llmfast.testing import MockServer
from tests import provider_batch_child as child
from tests.provider_batch_child import ITEMS, PER_BATCH

# Children fork from a server that imported llmfast once (not a fresh interpreter each).
_FORK = multiprocessing.get_context("forkserver")
_FORK.set_forkserver_preload(["tests.provider_batch_child"])


def cases() -> list[tuple[str, str, int]]:
    """Each provider, each point, at its first occurrence, its last, and one between
    drawn from a seed (5 batches: 5 uploads, creates and polls; 23 downloads)."""
    rng = random.Random(17)
    last = {"upload": 5, "create": 5, "poll": 5, "download": ITEMS}
    return [
        (provider, point, nth)
        for provider in ("openai", "anthropic")
        for point, most in last.items()
        for nth in (1, rng.randint(2, most - 1), most)
    ]


async def run_child(server: MockServer, provider: str, checkpoint: Path, crash: str) -> int:
    """Run the job in a child process; its exit code (``-SIGKILL`` when the crash hit)."""
    process = _FORK.Process(
        target=child.run, args=(provider, server.url_for(provider), str(checkpoint), crash)
    )
    process.start()
    await asyncio.to_thread(process.join, 60)
    code = process.exitcode
    if code is None:  # hung: never left running
        process.kill()
        await asyncio.to_thread(process.join)
    assert code is not None, "the child run did not end within 60 s"
    return code


@pytest.mark.parametrize(("provider", "point", "nth"), cases())
async def test_killed_at_any_point_resumes_exactly_once(
    provider: str, point: str, nth: int, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "run.jsonl"
    async with MockServer() as server:
        killed = await run_child(server, provider, checkpoint, f"{point}:{nth}")
        assert killed == -signal.SIGKILL  # the named point was reached
        assert await run_child(server, provider, checkpoint, "") == 0
        submitted = server.batches.items_submitted()
        created = server.batches.created
    records = [msgspec.json.decode(line) for line in checkpoint.read_bytes().splitlines()]
    successes = Counter(r["index"] for r in records if "completion" in r)
    assert successes == dict.fromkeys(range(ITEMS), 1)  # every result, exactly once
    assert all("error" not in r for r in records)
    assert submitted == dict.fromkeys(range(ITEMS), 1)  # never in two batches
    assert created == -(-ITEMS // PER_BATCH)
