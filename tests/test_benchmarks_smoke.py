"""The benchmark still works: one short worker run, and nginx's fixed replies.

Not a benchmark: it checks that ``benchmarks/worker.py`` measures a real run and that
``benchmarks/nginx/nginx.conf`` serves what the llmfast mock server serves.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import aiohttp
import pytest

import llmfast
from llmfast.testing import MockServer

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = REPO_ROOT / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from clients import DIMENSIONS, EMBED_MODEL, MAX_TOKENS, MODEL, PROMPT, TEXTS  # noqa: E402
from servers import (  # noqa: E402
    Server,
    capture_replies,
    find_nginx,
    nginx_server,
    paced_server,
)


@pytest.mark.parametrize(("client", "mode"), [("llmfast", "stream"), ("raw", "embed")])
async def test_worker_measures_a_short_run(client: str, mode: str) -> None:
    async with MockServer(record=False) as server:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(BENCHMARKS / "worker.py"),
            *("--client", client, "--url", server.url, "--mode", mode),
            *("--concurrency", "4", "--duration", "0.3", "--warmup", "0.1"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=REPO_ROOT,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    result = json.loads(out.decode().splitlines()[-1])
    assert (result["client"], result["mode"], result["concurrency"]) == (client, mode, 4)
    assert result["requests"] > 0
    assert result["cpu_us_per_request"] > 0
    assert 0 < result["p50_ms"] <= result["p99_ms"]
    assert result["peak_rss_mb"] > 10  # an interpreter with aiohttp loaded
    if mode == "stream":
        assert result["chunks"] >= 3 * result["requests"]  # role, content..., finish, usage
        assert result["reply_chars"] > 0


async def test_fixed_calls_makes_its_calls() -> None:
    """What ``stream_floor.py --callgrind`` runs under valgrind: exactly ``--calls`` calls."""
    async with MockServer() as server:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(BENCHMARKS / "fixed_calls.py"),
            *("--client", "llmfast", "--url", server.url, "--mode", "stream"),
            *("--concurrency", "3", "--calls", "7"),
            stderr=asyncio.subprocess.PIPE,
            cwd=REPO_ROOT,
        )
        _, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err.decode()
        assert server.request_count == 7


@pytest.fixture
def nginx_path() -> str:
    path = find_nginx()
    if path is None:
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    return path


async def test_nginx_serves_the_mock_servers_replies(nginx_path: str) -> None:
    async with MockServer(record=False) as mock:
        replies = await asyncio.to_thread(capture_replies, mock.url)
        with nginx_server(replies, nginx_path) as server:
            assert isinstance(server, Server)
            async with llmfast.Client(base_url=server.url, api_key="sk-x", model=MODEL) as c:
                reply = await c.chat(PROMPT, max_tokens=MAX_TOKENS)
                vectors = (await c.embed(TEXTS, model=EMBED_MODEL, dimensions=DIMENSIONS)).vectors
            stream_client = llmfast.Client(base_url=server.stream_url, api_key="sk-x", model=MODEL)
            async with stream_client, stream_client.stream(PROMPT) as stream:
                chunks = [chunk async for chunk in stream]
            async with llmfast.Client(base_url=mock.url, api_key="sk-x", model=MODEL) as c:
                expected = await c.chat(PROMPT, max_tokens=MAX_TOKENS)
    assert reply.text == expected.text == PROMPT  # the mock server echoes by default
    assert [len(v) for v in vectors] == [DIMENSIONS] * len(TEXTS)
    assert stream.completion.text == PROMPT
    assert len(chunks) >= 3
    assert server.url_for("stream") == server.stream_url != server.url_for("chat")


async def test_paced_upstream_streams_the_replies_an_event_at_a_time() -> None:
    """``gateway_overhead.py --pace``'s upstream: the same bytes, a stream's events in
    sends of their own (so a reader gets them in several reads), the other replies whole."""
    async with MockServer(record=False) as mock:
        replies = await asyncio.to_thread(capture_replies, mock.url)
    events = replies["stream.sse"].count(b"\n\n")
    with paced_server(replies, 0.01) as server:
        body = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}]}
        async with aiohttp.ClientSession() as session:
            url = server.stream_url + "/chat/completions"
            async with session.post(url, json={**body, "stream": True}) as response:
                assert response.content_type == "text/event-stream"
                reads = [data async for data in response.content.iter_any()]
            async with session.post(server.url + "/chat/completions", json=body) as response:
                chat = await response.read()
            async with session.post(server.url + "/nowhere", json=body) as response:
                assert response.status == 404
        client = llmfast.Client(base_url=server.stream_url, api_key="sk-x", model=MODEL)
        async with client, client.stream(PROMPT) as stream:
            async for _ in stream:
                pass
    assert b"".join(reads) == replies["stream.sse"]
    assert events > 3
    assert 1 < len(reads) <= events
    assert chat == replies["chat.json"]
    assert stream.completion.text == PROMPT


def test_long_line_benchmark_runs() -> None:
    import long_line  # benchmarks/long_line.py: a 1 MiB line here, to keep the suite fast

    assert long_line.main(["--mib", "1", "--repeats", "1"]) == 0
