"""A Budget shared through a real redis-server: by four processes, and when Redis is
unreachable (the same policy as the shared rate limits)."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import AsyncIterator

import pytest

import llmfast
from llmfast import Budget, BudgetExceededError, Client
from llmfast.limits import RedisLimitStore
from llmfast.testing import MockServer
from tests.redis_server import running_redis


@pytest.fixture
async def server() -> AsyncIterator[MockServer]:
    async with MockServer() as server:
        yield server


@pytest.fixture
def key() -> str:
    return f"test-{uuid.uuid4().hex}"


_ESTIMATE = 12  # tokens per request; the server reports 3-5 (a word or two in and out)

_WORKER = """
import asyncio, json, sys
import llmfast
from llmfast.limits import RedisLimitStore

async def main(url, redis_url, key, name, limit, estimate):
    store = RedisLimitStore(redis_url, key=key)
    budget = llmfast.Budget(tokens=limit, name="fleet", store=store, estimator=lambda b: estimate)
    spent, refused = [], 0
    async with llmfast.Client(base_url=url, api_key="k", model="m", layers=[budget]) as c:
        await c.warmup(1)
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        async def work():
            nonlocal refused
            while True:
                try:
                    reply = await c.chat(name + " word")
                except llmfast.BudgetExceededError:
                    refused += 1
                    return
                spent.append(reply.usage.total_tokens)
        await asyncio.gather(*(work() for _ in range(6)))
    print(json.dumps({"spent": spent, "refused": refused}), flush=True)

asyncio.run(main(*sys.argv[1:5], int(sys.argv[5]), int(sys.argv[6])))
"""


async def test_four_processes_never_overspend_a_shared_budget(
    server: MockServer, redis_url: str, key: str
) -> None:
    """Done-when: the usage the server reported, summed over the fleet, stays within the
    limit plus one request's estimate error, and every refused call was never sent."""
    limit = 600
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _WORKER,
            server.url,
            redis_url,
            key,
            f"p{i}",
            str(limit),
            str(_ESTIMATE),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        for i in range(4)
    ]
    try:
        for process in processes:
            assert process.stdout is not None
            assert await asyncio.wait_for(process.stdout.readline(), 30) == b"ready\n"
        server.reset()  # forget the warm-ups
        outputs = await asyncio.wait_for(
            asyncio.gather(*(p.communicate(b"go\n") for p in processes)), 60
        )
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()
    results = [json.loads(out.splitlines()[-1]) for out, _ in outputs]
    spent = [tokens for result in results for tokens in result["spent"]]
    # What the server reported for every request it answered, against the limit.
    worst_error = max(max(spent) - _ESTIMATE, 0)  # how far one request beat its estimate
    assert sum(spent) <= limit + worst_error
    assert sum(spent) > limit - 4 * 6 * _ESTIMATE  # and the budget was used up
    # Every call that was refused failed before its request was sent.
    assert server.request_count == len(spent)
    # Each worker stopped on the shared budget: unshared, four would have spent 4x the limit.
    # (How many of them got a share first is up to the scheduler, so it is not asserted.)
    assert all(result["refused"] == 6 for result in results)


async def test_an_unreachable_redis_fails_closed_or_falls_back_locally(
    server: MockServer, key: str
) -> None:
    with running_redis() as url:  # a port that had Redis and no longer has
        pass
    closed = Budget(tokens=100, store=RedisLimitStore(url, key=key, timeout=0.5))
    async with Client(base_url=server.url, api_key="k", model="m", layers=[closed]) as c:
        with pytest.raises(llmfast.LimiterUnavailableError):
            await c.chat("x")
    assert server.request_count == 0
    store = RedisLimitStore(url, key=key, on_error="local", local_fraction=0.5, timeout=0.5)
    local = Budget(tokens=100, store=store, estimator=lambda body: 30)
    async with Client(base_url=server.url, api_key="k", model="m", layers=[local]) as c:
        await c.chat("x")  # 30 of the local 50 reserved, then corrected to the usage
        with pytest.raises(BudgetExceededError):
            for _ in range(20):
                await c.chat("x")
    assert server.request_count >= 2  # spent against half the limit, in this process
