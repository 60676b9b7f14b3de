"""Limits shared through a real redis-server: across clients, processes and outages.

Redis keeps its own time, so these tests run on the real clock with short periods.
Every test uses its own key, so they share the session's redis-server safely.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

import llmfast
from llmfast import Client
from llmfast.layers.ratelimit import RateLimit, RateLimitLayer
from llmfast.limits import RedisBudget, RedisLimitStore
from llmfast.testing import MockServer, Reply
from tests.redis_server import running_redis


@pytest.fixture
async def server() -> AsyncIterator[MockServer]:
    async with MockServer() as server:
        yield server


@pytest.fixture
def key() -> str:
    return f"test-{uuid.uuid4().hex}"


def client(server: MockServer, store: RedisLimitStore, **options: Any) -> Client:
    options.setdefault("estimator", lambda body: 10)
    return Client(base_url=server.url, model="m", layers=[RateLimit(store=store, **options)])


def layer_of(client: Client) -> RateLimitLayer:
    transport = client._transport
    assert isinstance(transport, RateLimitLayer)
    return transport


async def test_two_clients_share_one_budget(server: MockServer, redis_url: str, key: str) -> None:
    store = RedisLimitStore(redis_url, key=key)
    async with (
        client(server, store, rpm=3, period=30, max_wait=0) as a,
        client(server, store, rpm=3, period=30, max_wait=0) as b,
    ):
        await a.chat("1")
        await b.chat("2")
        await a.chat("3")
        with pytest.raises(llmfast.QueueTimeout):
            await b.chat("4")  # the shared window is full for 30 s
        assert layer_of(a).available_requests == 0
        assert server.request_count == 3
        assert "store=RedisLimitStore(key='test-" in repr(a)


async def test_usage_corrects_the_shared_token_count(
    server: MockServer, redis_url: str, key: str
) -> None:
    store = RedisLimitStore(redis_url, key=key)
    async with client(server, store, tpm=100, period=30, estimator=lambda body: 50) as c:
        await c.chat("two words")  # 50 estimated, 4 used: 46 refunded in Redis
        await c.chat("two more")
        assert layer_of(c).available_tokens == 100 - 4 - 50  # as the second admission saw


async def test_a_429_pauses_every_process_sharing_the_key(
    server: MockServer, redis_url: str, key: str
) -> None:
    server.enqueue(Reply.error(429, retry_after=30))
    store = RedisLimitStore(redis_url, key=key)
    other = RedisLimitStore(redis_url, key=key + "-other")
    async with (
        client(server, store, rpm=100, max_wait=0) as a,
        client(server, store, rpm=100, max_wait=0) as b,
        client(server, other, rpm=100, max_wait=0) as c,
    ):
        with pytest.raises(llmfast.RateLimitError):
            await a.chat("refused")
        with pytest.raises(llmfast.QueueTimeout):
            await b.chat("paused too")  # b never saw the 429; Redis told it
        assert (await c.chat("another key")).text == "another key"
        assert server.request_count == 2


async def test_the_lua_window_waits_exactly_until_room(redis_url: str, key: str) -> None:
    store = RedisLimitStore(redis_url, key=key)
    budget = store.budget(requests=2, tokens=100, period=0.5, clock=time.monotonic)
    try:
        assert (await budget.reserve(40))[0] == 0
        wait, first = await budget.reserve(40)
        assert wait == 0
        assert isinstance(first, int)
        wait, nothing = await budget.reserve(30)  # 110 > 100: until the first 40 leave
        assert nothing is None
        assert 0.3 < wait <= 0.5
        await budget.correct(first, -20)  # now 60 used: 30 fits tokens, not requests
        wait, _ = await budget.reserve(30)
        assert 0.3 < wait <= 0.5
        assert budget.available_requests == 0
        assert budget.available_tokens == 40
        await asyncio.sleep(wait)  # the wait Redis asked for is enough
        assert (await budget.reserve(30))[0] == 0
    finally:
        await budget.aclose()


async def test_an_oversize_request_goes_alone_in_redis(redis_url: str, key: str) -> None:
    budget = RedisLimitStore(redis_url, key=key).budget(
        requests=None, tokens=10, period=0.3, clock=time.monotonic
    )
    try:
        assert (await budget.reserve(2))[0] == 0
        wait, _ = await budget.reserve(25)  # above the whole budget: once the window is empty
        assert 0.2 < wait <= 0.3
        await asyncio.sleep(wait)
        assert (await budget.reserve(25))[0] == 0
        wait, _ = await budget.reserve(1)  # and nothing else until it has left
        assert 0.2 < wait <= 0.3
    finally:
        await budget.aclose()


# --- Redis going away mid-run ----------------------------------------------------------


async def test_unreachable_redis_fails_closed(server: MockServer, key: str) -> None:
    with running_redis() as url:
        c = client(server, RedisLimitStore(url, key=key, timeout=0.5), rpm=10)
        await c.chat("while redis is up")
    async with c:  # redis-server has been stopped
        started = time.monotonic()
        with pytest.raises(llmfast.LimiterUnavailableError) as caught:
            await c.chat("now")
        assert time.monotonic() - started < 2
        assert layer_of(c).in_flight == 0
    assert "Redis" in str(caught.value)
    assert server.request_count == 1


async def test_unreachable_redis_can_fall_back_to_local_limits(
    server: MockServer, key: str
) -> None:
    with running_redis() as url:
        store = RedisLimitStore(url, key=key, on_error="local", local_fraction=0.5)
        c = client(server, store, rpm=4, period=30, max_wait=0)
        await c.chat("while redis is up")
    async with c:
        budget = layer_of(c).budget
        assert isinstance(budget, RedisBudget)
        await c.chat("local 1")
        assert budget.on_local_limits
        await c.chat("local 2")
        with pytest.raises(llmfast.QueueTimeout):
            await c.chat("local 3")  # half of rpm=4 in this process
        assert layer_of(c).available_requests == 0
    assert server.request_count == 3


def test_redis_store_settings_are_checked() -> None:
    with pytest.raises(llmfast.ConfigurationError):
        RedisLimitStore("redis://x", key="")
    with pytest.raises(llmfast.ConfigurationError):
        RedisLimitStore("redis://x", key="k", on_error="ignore")  # type: ignore[arg-type]
    with pytest.raises(llmfast.ConfigurationError):
        RedisLimitStore("redis://x", key="k", local_fraction=0)
    with pytest.raises(llmfast.ConfigurationError):
        RateLimit(concurrency=2, store=RedisLimitStore("redis://x", key="k"))


# --- done when: a fleet of four processes ------------------------------------------------

_WORKER = """
import asyncio, json, sys, time
import llmfast
from llmfast.layers.ratelimit import RateLimit
from llmfast.limits import RedisLimitStore

