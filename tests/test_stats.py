"""``Stats``: every figure from real calls over loopback, the histogram exact to the
bucket (property-tested), snapshots consistent when read from another thread."""

from __future__ import annotations

import asyncio
import math
import os
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import llmfast
from llmfast import ChatRequest, ConfigurationError, Event, Request
from llmfast.hooks import fan_out
from llmfast.layers import Cache, CircuitBreaker, Coalesce, RateLimit, Retry
from llmfast.stats import Histogram, Price, Stats, StatsSnapshot
from llmfast.testing import MockServer, Reply
from tests.fakeclock import FakeClock

PRICES = {"mock-model": Price(input=2.0, output=10.0)}


def client_for(server: MockServer, stats: Stats, **options: object) -> llmfast.Client:
    return llmfast.Client(
        base_url=server.url,
        api_key="sk-test",
        model="mock-model",
        on_event=stats,
        **options,  # type: ignore[arg-type]
    )


# -- the histogram --------------------------------------------------------------------


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(
        st.one_of(
            st.floats(min_value=0, max_value=1e5, allow_nan=False),
            st.floats(min_value=1e-5, max_value=10.0),
        ),
        min_size=1,
        max_size=300,
    ),
    q=st.sampled_from([0.01, 0.25, 0.5, 0.9, 0.99, 0.999, 1.0]),
)
def test_a_percentile_lies_in_the_bucket_of_the_exact_one(values: list[float], q: float) -> None:
    histogram = Histogram()
    for value in values:
        histogram.record(value)
    exact = nearest_rank(values, q)
    estimate = histogram.percentile(q)
    assert estimate is not None
    assert histogram.bucket(estimate) == histogram.bucket(exact)
    assert min(values) <= estimate <= max(values)
    if 1e-4 <= exact <= 1e4:  # inside the covered range: within one bucket's width
        assert estimate / exact == pytest.approx(1.0, rel=2 ** (1 / 8) - 1)


def test_the_histogram_has_fixed_memory_and_exact_count_min_max_mean() -> None:
    histogram = Histogram()
    buckets = len(histogram._counts)
    for i in range(100_000):
        histogram.record((i % 1000) / 100)  # 0 .. 9.99 s
    histogram.record(1e9)  # beyond `high`: the last bucket
    histogram.record(-1.0)  # a negative or NaN value counts as 0
    histogram.record(math.nan)
    assert len(histogram._counts) == buckets < 250
    summary = histogram.summary()
    assert summary.count == 100_003
    assert summary.min == 0.0
    assert summary.max == 1e9
    assert summary.mean == pytest.approx((499_500 + 1e9) / 100_003)
    assert summary.p50 == pytest.approx(4.99, rel=0.05)
    assert summary.p99 == pytest.approx(9.89, rel=0.05)
    assert histogram.percentile(1.0) == 1e9  # the overflow bucket reports the maximum


def test_an_empty_histogram_has_no_percentiles() -> None:
    summary = Histogram().summary()
    assert (summary.count, summary.p50, summary.p99, summary.max) == (0, None, None, None)
    with pytest.raises(ConfigurationError):
        Histogram(low=1.0, high=0.5)


# -- figures from real calls --------------------------------------------------------------


async def test_counts_latency_tokens_and_cost(server: MockServer) -> None:
    stats = Stats(prices=PRICES)
    server.enqueue(Reply.text("a b c"), Reply.error(400), Reply.text("d e", token_delay=0.01))
    async with client_for(server, stats) as client:
        reply = await client.chat("one two")
        with pytest.raises(llmfast.BadRequestError):
            await client.chat("bad")
        async with client.stream("streamed") as stream:
            streamed = await stream.collect()
        embedded = await client.embed(["x", "y"])
    assert reply.usage is not None
    assert streamed.usage is not None
    assert embedded.usage is not None
    input_tokens = (
        reply.usage.prompt_tokens + streamed.usage.prompt_tokens + embedded.usage.prompt_tokens
    )
    output_tokens = reply.usage.completion_tokens + streamed.usage.completion_tokens
    assert output_tokens == 3 + 2
    snapshot = stats.snapshot()
    assert snapshot.calls == 4
    assert snapshot.errors == 1
    assert snapshot.outcomes == {"chat": {"ok": 2, "BadRequestError": 1}, "embed": {"ok": 1}}
    assert snapshot.latency.count == 4
    assert snapshot.latency.p50 is not None
    assert snapshot.latency.max is not None
    assert 0 < snapshot.latency.p50 <= snapshot.latency.max
    assert snapshot.first_chunk.count == 1
    assert snapshot.max_gap is not None
    assert snapshot.max_gap >= 0.005  # token_delay=0.01
    assert (snapshot.input_tokens, snapshot.output_tokens) == (input_tokens, output_tokens)
    model = snapshot.models["mock-model"]
    assert (model.calls, model.input_tokens, model.output_tokens) == (
        4,
        input_tokens,
        output_tokens,
    )
    expected = (input_tokens * 2.0 + output_tokens * 10.0) / 1e6
    assert snapshot.cost == pytest.approx(expected)
    assert model.cost == pytest.approx(expected)


