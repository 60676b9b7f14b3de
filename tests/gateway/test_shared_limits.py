"""Two gateway processes sharing one real ``redis-server``: one tenant quota, as the
upstream counts arrivals, one cache, and one upstream call for identical calls in flight.

The two processes and their upstream are started once for this module (starting a
process is most of these tests' cost); the tests stay apart by tenant and model: the
quota test spends team-a's quota on model ``fast``, the others ask team-b's model
``other``, which alone caches and coalesces, each with its own question.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam
from redis import Redis

from llmfast.testing import MockServer, Reply

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
        .replace("[models.other]", "[models.other]\ncache = true\ncoalesce = true")
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


async def test_identical_calls_in_flight_on_two_processes_make_one_upstream_call(
    two_gateways: list[str], upstream_of_gateways: MockServer
) -> None:
    upstream = upstream_of_gateways
    upstream.enqueue(Reply.text("one answer for all", delay=0.3))
    upstream.enqueue(Reply.text("one stream for all", chunk_size=1, token_delay=0.02, delay=0.3))
    clients = [
        openai.AsyncOpenAI(base_url=url, api_key=TEAM_B_KEY, max_retries=0)
        for url in two_gateways * 2
    ]
    question: list[ChatCompletionMessageParam] = [{"role": "user", "content": "the same question"}]

    async def ask(client: openai.AsyncOpenAI) -> tuple[str | None, str | None]:
        reply = await client.chat.completions.create(
            model="other",
            temperature=0,
            messages=question,
        )
        return reply.id, reply.choices[0].message.content

    async def stream(client: openai.AsyncOpenAI) -> str:
        chunks = await client.chat.completions.create(
            model="other",
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