async def main(url, redis_url, key, limit, period, run_for, workers):
    sent, granted = [], []
    def record(event):  # the call is sent right after this
        if event.name == "ratelimit.wait":
            sent.append(time.time())
    store = RedisLimitStore(redis_url, key=key)
    config = RateLimit(rpm=limit, period=period, store=store, adaptive=False)
    async with llmfast.Client(base_url=url, model="m", layers=[config], on_event=record) as c:
        budget = config.layer.budget
        reserve = budget.reserve
        async def noting_reserve(tokens):  # notes Redis's own time of each grant
            wait, ticket = await reserve(tokens)
            if not wait:
                granted.append(ticket / 1e6)
            return wait, ticket
        budget.reserve = noting_reserve
        await c.warmup(workers)  # imports aiohttp now: it would block the loop mid-run
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        end = time.monotonic() + run_for
        async def work():
            while time.monotonic() < end:
                await c.chat("x")
        tasks = [asyncio.ensure_future(work()) for _ in range(workers)]
        await asyncio.wait(tasks, timeout=run_for)
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        ok = (type(None), asyncio.CancelledError)
        errors = [repr(r) for r in results if not isinstance(r, ok)]
    print(json.dumps({"sent": sent, "granted": granted, "errors": errors}), flush=True)

asyncio.run(main(*sys.argv[1:4], int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6]),
                 int(sys.argv[7])))
"""


def busiest_window(stamps: list[float], length: float) -> int:
    """The most stamps in any half-open window ``[t, t + length)``."""
    busiest, start = 0, 0
    for end, stamp in enumerate(stamps):
        while stamps[start] <= stamp - length:
            start += 1
        busiest = max(busiest, end - start + 1)
    return busiest


async def test_four_processes_never_exceed_the_shared_limit(
    server: MockServer, redis_url: str, key: str
) -> None:
    limit, period, run_for, workers = 50, 1.0, 2.3, 8
    args = [server.url, redis_url, key, str(limit), str(period), str(run_for), str(workers)]
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _WORKER,
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(4)
    ]
    try:
        for process in processes:
            assert process.stdout is not None
            assert await asyncio.wait_for(process.stdout.readline(), 30) == b"ready\n"
        warmed = server.request_count  # warm-up requests, before the limited run
        outputs = await asyncio.wait_for(
            asyncio.gather(*(p.communicate(b"go\n") for p in processes)), 30
        )
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()
    reports = [json.loads(out.splitlines()[-1]) for out, _ in outputs]
    assert [r["errors"] for r in reports] == [[], [], [], []]
    assert all(r["sent"] for r in reports)  # every process got its share
    sent = sorted(t for r in reports for t in r["sent"])
    granted = sorted(t for r in reports for t in r["granted"])
    assert len(sent) == len(granted)

    # Never more than N in any window: exactly, on the clock Redis granted them by...
    assert busiest_window(granted, period) <= limit
    # ...and as sent, each process noting the time a moment after Redis granted the call
    # (up to 100 ms later on a loaded machine: that much of a window is not counted).
    assert busiest_window(sent, period - 0.1) <= limit

    # Together they use at least 90% of it, window after window.
    first = sent[0]
    for window in range(2):
        low, high = first + window * period, first + (window + 1) * period
        assert sum(low <= t < high for t in sent) >= 0.9 * limit

    # The calls are real requests to a real server (the last few may be cancelled in
    # flight when the processes stop).
    assert len(sent) - 4 * workers <= server.request_count - warmed <= len(sent)
