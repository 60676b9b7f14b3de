"""Two gateway processes sharing one real ``redis-server``: one tenant quota, as the
upstream counts arrivals, and one cache.

The two processes and their upstream are started once for this module (starting a
process is most of these tests' cost); the tests stay apart by tenant and model: the
quota test spends team-a's quota on model ``fast``, the cache test asks team-b's
model ``other``, which alone has the cache.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator

import openai
import pytest
from redis import Redis

from llmfast.testing import MockServer

from .conftest import TEAM_A_KEY, TEAM_B_KEY, UPSTREAM_KEY, standard_config
from .test_serve_command import REPO_ROOT


@pytest.fixture(scope="module")
def module_upstream() -> Iterator[MockServer]:
    with MockServer.in_thread() as running:
        yield running


@pytest.fixture(scope="module")
def two_gateways(
    module_upstream: MockServer, tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> Iterator[list[str]]:
    with Redis.from_url(redis_url) as redis:
        redis.flushdb()  # the server is shared by the session's tests
    config = (
        standard_config(module_upstream)
        .replace('key_env = "TEAM_A_KEY"', 'key_env = "TEAM_A_KEY"\nrpm = 10')
        .replace("grace = 5", 'grace = 5\nredis_url_env = "GATEWAY_REDIS_URL"')
        .replace("[models.other]", "[models.other]\ncache = true")
    )
    path = tmp_path_factory.mktemp("gateways") / "gateway.toml"
    path.write_text(config)
    env = {
        **os.environ,
        "UPSTREAM_KEY": UPSTREAM_KEY,
        "TEAM_A_KEY": TEAM_A_KEY,
        "TEAM_B_KEY": TEAM_B_KEY,
        "GATEWAY_REDIS_URL": redis_url,
    }
    command = [sys.executable, "-m", "llmfast", "serve", "--config", str(path)]
    processes = [  # side by side: each start is mostly imports
        subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        for _ in range(2)
    ]
    try:
        urls = []
        for process in processes:
            assert process.stdout is not None
            line = process.stdout.readline()  # b"" if it exits instead
            assert line.startswith(b"llmfast gateway on "), line
            urls.append(line.split()[3].decode())
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
            if process.stdout is not None:
                process.stdout.close()


@pytest.fixture
def upstream_of_gateways(module_upstream: MockServer) -> MockServer:
    module_upstream.reset()
    return module_upstream


async def test_two_processes_share_one_tenant_quota(
    two_gateways: list[str], upstream_of_gateways: MockServer
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
    assert upstream_of_gateways.request_count == 10  # ... and no more reaches the upstream
    assert outcomes.count("limited") == 20


async def test_one_cache_for_every_process(
    two_gateways: list[str], upstream_of_gateways: MockServer, redis_url: str
) -> None:
    replies = []
    for url in two_gateways:
        async with openai.AsyncOpenAI(base_url=url, api_key=TEAM_B_KEY, max_retries=0) as client:
            reply = await client.chat.completions.create(
                model="other",
                temperature=0,
                messages=[{"role": "user", "content": "same question"}],
            )
            replies.append(reply.choices[0].message.content)
    assert replies == ["same question"] * 2
    assert upstream_of_gateways.request_count == 1  # the second answered from the shared cache
    assert redis_url not in str(replies)
