"""benchmarks/facade_overhead.py still measures: one short run of its facade worker."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from llmfast.testing import MockServer

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "benchmarks" / "facade_overhead.py"


async def test_the_facade_worker_measures_a_short_stream_run() -> None:
    async with MockServer(record=False) as server:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(SCRIPT),
            *("--worker", "--client", "facade", "--url", server.url, "--mode", "stream"),
            *("--concurrency", "2", "--duration", "0.3", "--warmup", "0.1"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=REPO_ROOT,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    result = json.loads(out.decode().splitlines()[-1])
    assert (result["client"], result["mode"]) == ("facade", "stream")
    assert result["requests"] > 0
    assert result["chunks"] >= 3 * result["requests"]  # role, content..., finish, usage
    assert result["reply_chars"] > 0
