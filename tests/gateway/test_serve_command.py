"""``llmfast serve`` as a process: it starts from a config file, answers, logs JSON
lines, and on SIGTERM stops listening and lets in-flight streams finish before it exits."""

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

from llmfast.cli import main as cli_main
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


async def test_sigterm_during_50_streams_lets_them_finish(
    served: tuple[asyncio.subprocess.Process, str], upstream: MockServer
) -> None:
    process, url = served
    words = [f"w{i} " for i in range(12)]
    for _ in range(50):  # ~1.2 s each: still going while the test checks the drain
        upstream.enqueue(Reply.text("".join(words), chunk_size=3, token_delay=0.1))
    started = 0
    all_started = asyncio.Event()
    async with openai.AsyncOpenAI(base_url=url, api_key=TEAM_A_KEY, max_retries=0) as client:

        async def one() -> str:
            nonlocal started
            stream = await client.chat.completions.create(
                model="fast", messages=[{"role": "user", "content": "x"}], stream=True
            )
            parts: list[str] = []
            async for chunk in stream:
                text = chunk.choices[0].delta.content if chunk.choices else None
                if text:
                    if not parts:
                        started += 1
                        if started == 50:
                            all_started.set()
                    parts.append(text)
            return "".join(parts)

        calls = [asyncio.create_task(one()) for _ in range(50)]
        await asyncio.wait_for(all_started.wait(), timeout=20)  # every stream is mid-way
        process.send_signal(signal.SIGTERM)
        signalled = asyncio.get_running_loop().time()
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=10)
        assert line.startswith(b"stopped listening"), line
        with pytest.raises(openai.APIConnectionError):  # a new call is refused at once
            await client.chat.completions.create(
                model="fast", messages=[{"role": "user", "content": "late"}]
            )
        texts = await asyncio.gather(*calls)
    assert texts == ["".join(words)] * 50
    assert await asyncio.wait_for(process.wait(), timeout=10) == 0
    assert asyncio.get_running_loop().time() - signalled < 5  # within the grace period
    assert process.stderr is not None
    logged = [
        json.loads(line)
        for line in (await process.stderr.read()).splitlines()
        if line.startswith(b"{")
    ]
    assert [entry["status"] for entry in logged] == [200] * 50
    assert {entry["tenant"] for entry in logged} == {"team-a"}
    assert upstream.request_count == 50  # the late call never reached it


def test_a_bad_config_is_refused_at_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text('[models.x]\n[[models.x.deployments]]\nprovider = "nope"\nmodel = "m"\n')
    assert cli_main(["serve", "--config", str(path)]) == 2  # the console script's entry
    err = capsys.readouterr().err
    assert f"{path}:3: models.x.deployments.0.provider: unknown provider 'nope'" in err


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
        assert process.stdout is not None  # the worker writes to the same stdout
        line = await asyncio.wait_for(process.stdout.readline(), timeout=30)
        assert line.startswith(b"llmfast gateway on "), line
        pids: set[int] = set()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s:
            for _ in range(64):  # each a new connection, landing on either listener
                async with s.get(url.removesuffix("/v1") + "/health") as response:
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
