"""Not a benchmark: ``benchmarks/responses_stream.py``'s worker measures a real run of
the Responses backend against the test server (the CPU per stream it reports is real)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from llmfast.testing import MockServer

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "responses_stream.py"


@pytest.mark.parametrize("client", ["llmfast", "raw_typed"])
async def test_the_worker_measures_a_short_run(client: str) -> None:
    async with MockServer() as server:
        command = [sys.executable, str(SCRIPT), "--worker", client, "--url", server.url]
        command += ["--concurrency", "2", "--duration", "0.1", "--warmup", "0.05"]
        proc = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()[-2000:]
    result = json.loads(out.decode().strip().splitlines()[-1])
    assert result["streams"] > 0
    assert result["cpu_us_per_stream"] > 0
    assert server.request_count >= result["streams"]


async def test_the_callgrind_worker_runs_a_fixed_number_of_streams() -> None:
    async with MockServer() as server:
        command = [sys.executable, str(SCRIPT), "--worker", "llmfast", "--url", server.url]
        command += ["--concurrency", "2", "--fixed-streams", "3", "--warmup-streams", "2"]
        proc = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert json.loads(out.decode().strip().splitlines()[-1]) == {"streams": 3}
    assert server.request_count == 5  # the warm-up's two, then exactly three
