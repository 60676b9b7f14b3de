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
from typing import Any

import pytest

import llmfast
from llmfast import Client
from llmfast.layers.ratelimit import RateLimit, RateLimitLayer
from llmfast.limits import RedisBudget, RedisLimitStore
from llmfast.testing import MockServer, Reply
from tests.redis_server import redis_process, running_redis


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


@pytest.mark.parametrize("margin", [0.0, 0.5])
async def test_a_streams_usage_corrects_the_shared_token_count(
    server: MockServer, redis_url: str, key: str, margin: float
) -> None:
    store = RedisLimitStore(redis_url, key=key)
    options: dict[str, Any] = {"tpm": 100, "period": 30, "margin": margin}
    async with client(server, store, estimator=lambda body: 50, **options) as c:
        async with c.stream("two words") as stream:  # 50 estimated, 4 used at its end
            async for _ in stream:
                pass
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
        assert first is not None
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
        assert budget.local_limits == (2, None)  # half of rpm=4 in this process...
        with pytest.raises(llmfast.QueueTimeout):
            await c.chat("local 2")  # ...and the call Redis admitted is still in the window
        assert layer_of(c).available_requests == 0
    assert server.request_count == 2


async def test_the_fallback_takes_this_process_share_of_what_redis_last_showed(
    server: MockServer, key: str
) -> None:
    with running_redis() as url:
        other = client(server, RedisLimitStore(url, key=key), rpm=10, period=30)
        store = RedisLimitStore(url, key=key, on_error="local")  # the default share
        c = client(server, store, rpm=10, period=30, max_wait=0)
        async with other:
            for i in range(6):
                await other.chat(f"another process {i}")
        for i in range(2):
            await c.chat(f"this process {i}")  # Redis saw 8 in the window, 2 of them ours
    async with c:
        with pytest.raises(llmfast.QueueTimeout):
            await c.chat("local")  # its share is 2 of 10, and both are still in the window
        budget = layer_of(c).budget
        assert isinstance(budget, RedisBudget)
        assert budget.local_limits == (2, None)  # 10 * 2 / 8, rounded down
    assert server.request_count == 8


async def test_back_on_redis_a_process_keeps_to_its_share_for_a_period(
    server: MockServer, key: str
) -> None:
    """Redis comes back empty (restarted): for a period the local window still counts,
    so the local admissions and the fresh Redis window together stay within the limit."""
    with redis_process() as first:
        store = RedisLimitStore(first.url, key=key, on_error="local", local_fraction=0.5)
        store.retry_interval = 0  # try Redis again at once
        c = client(server, store, rpm=4, period=30, max_wait=0)
        await c.chat("while redis is up")
    async with c:
        await c.chat("local")  # 2 of 2 in this process's window
        port = int(first.url.rsplit(":", 1)[1].split("/")[0])
        with redis_process(port) as second:
            with pytest.raises(llmfast.QueueTimeout):
                await c.chat("back on redis")  # an empty Redis would have let it in
            budget = layer_of(c).budget
            assert isinstance(budget, RedisBudget)
            assert not budget.on_local_limits
            assert second.process.poll() is None
    assert server.request_count == 2


async def test_an_admission_counts_from_its_reply_not_its_margin(redis_url: str, key: str) -> None:
    """Scored ``margin`` late at admission, then settled back to when the reply came."""
    budgets = [
        RedisLimitStore(redis_url, key=f"{key}-{i}").budget(
            requests=1, tokens=100, period=0.5, clock=time.monotonic, margin=0.3
        )
        for i in range(2)
    ]
    try:
        settled, unsettled = budgets
        wait, ticket = await settled.reserve(40)
        assert wait == 0
        await settled.settle(ticket, -30)  # the reply is in, and it used 10 tokens
        assert 0.3 < (await settled.reserve(1))[0] <= 0.5
        assert settled.available_tokens == 90  # the refund landed
        assert (await unsettled.reserve(40))[0] == 0
        assert 0.6 < (await unsettled.reserve(1))[0] <= 0.8  # margin and period
    finally:
        for budget in budgets:
            await budget.aclose()


def test_redis_store_settings_are_checked() -> None:
    with pytest.raises(llmfast.ConfigurationError):
        RedisLimitStore("redis://x", key="")
    with pytest.raises(llmfast.ConfigurationError):
        RedisLimitStore("redis://x", key="k", on_error="ignore")  # type: ignore[arg-type]
    with pytest.raises(llmfast.ConfigurationError):
        RedisLimitStore("redis://x", key="k", local_fraction=0)
    with pytest.raises(llmfast.ConfigurationError):
        RateLimit(rpm=1, period=1, margin=1)
    with pytest.raises(llmfast.ConfigurationError):
        RateLimit(concurrency=2, store=RedisLimitStore("redis://x", key="k"))


# --- done when: a fleet of four processes, as the server counts arrivals -------------

