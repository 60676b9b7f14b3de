"""Two gateway processes sharing one real ``redis-server``: one tenant quota, as the
upstream counts arrivals, and one cache."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import openai
import pytest
from redis.asyncio import Redis

from llmfast.testing import MockServer

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
        standard_config(upstream, model_extra="cache = true")
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
