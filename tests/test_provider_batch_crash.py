"""A provider-batch run SIGKILLed at a named point (``$LLMFAST_BATCH_CRASH``: while
uploading, after the create call, while polling, while downloading) and run again:
every item's result is in the checkpoint exactly once and no item was ever in two
created batches (the mock server counts)."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from collections import Counter
from pathlib import Path

import msgspec
import pytest

from llmfast.batch.provider.engine import CRASH_ENV
from llmfast.testing import MockServer

ITEMS = 23
PER_BATCH = 5
CHILD = """
import asyncio, sys
from llmfast import Client
from llmfast.batch.provider import BatchLimits, ProviderBatchOptions

async def main(provider, url, checkpoint):
    limits = BatchLimits(PER_BATCH, 1 << 20, max_in_flight=2)
    options = ProviderBatchOptions(limits=limits, poll_interval=0.001)
    async with Client(provider=provider, base_url=url, api_key="sk-test", model="m") as client:
        prompts = [f"prompt {i}" for i in range(ITEMS)]
        batch = client.map(prompts, via="batch", checkpoint=checkpoint, ordered=False,
                           progress=False, batch_options=options)
        async for _ in batch:
            pass

asyncio.run(main(*sys.argv[1:4]))
""".replace("PER_BATCH", str(PER_BATCH)).replace("ITEMS", str(ITEMS))


def cases() -> list[tuple[str, str, int]]:
    """Each provider, each point, at an n-th occurrence drawn from a seed."""
    rng = random.Random(17)
    most = {"upload": 5, "create": 5, "poll": 8, "download": ITEMS}
    return [
        (provider, point, rng.randint(1, most[point]))
        for provider in ("openai", "anthropic")
        for point in ("upload", "create", "poll", "download")
    ]


async def run_child(server: MockServer, provider: str, checkpoint: Path, crash: str) -> int:
    env = {CRASH_ENV: crash} if crash else {}

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        provider,
        server.url_for(provider),
        str(checkpoint),
        env={**os.environ, **env},
    )
    return await asyncio.wait_for(process.wait(), 60)


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