_WORKER = """
import asyncio, json, sys, time
import llmfast
from llmfast.layers.ratelimit import RateLimit
from llmfast.limits import RedisLimitStore

async def main(url, redis_url, key, name, limit, period, run_for, workers, options):
    store = RedisLimitStore(redis_url, key=key, **options.pop("store", {}))
    config = RateLimit(rpm=limit, period=period, store=store, adaptive=False, **options)
    async with llmfast.Client(base_url=url, model="m", layers=[config]) as c:
        await c.warmup(1)  # imports what a call needs; the other connections open mid-run
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        end = time.monotonic() + run_for
        async def work():
            while time.monotonic() < end:
                await c.chat(name)
        tasks = [asyncio.ensure_future(work()) for _ in range(workers)]
        await asyncio.wait(tasks, timeout=run_for)
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        ok = (type(None), asyncio.CancelledError)
        errors = [repr(r) for r in results if not isinstance(r, ok)]
    print(json.dumps({"errors": errors}), flush=True)

asyncio.run(main(*sys.argv[1:5], int(sys.argv[5]), float(sys.argv[6]), float(sys.argv[7]),
                 int(sys.argv[8]), json.loads(sys.argv[9])))
"""

_CHAT = "/v1/chat/completions"


def busiest_window(stamps: list[float], length: float) -> int:
    """The most stamps in any half-open window ``[t, t + length)``, wherever it starts."""
    busiest, start = 0, 0
    for end, stamp in enumerate(stamps):
        while stamps[start] <= stamp - length:
            start += 1
        busiest = max(busiest, end - start + 1)
    return busiest


class Fleet:
    """Four worker processes sharing one key; ``go()`` runs them for ``run_for`` seconds."""

    def __init__(self, server: MockServer, redis_url: str, key: str, **options: Any) -> None:
        self.server, self.redis_url, self.key, self.options = server, redis_url, key, options
        self.processes: list[asyncio.subprocess.Process] = []

    async def start(self, limit: int, period: float, run_for: float, workers: int) -> None:
        for i in range(4):
            args = [self.server.url, self.redis_url, self.key, f"p{i}", str(limit), str(period)]
            args += [str(run_for), str(workers), json.dumps(self.options)]
            self.processes.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-c",
                    _WORKER,
                    *args,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                )
            )
        for process in self.processes:
            assert process.stdout is not None
            assert await asyncio.wait_for(process.stdout.readline(), 30) == b"ready\n"

    async def run(self) -> list[list[str]]:
        """Start them all at once; the errors each one met."""
        outputs = await asyncio.wait_for(
            asyncio.gather(*(p.communicate(b"go\n") for p in self.processes)), 60
        )
        return [json.loads(out.splitlines()[-1])["errors"] for out, _ in outputs]

    async def stop(self) -> None:
        for process in self.processes:
            if process.returncode is None:
                process.kill()
                await process.wait()


# Each request counts from when its reply is in, or from its admission plus the margin
# if that is sooner. A cold pool opens its connections during the first burst, which on
# a loaded two-core machine can hold a request back 100-150 ms: a margin of 0.25 s covers
# it and costs nothing here, as every reply is in within a few ms.
_MARGIN = 0.25


async def test_four_processes_never_exceed_the_limit_as_the_server_counts(
    server: MockServer, redis_url: str, key: str
) -> None:
    """Done-when: arrivals at the server, in any window (not just aligned ones)."""
    limit, period, periods, workers = 40, 1.0, 4, 8
    fleet = Fleet(server, redis_url, key, margin=_MARGIN)
    try:
        await fleet.start(limit, period, periods + 0.5, workers)
        server.reset()  # forget the warm-up
        assert await fleet.run() == [[], [], [], []]
    finally:
        await fleet.stop()
    arrived = server.arrivals(_CHAT)

    # Never more than the limit in any window, as the server clocked the arrivals.
    assert busiest_window(arrived, period) <= limit
    # Together they use at least 90% of it, window after window.
    first = arrived[0]
    for window in range(periods):
        low, high = first + window * period, first + (window + 1) * period
        assert sum(low <= t < high for t in arrived) >= 0.9 * limit, window
    # Every process got its share.
    senders = {r.json["messages"][0]["content"] for r in server.requests if r.path == _CHAT}
    assert senders == {"p0", "p1", "p2", "p3"}


async def test_when_redis_dies_mid_run_the_fleet_stays_within_the_documented_worst_case(
    server: MockServer, key: str
) -> None:
    """Redis is stopped after 1.5 periods; each process goes on with its own share of
    the fleet's usage, starting from its own admissions still in the window. The
    documented worst case with the default share: the limit plus one per process."""
    limit, period, periods, workers = 40, 1.0, 4, 8
    with redis_process() as redis:
        store = {"on_error": "local", "retry_interval": 30}  # Redis does not come back
        fleet = Fleet(server, redis.url, key, margin=_MARGIN, store=store)
        try:
            await fleet.start(limit, period, periods + 0.5, workers)
            server.reset()
            running = asyncio.ensure_future(fleet.run())
            await server.wait_for_requests(limit + limit // 2, timeout=30)
            stopped = time.monotonic()
            await asyncio.to_thread(redis.stop)
            assert await running == [[], [], [], []]
        finally:
            await fleet.stop()
    arrived = server.arrivals(_CHAT)
    assert busiest_window(arrived, period) <= limit + 4
    # ...and the fleet went on, on its local shares (measured: 28-40 a period; a
    # process may first wait out a Redis timeout).
    after = [t for t in arrived if t >= stopped]
    assert len(after) >= 0.5 * limit * (arrived[-1] - stopped) / period