async def test_an_unknown_model_has_no_cost_never_a_guess(server: MockServer) -> None:
    stats = Stats(prices=PRICES)
    async with client_for(server, stats) as client:
        await client.chat("priced")
        await client.chat("not priced", model="other-model")
    snapshot = stats.snapshot()
    assert snapshot.models["other-model"].cost is None
    assert snapshot.models["other-model"].output_tokens > 0
    assert snapshot.models["mock-model"].cost is not None
    assert snapshot.cost is None
    assert snapshot.unpriced_models == ("other-model",)
    assert "no price for other-model" in str(snapshot)


async def test_cache_hits_count_but_cost_nothing(server: MockServer) -> None:
    stats = Stats(prices=PRICES)
    async with client_for(server, stats, layers=[Cache()]) as client:
        for _ in range(3):
            await client.chat("same", temperature=0)
        await client.chat("different", temperature=0)
    snapshot = stats.snapshot()
    assert server.request_count == 2
    cache = snapshot.cache
    assert (cache.hits, cache.misses, cache.stores, cache.errors) == (2, 2, 2, 0)
    assert cache.hit_ratio == 0.5
    assert snapshot.calls == 4
    single = Stats(prices=PRICES)
    async with client_for(server, single) as client:
        await client.chat("same", temperature=0)
        await client.chat("different", temperature=0)
    assert snapshot.input_tokens == single.snapshot().input_tokens  # only the misses
    assert snapshot.cost == single.snapshot().cost


async def test_coalesced_joins_are_counted_and_not_billed(server: MockServer) -> None:
    stats = Stats(prices=PRICES)
    server.enqueue(Reply.text("shared answer", delay=0.05))
    async with client_for(server, stats, layers=[Coalesce()]) as client:
        replies = await asyncio.gather(*(client.chat("same", seed=1) for _ in range(3)))
    assert [r.text for r in replies] == ["shared answer"] * 3
    assert server.request_count == 1
    snapshot = stats.snapshot()
    assert snapshot.coalesced == 2
    assert snapshot.calls == 3
    assert replies[0].usage is not None
    assert snapshot.output_tokens == replies[0].usage.completion_tokens  # paid once


async def test_retries_failed_attempts_and_their_waits(server: MockServer) -> None:
    stats = Stats()
    clock = FakeClock()
    server.enqueue(Reply.error(503, retry_after=2), Reply.reset(), Reply.text("ok"))
    retry = Retry(max_attempts=3, clock=clock, sleep=clock.sleep, initial_backoff=0.5, jitter=0)
    async with client_for(server, stats, layers=[retry]) as client:
        assert (await client.chat("hi")).text == "ok"
    r = stats.snapshot().retry
    assert (r.attempts, r.failed, r.retries) == (3, 2, 2)
    assert r.errors == {"ServerError": 1, "ReadError": 1}
    assert r.wait == pytest.approx(2 + 0.5) == sum(clock.sleeps)


async def test_rate_limit_waits(server: MockServer) -> None:
    stats = Stats()
    clock = FakeClock()
    limit = RateLimit(rpm=1, period=10, clock=clock, sleep=clock.sleep)
    async with client_for(server, stats, layers=[limit]) as client:
        for _ in range(3):
            await client.chat("hi")
    r = stats.snapshot().ratelimit
    assert (r.admitted, r.waited) == (3, 2)
    assert r.wait == pytest.approx(20.0)
    assert r.longest == pytest.approx(10.0)


async def test_breaker_state_changes(server: MockServer) -> None:
    stats = Stats()
    server.enqueue(Reply.reset(), Reply.reset())
    breaker = CircuitBreaker(consecutive=2, cooldown=60)
    async with client_for(server, stats, layers=[breaker]) as client:
        for _ in range(2):
            with pytest.raises(llmfast.ReadError):
                await client.chat("hi")
        with pytest.raises(llmfast.CircuitOpenError):
            await client.chat("hi")
    snapshot = stats.snapshot()
    assert snapshot.breakers.changes == 1
    assert list(snapshot.breakers.states.values()) == ["open"]
    assert snapshot.outcomes["chat"] == {"ReadError": 2, "CircuitOpenError": 1}


# -- the snapshot -------------------------------------------------------------------------


