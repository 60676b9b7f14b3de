"""The retry layer and its policy, over real HTTP with injected faults."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import llmfast
from llmfast import Client
from llmfast.layers import Retry, RetryPolicy
from llmfast.layers.retry import set_testing
from llmfast.layers.retry_policy import reset_after
from llmfast.limits.headers import parse_duration
from llmfast.testing import MockServer, Reply
from tests.fakeclock import FakeClock

SLACK = 0.2  # scheduler slack allowed past a deadline on this shared machine


def make_client(server: MockServer, clock: FakeClock | None = None, **options: Any) -> Client:
    retry = Retry(sleep=clock.sleep if clock else None, clock=clock, **options)
    return Client(base_url=server.url, model="m", layers=[retry])


async def test_retry_after_2s_is_honoured_exactly(server: MockServer) -> None:
    clock = FakeClock()
    server.enqueue(Reply.error(429, retry_after=2))
    async with make_client(server, clock) as client:
        assert (await client.chat("hello")).text == "hello"
    assert clock.sleeps == [2.0]
    assert server.request_count == 2


async def test_retry_after_ms_and_rate_limit_reset_headers(server: MockServer) -> None:
    clock = FakeClock()
    server.enqueue(
        Reply.error(429, retry_after_ms=1500),
        Reply.error(
            429,
            headers={
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": "250ms",
                "x-ratelimit-remaining-tokens": "9000",
                "x-ratelimit-reset-tokens": "6m0s",
            },
        ),
    )
    async with make_client(server, clock) as client:
        await client.chat("x")
    assert clock.sleeps == [1.5, 0.25]


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504, 529])
async def test_retryable_statuses_are_retried(server: MockServer, status: int) -> None:
    clock = FakeClock()
    server.enqueue(Reply.error(status))
    async with make_client(server, clock, jitter=False) as client:
        assert (await client.chat("ok")).text == "ok"
    assert server.request_count == 2
    assert clock.sleeps == [0.5]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_client_errors_are_never_retried(server: MockServer, status: int) -> None:
    clock = FakeClock()
    server.enqueue(Reply.error(status))
    async with make_client(server, clock) as client:
        with pytest.raises(llmfast.APIStatusError) as caught:
            await client.chat("x")
    assert caught.value.status == status
    assert server.request_count == 1
    assert clock.sleeps == []


async def test_x_should_retry_overrides_the_status(server: MockServer) -> None:
    clock = FakeClock()
    server.enqueue(
        Reply.error(503, headers={"x-should-retry": "false"}),
        Reply.error(400, headers={"x-should-retry": "true"}),
    )
    async with make_client(server, clock) as client:
        with pytest.raises(llmfast.ServerError):
            await client.chat("x")
        assert (await client.chat("y")).text == "y"
    assert server.request_count == 3


async def test_gives_up_after_max_attempts_with_backoff(server: MockServer) -> None:
    clock = FakeClock()
    seen: list[llmfast.Event] = []
    server.default = Reply.error(503)
    retry = Retry(max_attempts=4, jitter=False, initial_backoff=0.5, sleep=clock.sleep, clock=clock)
    async with Client(
        base_url=server.url, model="m", layers=[retry], on_event=seen.append
    ) as client:
        with pytest.raises(llmfast.ServerError):
            await client.chat("x")
    assert server.request_count == 4
    assert clock.sleeps == [0.5, 1.0, 2.0]
    assert [e.name for e in seen].count("attempt") == 4
    retries = [e for e in seen if e.name == "retry"]
    assert [(e.data["attempt"], e.elapsed, e.data["reason"]) for e in retries] == [
        (1, 0.5, "backoff"),
        (2, 1.0, "backoff"),
        (3, 2.0, "backoff"),
    ]
    failed = [e for e in seen if e.name == "attempt.failed"]
    assert all(e.data["retryable"] for e in failed)
    assert len(failed) == 4


async def test_jitter_stays_within_the_backoff(server: MockServer) -> None:
    clock = FakeClock()
    server.default = Reply.error(500)
    async with make_client(server, clock, max_attempts=6, max_backoff=3.0) as client:
        with pytest.raises(llmfast.ServerError):
            await client.chat("x")
    caps = [0.5, 1.0, 2.0, 3.0, 3.0]
    assert len(clock.sleeps) == 5
    assert all(0 <= s <= cap for s, cap in zip(clock.sleeps, caps, strict=True))


async def test_server_asking_too_long_gives_up_at_once(server: MockServer) -> None:
    clock = FakeClock()
    server.enqueue(Reply.error(429, retry_after=3600))
    async with make_client(server, clock, max_server_wait=60) as client:
        with pytest.raises(llmfast.RateLimitError) as caught:
            await client.chat("x")
    assert caught.value.retry_after == 3600
    assert clock.sleeps == []


async def test_a_wait_past_the_deadline_gives_up_at_once(server: MockServer) -> None:
    server.enqueue(Reply.error(429, retry_after=5))
    async with make_client(server) as client:
        started = time.monotonic()
        with pytest.raises(llmfast.RateLimitError):
            await client.chat("x", timeout=2)
        assert time.monotonic() - started < 1  # no waiting for a retry that can't fit
    assert server.request_count == 1


async def test_total_deadline_of_1s_is_kept_whatever_the_retries(server: MockServer) -> None:
    server.enqueue(Reply.error(503, retry_after=0.3), Reply.reset(), Reply.stall())
    async with make_client(server, max_attempts=10) as client:
        started = time.monotonic()
        with pytest.raises(llmfast.DeadlineExceeded):
            await client.chat("x", timeout=1.0)
        elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 1.0 + SLACK
    assert server.request_count == 3


async def test_max_elapsed_bounds_the_retrying(server: MockServer) -> None:
    clock = FakeClock()
    server.default = Reply.error(503, retry_after=4)
    async with make_client(server, clock, max_attempts=100, max_elapsed=10) as client:
        with pytest.raises(llmfast.ServerError):
            await client.chat("x")
    assert clock.sleeps == [4.0, 4.0]


async def test_connection_failures_are_retried(server: MockServer) -> None:
    clock = FakeClock()
    server.enqueue(Reply.reset(), Reply.reset(after_chunks=1), Reply.stall())
    retry = Retry(sleep=clock.sleep, clock=clock)
    timeouts = llmfast.Timeouts(read=0.2)
    async with Client(base_url=server.url, model="m", layers=[retry], timeouts=timeouts) as c:
        assert (await c.chat("made it")).text == "made it"
        assert c._pool.connections_in_use() == 0
    assert server.request_count == 4


async def test_stream_failures_before_the_first_chunk_are_retried(server: MockServer) -> None:
    clock = FakeClock()
    overloaded = {"message": "Overloaded", "type": "overloaded_error"}
    server.enqueue(
        Reply.reset(),
        Reply.stream_error(overloaded, after_chunks=0),
        Reply.truncated(after_chunks=0),
        Reply.malformed(after_chunks=0),
    )
    async with make_client(server, clock) as client:
        with pytest.raises(llmfast.DecodeError):  # malformed is not worth retrying
            async with client.stream("a b c") as stream:
                await stream.collect()
        assert server.request_count == 4
        async with client.stream("a b c") as stream:
            completion = await stream.collect()
        assert completion.text == "a b c"
        assert client._pool.connections_in_use() == 0


async def test_a_stream_is_not_retried_after_its_first_chunk(server: MockServer) -> None:
    clock = FakeClock()
    server.enqueue(Reply.reset(after_chunks=3))
    async with make_client(server, clock) as client:
        with pytest.raises(llmfast.StreamInterruptedError) as caught:
            async with client.stream("a b c d") as stream:
                async for _ in stream:
                    pass
        assert client._pool.connections_in_use() == 0
    assert caught.value.partial_text == "a b "
    assert len(caught.value.chunks) == 3
    assert isinstance(caught.value.__cause__, llmfast.ReadError)
    assert server.request_count == 1
    assert clock.sleeps == []


async def test_testing_mode_makes_waits_instant(server: MockServer) -> None:
    seen: list[llmfast.Event] = []
    server.enqueue(Reply.error(429, retry_after=2))
    set_testing(True)
    try:
        async with Client(
            base_url=server.url, model="m", layers=[Retry()], on_event=seen.append
        ) as client:
            started = time.monotonic()
            await client.chat("x")
            assert time.monotonic() - started < 1.0
    finally:
        set_testing(False)
    assert [e.elapsed for e in seen if e.name == "retry"] == [2.0]


def test_policy_validation() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="not both"):
        Retry(policy=RetryPolicy(), max_attempts=2)


def test_repr_shows_the_retry_layer() -> None:
    client = Client(base_url="http://127.0.0.1:9/v1", model="m", layers=[Retry(max_attempts=3)])
    assert repr(client).startswith("<Client Retry(max_attempts=3) → OpenAIBackend(")


@given(
    st.lists(
        st.tuples(st.integers(0, 99), st.sampled_from(["h", "m", "s", "ms"])),
        min_size=1,
        max_size=4,
    )
)
def test_parse_duration(parts: list[tuple[int, str]]) -> None:
    text = "".join(f"{n}{unit}" for n, unit in parts)
    seconds = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    assert parse_duration(text) == pytest.approx(sum(n * seconds[u] for n, u in parts))


@pytest.mark.parametrize("junk", ["", "soon", "5x", "1s2", "-"])
def test_parse_duration_junk(junk: str) -> None:
    assert parse_duration(junk) is None


def test_reset_after_anthropic_timestamps() -> None:
    now = 1_750_000_000.0
    headers = {
        "anthropic-ratelimit-requests-remaining": "0",
        "anthropic-ratelimit-requests-reset": "2025-06-15T15:06:50Z",
        "anthropic-ratelimit-tokens-remaining": "100",
        "anthropic-ratelimit-tokens-reset": "2025-06-15T15:10:00Z",
    }
    # 1_750_000_000 is 2025-06-15T15:06:40Z: the exhausted requests window resets in 10 s.
    assert reset_after(headers, now) == pytest.approx(10.0)
    assert reset_after({}, now) is None
