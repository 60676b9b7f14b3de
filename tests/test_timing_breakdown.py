"""Where the time of one call goes: the events' timings add up to its wall time.

A streamed call goes through a cache miss, a rate limit that makes it wait, a 503
answered with ``retry-after``, a retry and a slow stream, all for real on loopback:
the timings the layers report must account for the call's wall time within 5 %.
"""

from __future__ import annotations

import time

import pytest

import llmfast
from llmfast import Event
from llmfast.hooks import fan_out
from llmfast.layers import Cache, RateLimit, Retry
from llmfast.stats import Stats
from llmfast.testing import MockServer, Reply

PERIOD = 0.3  # one request per PERIOD: the call waits for the limiter, twice
RETRY_AFTER = 0.2
TOKEN_DELAY = 0.02
TEXT = "one two three four five six seven eight nine ten"


def _one(events: list[Event], name: str) -> Event:
    (event,) = [e for e in events if e.name == name]
    return event


def _elapsed(event: Event) -> float:
    assert event.elapsed is not None, f"{event.name} has no timing"
    return event.elapsed


async def test_a_streamed_call_reports_where_all_its_time_went(server: MockServer) -> None:
    seen: list[Event] = []
    stats = Stats()
    layers: list[llmfast.Layer] = [Cache(), Retry(max_attempts=3), RateLimit(rpm=1, period=PERIOD)]
    hook = fan_out(seen.append, stats)
    async with llmfast.Client(
        base_url=server.url, api_key="sk-test", model="mock-model", layers=layers, on_event=hook
    ) as client:
        await client.chat("take the only permit of this period")  # not cacheable: no seed
        server.enqueue(
            Reply.error(503, retry_after=RETRY_AFTER),
            Reply.text(TEXT, token_delay=TOKEN_DELAY),
        )
        began = time.monotonic()
        async with client.stream("tell me", temperature=0) as stream:
            text = "".join([t async for t in stream.text_deltas()])
        wall = time.monotonic() - began
    assert text == TEXT

    done = [e for e in seen if e.name == "done"][-1]
    events = [e for e in seen if e.request is done.request]
    assert [e.name for e in events] == [
        "cache.miss",
        "attempt",
        "ratelimit.wait",
        "attempt.failed",
        "retry",
        "attempt",
        "ratelimit.wait",
        "attempt.ok",
        "first_chunk",
        "cache.store",
        "done",
    ]
    assert done.data["outcome"] == "ok"
    failed = _one(events, "attempt.failed")
    assert failed.data["error"] == "ServerError"
    waits = [_elapsed(e) for e in events if e.name == "ratelimit.wait"]

    # Each step took real, measurable time, as the setup asked.
    assert sum(waits) >= PERIOD - 0.05  # the first wait alone is about PERIOD
    assert _elapsed(_one(events, "retry")) == pytest.approx(RETRY_AFTER)
    streaming = _elapsed(done) - _elapsed(_one(events, "first_chunk"))
    assert streaming >= (len(TEXT.split()) - 1) * TOKEN_DELAY

    # The steps, without overlap: the limiter sits inside Retry, so an attempt's
    # duration includes its own wait in the limiter.
    breakdown = {
        "cache lookup": _elapsed(_one(events, "cache.miss")),
        "rate-limit waits": sum(waits),
        "failed attempt": _elapsed(failed) - waits[0],
        "retry wait": _elapsed(_one(events, "retry")),
        "successful attempt, to its first chunk": _elapsed(_one(events, "attempt.ok")) - waits[1],
        "streaming, first chunk to end": streaming,
    }
    assert all(seconds >= 0 for seconds in breakdown.values()), breakdown
    accounted = sum(breakdown.values())
    assert accounted == pytest.approx(_elapsed(done), rel=0.05), breakdown
    assert accounted <= _elapsed(done) + 1e-3, breakdown  # no step counted twice
    assert _elapsed(done) == pytest.approx(wall, rel=0.05)  # `done` is the call's wall time

    # The same call, as the stats collector summed it up.
    snapshot = stats.snapshot()
    assert snapshot.retry.retries == 1
    assert snapshot.retry.wait == pytest.approx(RETRY_AFTER)
    assert snapshot.ratelimit.wait == pytest.approx(sum(waits))  # the first call did not wait
    assert snapshot.cache.misses == 1
    assert snapshot.first_chunk.count == 1
