"""The circuit breaker, over real HTTP, with a fake clock for cooldowns."""

from __future__ import annotations

import asyncio

import pytest

import llmfast
from llmfast import Client
from llmfast.layers import CircuitBreaker, CircuitBreakerLayer
from llmfast.testing import MockServer, Reply
from tests.fakeclock import FakeClock


class Harness:
    def __init__(self, server: MockServer, **options: object) -> None:
        self.clock = FakeClock()
        self.events: list[llmfast.Event] = []
        config = CircuitBreaker(clock=self.clock, sleep=self.clock.sleep, **options)  # type: ignore[arg-type]
        self.client = Client(
            base_url=server.url, model="m", layers=[config], on_event=self.events.append
        )
        breaker = self.client._transport
        assert isinstance(breaker, CircuitBreakerLayer)
        self.breaker = breaker

    def states(self) -> list[str]:
        return [e.data["state"] for e in self.events if e.name == "breaker.state"]


async def test_opens_after_consecutive_failures_and_fails_fast(server: MockServer) -> None:
    h = Harness(server, consecutive=3, cooldown=10)
    server.default = Reply.error(503)
    async with h.client:
        for _ in range(3):
            with pytest.raises(llmfast.ServerError):
                await h.client.chat("x")
        assert h.breaker.state == "open"
        with pytest.raises(llmfast.CircuitOpenError) as caught:
            await h.client.chat("x")
        assert caught.value.retry_at == pytest.approx(h.clock.now + 10)
        assert server.request_count == 3  # failed fast: nothing sent
    assert h.states() == ["open"]


async def test_half_open_probe_success_closes(server: MockServer) -> None:
    h = Harness(server, consecutive=2, cooldown=5)
    server.enqueue(Reply.error(500), Reply.error(500))
    async with h.client:
        for _ in range(2):
            with pytest.raises(llmfast.ServerError):
                await h.client.chat("x")
        h.clock.now += 5
        assert h.breaker.available()
        assert (await h.client.chat("probe")).text == "probe"
        assert h.breaker.state == "closed"
    assert h.states() == ["open", "half_open", "closed"]


async def test_half_open_probe_failure_reopens(server: MockServer) -> None:
    h = Harness(server, consecutive=1, cooldown=5)
    server.enqueue(Reply.error(502), Reply.error(502))
    async with h.client:
        with pytest.raises(llmfast.ServerError):
            await h.client.chat("x")
        h.clock.now += 5
        with pytest.raises(llmfast.ServerError):
            await h.client.chat("probe")
        assert h.breaker.state == "open"
        assert h.breaker.retry_at == pytest.approx(h.clock.now + 5)
    assert h.states() == ["open", "half_open", "open"]


async def test_only_one_probe_at_a_time(server: MockServer) -> None:
    h = Harness(server, consecutive=1, cooldown=1)
    server.enqueue(Reply.error(500), Reply.text("slow", delay=0.05))
    async with h.client:
        with pytest.raises(llmfast.ServerError):
            await h.client.chat("x")
        h.clock.now += 1
        probe = asyncio.create_task(h.client.chat("probe"))
        await server.wait_for_requests(2)
        with pytest.raises(llmfast.CircuitOpenError):
            await h.client.chat("second")  # half-open with a probe in flight
        assert (await probe).text == "slow"
        assert h.breaker.state == "closed"


async def test_failure_ratio_in_the_window_opens(server: MockServer) -> None:
    h = Harness(server, consecutive=100, failure_ratio=0.5, min_calls=10, window=60)
    for i in range(10):
        server.enqueue(Reply.error(503) if i % 2 else Reply.echo())
    async with h.client:
        for i in range(10):
            if i % 2:
                with pytest.raises(llmfast.ServerError):
                    await h.client.chat("x")
            else:
                await h.client.chat("x")
        assert h.breaker.state == "open"


async def test_old_outcomes_leave_the_window(server: MockServer) -> None:
    h = Harness(server, consecutive=100, failure_ratio=0.5, min_calls=4, window=10)
    server.enqueue(*[Reply.error(503)] * 3)
    async with h.client:
        for _ in range(3):
            with pytest.raises(llmfast.ServerError):
                await h.client.chat("x")
        h.clock.now += 11  # those failures are now outside the window
        for _ in range(4):
            await h.client.chat("ok")
        assert h.breaker.state == "closed"


async def test_client_errors_do_not_count(server: MockServer) -> None:
    h = Harness(server, consecutive=2)
    server.enqueue(*[Reply.error(400)] * 3, Reply.error(401))
    async with h.client:
        for _ in range(4):
            with pytest.raises(llmfast.APIStatusError):
                await h.client.chat("x")
        assert h.breaker.state == "closed"


async def test_waits_for_the_cooldown_when_asked(server: MockServer) -> None:
    h = Harness(server, consecutive=1, cooldown=7, wait=True)
    server.enqueue(Reply.error(503))
    async with h.client:
        with pytest.raises(llmfast.ServerError):
            await h.client.chat("x")
        assert (await h.client.chat("waited")).text == "waited"
    assert h.clock.sleeps == [pytest.approx(7)]


async def test_waiting_past_the_deadline_fails_fast(server: MockServer) -> None:
    h = Harness(server, consecutive=1, cooldown=3600, wait=True)
    server.enqueue(Reply.error(503))
    async with h.client:
        with pytest.raises(llmfast.ServerError):
            await h.client.chat("x")
        with pytest.raises(llmfast.CircuitOpenError):
            await h.client.chat("x", timeout=5)
    assert h.clock.sleeps == []


async def test_a_stream_counts_when_it_ends(server: MockServer) -> None:
    h = Harness(server, consecutive=2)
    server.enqueue(Reply.reset(after_chunks=2), Reply.reset(after_chunks=2))
    async with h.client:
        for _ in range(2):
            with pytest.raises(llmfast.StreamInterruptedError):
                async with h.client.stream("a b c") as stream:
                    await stream.collect()
        assert h.breaker.state == "open"


async def test_a_cancelled_probe_leaves_it_half_open(server: MockServer) -> None:
    h = Harness(server, consecutive=1, cooldown=1)
    server.enqueue(Reply.error(500), Reply.stall())
    async with h.client:
        with pytest.raises(llmfast.ServerError):
            await h.client.chat("x")
        h.clock.now += 1
        probe = asyncio.create_task(h.client.chat("probe"))
        await server.wait_for_requests(2)
        probe.cancel()
        with pytest.raises(asyncio.CancelledError):
            await probe
        assert h.breaker.state == "half_open"
        assert (await h.client.chat("next probe")).text == "next probe"
        assert h.states()[-1] == "closed"


def test_configuration_is_validated() -> None:
    with pytest.raises(ValueError, match="failure_ratio"):
        CircuitBreaker(failure_ratio=0)
    with pytest.raises(ValueError, match="window"):
        CircuitBreaker(window=0)
