"""``llmfast serve`` as a process: it starts from a config file, answers, logs JSON
lines, and on SIGTERM lets in-flight streams finish before it exits."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import openai
import pytest

from llmfast.testing import MockServer, Reply

from .conftest import TEAM_A_KEY, standard_config

REPO_ROOT = Path(__file__).resolve().parents[2]


async def start(*args: str) -> tuple[asyncio.subprocess.Process, str]:
    """Start ``llmfast serve ARGS``; returns the process and its /v1 URL."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "llmfast",
        "serve",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO_ROOT,
        env=os.environ.copy(),
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), timeout=30)
    assert line.startswith(b"llmfast gateway on "), line
    return process, line.split()[3].decode()


@pytest.fixture
async def served(
    upstream: MockServer, tmp_path: Path
) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    path = tmp_path / "gateway.toml"
    path.write_text(standard_config(upstream))
    process, url = await start("--config", str(path))
    try:
        yield process, url
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def test_sigterm_lets_streams_in_flight_finish(
    served: tuple[asyncio.subprocess.Process, str], upstream: MockServer
) -> None:
    process, url = served
    for _ in range(5):
        upstream.enqueue(Reply.text("a b c d e f", chunk_size=1, token_delay=0.05))
    async with openai.AsyncOpenAI(base_url=url, api_key=TEAM_A_KEY, max_retries=0) as client:

        async def one() -> str:
            stream = await client.chat.completions.create(
                model="fast", messages=[{"role": "user", "content": "x"}], stream=True
            )
            return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

        calls = [asyncio.create_task(one()) for _ in range(5)]
        await upstream.wait_for_requests(5, timeout=10)
        process.send_signal(signal.SIGTERM)
        texts = await asyncio.gather(*calls)
    assert texts == ["a b c d e f"] * 5
    assert await asyncio.wait_for(process.wait(), timeout=30) == 0
    assert process.stderr is not None
    logged = [
        json.loads(line)
        for line in (await process.stderr.read()).splitlines()
        if line.startswith(b"{")
    ]
    assert [entry["status"] for entry in logged] == [200] * 5
    assert {entry["tenant"] for entry in logged} == {"team-a"}


async def test_a_bad_config_is_refused_at_start(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text('[models.x]\n[[models.x.deployments]]\nprovider = "nope"\nmodel = "m"\n')
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "llmfast",
        "serve",
        "--config",
        str(path),
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO_ROOT,
    )
    _, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 2
    assert f"{path}:3: models.x.deployments.0.provider: unknown provider 'nope'" in err.decode()


async def test_serve_mock_answers_out_of_the_box() -> None:
    process, url = await start("--mock", "--listen", "127.0.0.1:0")
    try:
        async with openai.AsyncOpenAI(base_url=url, api_key="any", max_retries=0) as client:
            reply = await client.chat.completions.create(
                model="mock", messages=[{"role": "user", "content": "try it out"}]
            )
        assert reply.choices[0].message.content == "try it out"
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=30) == 0


async def test_workers_share_one_port(upstream: MockServer, tmp_path: Path) -> None:
    port = _free_port()
    path = tmp_path / "gateway.toml"
    path.write_text(standard_config(upstream).replace("127.0.0.1:0", f"127.0.0.1:{port}"))
    process, url = await start("--config", str(path), "--workers", "2")
    try:
        pids: set[int] = set()
        deadline = asyncio.get_running_loop().time() + 30  # the second one may start later
        while asyncio.get_running_loop().time() < deadline:  # new connections land on either
            async with (
                aiohttp.ClientSession() as session,
                session.get(url.removesuffix("/v1") + "/health") as response,
            ):
                pids.add((await response.json())["pid"])
            if len(pids) == 2:
                break
        assert len(pids) == 2
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=30) == 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
