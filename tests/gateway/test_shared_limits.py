"""Two gateway processes sharing one real ``redis-server``: one tenant quota, as the
upstream counts arrivals, one cache, and one upstream call for identical calls in flight."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam
from redis.asyncio import Redis

from llmfast.testing import MockServer, Reply

from .conftest import TEAM_A_KEY, standard_config
from .test_serve_command import start


@pytest.fixture
async def two_gateways(
    upstream: MockServer, tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[list[str]]:
    monkeypatch.setenv("GATEWAY_REDIS_URL", redis_url)
    redis = Redis.from_url(redis_url)
    await redis.flushdb()  # the server is shared by the session's tests
    await redis.aclose()
    config = (
        standard_config(upstream, model_extra="cache = true\ncoalesce = true")
        .replace('key_env = "TEAM_A_KEY"', 'key_env = "TEAM_A_KEY"\nrpm = 10')
        .replace("grace = 5", 'grace = 5\nredis_url_env = "GATEWAY_REDIS_URL"')
    )
    path = tmp_path / "gateway.toml"
    path.write_text(config)
    processes: list[tuple[asyncio.subprocess.Process, str]] = []
    try:
        processes.append(await start("--config", str(path)))
        processes.append(await start("--config", str(path)))
        yield [url for _, url in processes]
    finally:
        for process, _ in processes:
            if process.returncode is None:
                process.terminate()
        for process, _ in processes:
            await process.wait()


async def test_two_processes_share_one_tenant_quota(
    two_gateways: list[str], upstream: MockServer
) -> None:
    clients = [
        openai.AsyncOpenAI(base_url=url, api_key=TEAM_A_KEY, max_retries=0) for url in two_gateways
    ]

    async def one(index: int) -> str:
        client = clients[index % 2]
        try:
            await client.chat.completions.create(
                model="fast",
                temperature=1.0,  # not cacheable: every call is one upstream call
                messages=[{"role": "user", "content": f"call {index}"}],
            )
        except openai.RateLimitError:
            return "limited"
        return "ok"

    try:
        outcomes = await asyncio.gather(*(one(i) for i in range(30)))
    finally:
        for client in clients:
            await client.close()
    assert outcomes.count("ok") == 10  # all of the quota is used ...
    assert upstream.request_count == 10  # ... and no more reaches the upstream
    assert outcomes.count("limited") == 20


async def test_one_cache_for_every_process(two_gateways: list[str], upstream: MockServer) -> None:
    replies = []
    for url in two_gateways:
        async with openai.AsyncOpenAI(base_url=url, api_key=TEAM_A_KEY, max_retries=0) as client:
            reply = await client.chat.completions.create(
                model="fast", temperature=0, messages=[{"role": "user", "content": "same question"}]
            )
            replies.append(reply.choices[0].message.content)
    assert replies == ["same question"] * 2
    assert upstream.request_count == 1  # the second process answered from the shared cache
    assert os.environ["GATEWAY_REDIS_URL"] not in str(replies)


async def test_identical_calls_in_flight_on_two_processes_make_one_upstream_call(
    two_gateways: list[str], upstream: MockServer
) -> None:
    upstream.enqueue(Reply.text("one answer for all", delay=0.3))
    upstream.enqueue(Reply.text("one stream for all", chunk_size=1, token_delay=0.02, delay=0.3))
    clients = [
        openai.AsyncOpenAI(base_url=url, api_key=TEAM_A_KEY, max_retries=0)
        for url in two_gateways * 2
    ]
    question: list[ChatCompletionMessageParam] = [{"role": "user", "content": "the same question"}]

    async def ask(client: openai.AsyncOpenAI) -> tuple[str | None, str | None]:
        reply = await client.chat.completions.create(
            model="fast",
            temperature=0,
            messages=question,
        )
        return reply.id, reply.choices[0].message.content

    async def stream(client: openai.AsyncOpenAI) -> str:
        chunks = await client.chat.completions.create(
            model="fast",
            temperature=0,
            messages=question,
            stream=True,
        )
        return "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])

    try:
        first = asyncio.ensure_future(ask(clients[0]))
        await upstream.wait_for_requests(1)
        replies = await asyncio.gather(first, *(ask(c) for c in clients[1:]))
        opened = asyncio.ensure_future(stream(clients[1]))
        await upstream.wait_for_requests(2)
        texts = await asyncio.gather(opened, *(stream(c) for c in clients if c is not clients[1]))
    finally:
        for client in clients:
            await client.close()
    assert upstream.request_count == 2  # one plain call and one stream, for both processes
    assert all(reply == replies[0] for reply in replies)  # the same completion id
    assert replies[0][1] == "one answer for all"
    assert list(texts) == ["one stream for all"] * 4