async def test_the_snapshot_is_immutable_printable_and_encodable(server: MockServer) -> None:
    stats = Stats(prices=PRICES)
    async with client_for(server, stats, layers=[Cache()]) as client:
        await client.chat("hi", temperature=0)
        await client.chat("hi", temperature=0)
    snapshot = stats.snapshot()
    with pytest.raises(AttributeError):
        snapshot.calls = 0  # type: ignore[misc]
    with pytest.raises(TypeError):
        snapshot.outcomes["chat"]["ok"] = 0  # type: ignore[index]
    with pytest.raises(TypeError):
        snapshot.models["x"] = snapshot.models["mock-model"]  # type: ignore[index]
    text = str(snapshot)
    assert "2 calls, 0 errors (chat: ok 2)" in text
    assert "1 hits, 1 misses (50.0% hit ratio)" in text
    assert "latency      p50 " in text
    plain = snapshot.to_dict()
    assert plain["outcomes"] == {"chat": {"ok": 2}}
    assert msgspec.json.decode(msgspec.json.encode(plain))["cache"]["hit_ratio"] == 0.5


async def test_reset_starts_afresh(server: MockServer) -> None:
    stats = Stats()
    async with client_for(server, stats) as client:
        await client.chat("hi")
        assert stats.snapshot().calls == 1
        stats.reset()
        assert stats.snapshot().calls == 0
        assert stats.snapshot().latency.count == 0
        await client.chat("hi")
    assert stats.snapshot().calls == 1


def test_prices_are_validated() -> None:
    assert Stats(prices={"m": (1, 2)}).prices["m"] == Price(1.0, 2.0)
    for bad in ((1,), (-1, 2), (math.inf, 1), ("a", 1), None):
        with pytest.raises(ConfigurationError):
            Stats(prices={"m": bad})  # type: ignore[dict-item]


@pytest.fixture
def fast_switching() -> Iterator[None]:
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads preempt each other as often as possible
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


def test_a_snapshot_taken_from_another_thread_is_consistent(fast_switching: None) -> None:
    stats = Stats()
    request = Request(ChatRequest(model="m", messages=[]))
    done = Event(
        "done", request, 0.01, {"kind": "chat", "outcome": "ok", "model": "m", "prompt_tokens": 1}
    )
    stop = threading.Event()
    broken: list[StatsSnapshot] = []

    def read() -> None:
        while not stop.is_set():
            s = stats.snapshot()
            if not (s.calls == s.latency.count == s.input_tokens == s.models["m"].calls):
                broken.append(s)

    stats(done)
    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(20_000):
            stats(done)
    finally:
        stop.set()
        reader.join()
    assert not broken
    assert stats.snapshot().calls == 20_001


def test_the_sync_client_reads_stats_from_its_own_thread() -> None:
    stats = Stats()
    with (
        MockServerThread() as url,
        llmfast.SyncClient(
            base_url=url, api_key="sk-test", model="mock-model", on_event=stats
        ) as client,
    ):
        client.chat("hi")
        with client.stream("there") as stream:
            assert "".join(stream.text_deltas()) == "there"
        snapshot = stats.snapshot()  # this thread; the events came on the client's loop
    assert snapshot.outcomes == {"chat": {"ok": 2}}
    assert snapshot.first_chunk.count == 1


class MockServerThread:
    """A MockServer on its own loop thread, for the blocking client."""

    def __enter__(self) -> str:
        self._loop = asyncio.new_event_loop()
        self._server = MockServer()
        self._thread = threading.Thread(target=self._loop.run_forever)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._server.start(), self._loop).result(5)
        return self._server.url

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._server.close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


# -- fan-out --------------------------------------------------------------------------------


def test_fan_out_calls_every_hook_in_order_and_costs_nothing_when_there_is_none() -> None:
    assert fan_out() is None
    assert fan_out(None, None) is None
    calls: list[tuple[str, str]] = []

    def hook(label: str) -> llmfast.EventHook:
        return lambda event: calls.append((label, event.name))

    one = hook("one")
    assert fan_out(None, one) is one
    event = Event("done", Request(ChatRequest(model="m", messages=[])))
    for count in (2, 3):
        calls.clear()
        hooks = [hook(str(i)) for i in range(count)]
        combined = fan_out(hooks[0], None, *hooks[1:])
        assert combined is not None
        combined(event)
        assert calls == [(str(i), "done") for i in range(count)]


# -- the guide ------------------------------------------------------------------------------


def guide_examples() -> list[str]:
    text = (Path(__file__).parent.parent / "docs" / "observability.md").read_text()
    return re.findall(r"^```python\n(.*?)^```$", text, flags=re.DOTALL | re.MULTILINE)


@pytest.mark.parametrize("number", range(len(guide_examples())))
async def test_the_observability_guide_examples_run(number: int) -> None:
    code = guide_examples()[number]
    if "opentelemetry" in code and not os.environ.get("CI"):
        pytest.importorskip("opentelemetry.sdk")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()
    if "LoggingHook" in code:  # logs to stderr
        assert "llmfast.call WARNING chat mock-model BadRequestError in " in err.decode()
    else:
        assert err.decode() == ""
        assert out.decode().count("\n") >= 3
