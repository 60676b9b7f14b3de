"""Failover and load balancing across backends, each a real local server."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator

import pytest

import llmfast
from llmfast import Client, OpenAIBackend, Route, Router
from llmfast.layers import CircuitBreaker, Retry
from llmfast.testing import MockServer, Reply
from tests.fakeclock import FakeClock


@pytest.fixture
async def servers() -> AsyncIterator[tuple[MockServer, MockServer]]:
    async with MockServer(model="a") as first, MockServer(model="b") as second:
        yield first, second


def backends(servers: tuple[MockServer, MockServer]) -> list[OpenAIBackend]:
    return [OpenAIBackend(s.url, model=f"model-{i}") for i, s in enumerate(servers)]


async def test_falls_over_to_the_next_backend(servers: tuple[MockServer, MockServer]) -> None:
    first, second = servers
    events: list[llmfast.Event] = []
    first.enqueue(Reply.error(503))
    async with Client(Router(backends(servers)), on_event=events.append) as client:
        assert (await client.chat("hello")).text == "hello"
    assert (first.request_count, second.request_count) == (1, 1)
    assert second.requests[0].json["model"] == "model-0"  # the request's model is kept
    (fallback,) = [e for e in events if e.name == "fallback"]
    assert fallback.data["error"] == "ServerError"


async def test_each_route_may_name_its_model(servers: tuple[MockServer, MockServer]) -> None:
    first, second = servers
    first.enqueue(Reply.error(500))
    router = Router([Route(b, model=f"route-{i}") for i, b in enumerate(backends(servers))])
    async with Client(router) as client:
        await client.chat("x")
    assert [r.json["model"] for r in first.requests + second.requests] == ["route-0", "route-1"]


async def test_client_errors_do_not_fall_over(servers: tuple[MockServer, MockServer]) -> None:
    first, second = servers
    first.enqueue(Reply.error(401))
    async with Client(Router(backends(servers))) as client:
        with pytest.raises(llmfast.AuthenticationError):
            await client.chat("x")
    assert second.request_count == 0


async def test_context_length_fallback_only_when_configured(
    servers: tuple[MockServer, MockServer],
) -> None:
    first, second = servers
    too_long = Reply.error(
        400, message="maximum context length exceeded", code="context_length_exceeded"
    )
    first.enqueue(too_long, too_long)
    async with Client(Router(backends(servers))) as client:
        with pytest.raises(llmfast.ContextLengthError):
            await client.chat("x")
    async with Client(Router(backends(servers), fallback_on_context_length=True)) as client:
        assert (await client.chat("long")).text == "long"
    assert second.request_count == 1


async def test_open_circuits_are_skipped(servers: tuple[MockServer, MockServer]) -> None:
    first, second = servers
    first.default = Reply.error(503)
    breaker = CircuitBreaker(consecutive=2, cooldown=60)
    async with Client(Router(backends(servers), breaker=breaker)) as client:
        for _ in range(5):
            await client.chat("x")
    assert first.request_count == 2  # then its circuit opened and it was skipped
    assert second.request_count == 5


async def test_waits_for_the_soonest_cooldown(servers: tuple[MockServer, MockServer]) -> None:
    first, second = servers
    clock = FakeClock()
    first.enqueue(Reply.error(503))
    second.enqueue(Reply.error(503))
    breaker = CircuitBreaker(consecutive=1, cooldown=30, clock=clock, sleep=clock.sleep)
    router = Router(backends(servers), breaker=breaker, clock=clock, sleep=clock.sleep)
    async with Client(router) as client:
        # Both fail and both circuits open: rather than fail, wait for the first probe.
        assert (await client.chat("after the cooldown")).text == "after the cooldown"
    assert clock.sleeps == [pytest.approx(30)]
    assert (first.request_count, second.request_count) == (2, 1)


async def test_fails_when_no_cooldown_fits_the_deadline(
    servers: tuple[MockServer, MockServer],
) -> None:
    first, second = servers
    first.enqueue(Reply.error(503))
    second.enqueue(Reply.error(503))
    breaker = CircuitBreaker(consecutive=1, cooldown=3600)
    # The router alone: a Retry around it would try again and meet the open circuits.
    async with Client(Router(backends(servers), breaker=breaker), layers=[]) as client:
        with pytest.raises(llmfast.ServerError):  # the last backend's error
            await client.chat("x", timeout=1)
        with pytest.raises(llmfast.CircuitOpenError):
            await client.chat("x", timeout=1)
    assert (first.request_count, second.request_count) == (1, 1)


async def test_a_stream_falls_over_before_its_first_chunk(
    servers: tuple[MockServer, MockServer],
) -> None:
    first, second = servers
    first.enqueue(
        Reply.stream_error({"message": "busy", "type": "overloaded_error"}, after_chunks=0)
    )
    async with Client(Router(backends(servers))) as client:
        async with client.stream("s t u") as stream:
            completion = await stream.collect()
        assert client._pool.connections_in_use() == 0
    assert completion.text == "s t u"
    assert (first.request_count, second.request_count) == (1, 1)


async def test_weighted_spreads_calls_by_weight(servers: tuple[MockServer, MockServer]) -> None:
    first, second = servers
    a, b = backends(servers)
    router = Router(
        [Route(a, weight=3), Route(b, weight=1)], strategy="weighted", rng=random.Random(7)
    )
    async with Client(router) as client:
        for _ in range(200):
            await client.chat("x")
    assert first.request_count + second.request_count == 200
    assert 120 <= first.request_count <= 180  # about 3:1 (150 expected)


async def test_least_busy_prefers_the_idle_backend(servers: tuple[MockServer, MockServer]) -> None:
    first, second = servers
    first.default = Reply.text("held open", token_delay=60)
    async with Client(Router(backends(servers), strategy="least_busy")) as client:
        held = client.stream("x")
        await held.start()
        try:
            async for _ in held:
                break  # a stream in flight on the first backend
            assert (await client.chat("quick")).text == "quick"
        finally:
            await held.aclose()
    assert (first.request_count, second.request_count) == (1, 1)


async def test_router_shares_the_clients_pool(servers: tuple[MockServer, MockServer]) -> None:
    router = Router(backends(servers))
    client = Client(router, layers=[Retry()])
    assert repr(client).startswith("<Client Retry(max_attempts=5) → Router[priority](")
    assert await client.warmup(2) == 4
    assert client._pool.open_connections() == 4
    await client.aclose()
    assert client._pool.open_connections() == 0


async def test_1000_calls_succeed_while_the_first_backend_fails_half_the_time(
    servers: tuple[MockServer, MockServer],
) -> None:
    first, second = servers
    first.enqueue(*[Reply.error(503) if i % 2 else Reply.echo() for i in range(2000)])
    events: list[llmfast.Event] = []
    breaker = CircuitBreaker(
        consecutive=3, failure_ratio=0.5, min_calls=10, window=5, cooldown=0.05
    )
    async with Client(Router(backends(servers), breaker=breaker), on_event=events.append) as c:
        semaphore = asyncio.Semaphore(32)

        async def one(i: int) -> str | None:
            async with semaphore:
                return (await c.chat(f"call {i}")).text

        results = await asyncio.gather(*(one(i) for i in range(1000)))
    assert results == [f"call {i}" for i in range(1000)]
    states = [e.data["state"] for e in events if e.name == "breaker.state"]
    assert "open" in states
    assert Counter(states)["open"] >= 1
    assert all(
        e.data["backend"].startswith("OpenAIBackend(") for e in events if e.name == "breaker.state"
    )
    assert second.request_count > 0
