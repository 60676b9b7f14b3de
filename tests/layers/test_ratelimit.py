"""The rate-limit layer over real HTTP to ``MockServer``, on an injected fake clock.

The fake clock moves only when the limiter sleeps, so every admission time below is
exact; the few tests on the real clock wait on conditions, never on a fixed sleep.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

import llmfast
from llmfast import ChatRequest, Client, Event, Request
from llmfast.layers.ratelimit import RateLimit, RateLimitLayer
from llmfast.limits import CharEstimator
from llmfast.testing import MockServer, Reply


class FakeClock:
    """A ``time.monotonic`` stand-in that moves only when the limiter sleeps.

    It starts at the real ``time.monotonic()`` so deadlines set on it stay meaningful
    to the backend, which checks them on the real clock; ``elapsed`` is fake time.
    """

    def __init__(self) -> None:
        self.now = self.start = time.monotonic()
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    @property
    def elapsed(self) -> float:
        return self.now - self.start

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def words(body: ChatRequest | llmfast.EmbeddingRequest) -> int:
    """An estimator that counts words, as the mock server's usage does (prompt only)."""
    assert isinstance(body, ChatRequest)
    texts = [str(message["content"]) for message in body.messages]  # type: ignore[index]
    return sum(len(text.split()) for text in texts)


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Yield to the loop until ``predicate()`` holds (a condition wait, not a timed sleep)."""

    async def poll() -> None:
        while not predicate():  # noqa: ASYNC110 - no event reports a call joining the queue
            await asyncio.sleep(0)

    await asyncio.wait_for(poll(), timeout)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


class Harness:
    """A client with one rate-limit layer, recording when each call was admitted."""

    def __init__(self, server: MockServer, clock: FakeClock | None, **options: Any) -> None:
        if clock is not None:
            options.setdefault("clock", clock)
            options.setdefault("sleep", clock.sleep)
        options.setdefault("estimator", words)
        options.setdefault("margin", 0)  # exact at admission (see the margin tests)
        self.config = RateLimit(**options)
        self.clock = clock
        self.events: list[Event] = []
        self.admitted: dict[str, float] = {}
        self.client = Client(
            base_url=server.url, model="m", layers=[self.config], on_event=self._record
        )

    def _record(self, event: Event) -> None:
        self.events.append(event)
        body = event.request.body
        if event.name == "ratelimit.wait" and isinstance(body, ChatRequest):
            text = str(body.messages[-1]["content"])  # type: ignore[index]
            # rounded: the fake clock adds to a large float, so sums drift by ~1e-10 s
            self.admitted[text] = round(self.clock.elapsed, 6) if self.clock else time.monotonic()

    @property
    def layer(self) -> RateLimitLayer:
        assert self.config.layer is not None
        return self.config.layer

    async def __aenter__(self) -> Harness:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()


# --- configuration -----------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"rpm": 0},
        {"tpm": -5},
        {"rpm": 1.5},
        {"concurrency": 0},
        {"rpm": 1, "period": 0},
        {"rpm": 1, "max_queue": -1},
        {"rpm": 1, "max_wait": -1},
        {"rpm": 1, "oversize": "sometimes"},
        {"rpm": 1, "margin": -0.1},
        {"rpm": 1, "period": 1, "margin": 1},
        {"adaptive": False},
    ],
)
def test_bad_configuration_is_refused_at_construction(options: dict[str, Any]) -> None:
    with pytest.raises(llmfast.ConfigurationError):
        RateLimit(**options)


def test_the_default_margin_is_a_tenth_of_the_period_at_most_a_second() -> None:
    assert RateLimit(rpm=1).margin == 1.0
    assert RateLimit(rpm=1, period=2).margin == pytest.approx(0.2)
    assert RateLimit(rpm=1, margin=0).margin == 0


async def test_a_call_counts_from_its_reply_unless_later_than_the_margin(
    server: MockServer, clock: FakeClock
) -> None:
    """The fake clock stands still during a call unless the test moves it: a reply that
    comes within the margin settles the call then, a later one leaves it at the margin."""
    server.enqueue(Reply.text("late", delay=0.3), Reply.text("quick", delay=0.3))
    async with Harness(server, clock, rpm=1, period=10, margin=2) as h:
        late = asyncio.ensure_future(h.client.chat("late"))
        await server.wait_for_requests(1)
        clock.now += 5  # while the server holds the reply: it comes after the margin
        await late
        quick = asyncio.ensure_future(h.client.chat("quick"))  # waits for 0 + 2 + 10
        await server.wait_for_requests(2)
        clock.now += 1  # its reply comes 1 s after its admission
        await quick
        await h.client.chat("last")  # waits for "quick": admitted at 12, settled at 13
        assert h.admitted == {"late": 0, "quick": 12, "last": 23}


async def test_repr_shows_the_limits(server: MockServer) -> None:
    async with Harness(server, None, rpm=50, tpm=900, period=1, concurrency=4) as h:
        assert "RateLimit(requests=50/1s, tokens=900/1s, concurrency=4)" in repr(h.client)
    async with Harness(server, None, rpm=500) as h:
        assert "RateLimit(rpm=500)" in repr(h.client)


# --- requests per period -------------------------------------------------------------


async def test_requests_beyond_the_limit_wait_for_the_window(
    server: MockServer, clock: FakeClock
) -> None:
    async with Harness(server, clock, rpm=3, period=10) as h:
        replies = await asyncio.gather(*(h.client.chat(f"call {i}") for i in range(7)))
        assert [r.text for r in replies] == [f"call {i}" for i in range(7)]
        assert [h.admitted[f"call {i}"] for i in range(7)] == [0, 0, 0, 10, 10, 10, 20]
        assert server.request_count == 7
        waits = [e.elapsed or 0.0 for e in h.events if e.name == "ratelimit.wait"]
        assert sorted(waits) == [0, 0, 0, 10, 10, 10, 20]
        assert h.layer.available_requests == 2
        assert h.layer.queue_length == 0
        assert h.layer.in_flight == 0


async def test_the_wait_event_reports_the_queue_length(
    server: MockServer, clock: FakeClock
) -> None:
    async with Harness(server, clock, rpm=1, period=5) as h:
        await asyncio.gather(*(h.client.chat(f"call {i}") for i in range(3)))
        reported = [
            (e.elapsed, e.data["queue_length"]) for e in h.events if e.name == "ratelimit.wait"
        ]
        assert reported == [(0.0, 0), (5.0, 1), (10.0, 0)]


# --- tokens per period ---------------------------------------------------------------


async def test_tokens_wait_for_room_and_are_corrected_from_usage(
    server: MockServer, clock: FakeClock
) -> None:
    # Estimates are 4 tokens each ("a b c d"); the server reports 8 (prompt + echo).
    async with Harness(server, clock, tpm=10, period=60) as h:
        await h.client.chat("a b c d")
        assert h.layer.available_tokens == 2  # charged the actual 8, not the estimate 4
        await h.client.chat("e f g h")  # 4 > 2 left: waits for the first to leave
        assert h.admitted == {"a b c d": 0, "e f g h": 60}


async def test_an_overestimate_is_refunded(server: MockServer, clock: FakeClock) -> None:
    async with Harness(server, clock, tpm=100, estimator=lambda body: 50) as h:
        reply = await h.client.chat("two words")
        assert reply.usage is not None
        assert reply.usage.total_tokens == 4
        assert h.layer.available_tokens == 96


async def test_a_stream_is_corrected_when_its_usage_arrives(
    server: MockServer, clock: FakeClock
) -> None:
    async with Harness(server, clock, tpm=100, estimator=lambda body: 30) as h:
        async with h.client.stream("one two three") as stream:
            assert h.layer.available_tokens == 70  # the estimate, until usage arrives
            async for _ in stream:
                pass
            assert h.layer.available_tokens == 94  # 3 prompt + 3 completion
        assert stream.completion.usage is not None
        assert stream.completion.usage.total_tokens == 6


async def test_a_refused_call_gives_its_tokens_back(server: MockServer, clock: FakeClock) -> None:
    server.enqueue(Reply.error(400))
    async with Harness(server, clock, tpm=100, estimator=lambda body: 30) as h:
        with pytest.raises(llmfast.BadRequestError):
            await h.client.chat("x")
        assert h.layer.available_tokens == 100
        assert h.layer.in_flight == 0


async def test_tpm_is_exceeded_by_at_most_one_estimate_error(
    server: MockServer, clock: FakeClock
) -> None:
    """Done-when: against the usage the server reports, in every window."""
    period, tpm = 10.0, 120
    estimator = CharEstimator(completion_tokens=0)  # underestimates: the echo is not counted
    prompts = [" ".join(f"w{i}x{j}" for j in range(1 + (i * 7) % 13)) for i in range(40)]
    async with Harness(
        server, clock, tpm=tpm, period=period, concurrency=1, estimator=estimator
    ) as h:
        replies = await asyncio.gather(*(h.client.chat(p) for p in prompts))
    usage = {r.text: r.usage.total_tokens for r in replies if r.usage is not None}
    errors = []
    for prompt in prompts:
        body = ChatRequest(model="m", messages=[{"role": "user", "content": prompt}])
        errors.append(abs(usage[prompt] - estimator(body)))
    times = sorted((h.admitted[p], usage[p]) for p in prompts)
    worst = max(sum(u for t, u in times if start <= t < start + period) for start, _ in times)
    assert worst <= tpm + max(errors)
    assert worst > tpm * 0.8  # the limit was actually reached, so the check means something
    assert clock.elapsed >= period * 3  # and the run needed several windows


# --- a request larger than the whole budget --------------------------------------------


async def test_a_request_above_the_whole_budget_is_rejected_at_once(
    server: MockServer, clock: FakeClock
) -> None:
    async with Harness(server, clock, tpm=5) as h:
        with pytest.raises(llmfast.RequestTooLargeError):
            await h.client.chat("one two three four five six")
        assert server.request_count == 0
        assert h.layer.available_tokens == 5


async def test_oversize_admit_lets_it_in_alone_once_the_window_is_empty(
    server: MockServer, clock: FakeClock
) -> None:
    big = "one two three four five six seven eight"
    async with Harness(server, clock, tpm=6, period=10, oversize="admit") as h:
        await asyncio.gather(h.client.chat("small"), h.client.chat(big), h.client.chat("tiny"))
        # "small" uses 2; the big one waits until it left the window, then fills it past
        # the limit, so "tiny" (queued behind, first come first served) waits for it.
        assert h.admitted == {"small": 0, big: 10, "tiny": 20}


# --- the queue ---------------------------------------------------------------------------


async def test_the_queue_is_first_come_first_served(server: MockServer, clock: FakeClock) -> None:
    async with Harness(server, clock, tpm=10, period=10) as h:
        # 8 tokens, then 6 (must wait), then 1 (would fit at once, but waits its turn).
        calls = ["a b c d e f g h", "i j k l m n", "z"]
        tasks = []
        for text in calls:
            tasks.append(asyncio.ensure_future(h.client.chat(text)))
            await until(lambda: len(h.admitted) + h.layer.queue_length == len(tasks))
        await asyncio.gather(*tasks)
        assert h.admitted == {calls[0]: 0, calls[1]: 10, calls[2]: 10}
        assert [r.json["messages"][0]["content"] for r in server.requests] == calls


async def test_a_full_queue_refuses_at_once(server: MockServer) -> None:
    server.enqueue(Reply.stall(after_chunks=1))
    async with Harness(server, None, concurrency=1, max_queue=1) as h:
        async with h.client.stream("holds the permit") as stream:
            waiting = asyncio.ensure_future(h.client.chat("queued"))
            await until(lambda: h.layer.queue_length == 1)
            with pytest.raises(llmfast.QueueFullError):
                await h.client.chat("one too many")
            await stream.aclose()
            assert (await waiting).text == "queued"
        assert server.request_count == 2


async def test_max_wait_fails_at_once_when_the_wait_is_known(
    server: MockServer, clock: FakeClock
) -> None:
    async with Harness(server, clock, rpm=1, period=10, max_wait=5) as h:
        await h.client.chat("first")
        with pytest.raises(llmfast.QueueTimeout):
            await h.client.chat("second")
        assert clock.elapsed == 0  # told at once, not after waiting
        assert h.layer.queue_length == 0


async def test_max_wait_bounds_a_wait_for_a_permit(server: MockServer, clock: FakeClock) -> None:
    server.enqueue(Reply.stall(after_chunks=1))
    async with (
        Harness(server, clock, concurrency=1, max_wait=2.5) as h,
        h.client.stream("holds the permit"),
    ):
        with pytest.raises(llmfast.QueueTimeout) as caught:
            await h.client.chat("waits")
        assert isinstance(caught.value, TimeoutError)
        assert clock.elapsed == 2.5


async def test_the_deadline_is_honoured(server: MockServer, clock: FakeClock) -> None:
    async with Harness(server, clock, rpm=1, period=10, max_wait=60) as h:
        await h.client.chat("first")
        body = ChatRequest(model="m", messages=[{"role": "user", "content": "late"}])
        with pytest.raises(llmfast.DeadlineExceeded):
            await h.client.send(Request(body, deadline=clock.now + 3))
        assert clock.elapsed == 0
        response = await h.client.send(Request(body, deadline=clock.now + 11))
        assert (await response.collect()).text == "late"
        assert clock.elapsed == 10


async def test_followers_that_cannot_make_it_are_told_at_once(
    server: MockServer, clock: FakeClock
) -> None:
    gate = asyncio.Event()
    naps: list[float] = []

    async def held_sleep(seconds: float) -> None:  # the fake clock, moved by the test
        naps.append(seconds)
        await gate.wait()
        clock.now += seconds

    async with Harness(server, clock, rpm=1, period=10, sleep=held_sleep) as h:
        await h.client.chat("first")

        def call(text: str, deadline: float | None) -> asyncio.Future[llmfast.Response]:
            body = ChatRequest(model="m", messages=[{"role": "user", "content": text}])
            return asyncio.ensure_future(h.client.send(Request(body, deadline=deadline)))

        head = call("head", None)
        await until(lambda: naps == [10])  # the head sleeps until the window has room
        follower = call("follower", clock.now + 5)  # behind the head: not before 10
        with pytest.raises(llmfast.DeadlineExceeded):
            await follower
        assert clock.elapsed == 0  # told at once, while the head still sleeps
        assert naps == [10, 10]  # the head woke for the newcomer and went back to sleep
        gate.set()
        await (await head).aclose()
        assert h.admitted == {"first": 0, "head": 10}


async def test_a_cancelled_waiter_leaves_the_queue(server: MockServer, clock: FakeClock) -> None:
    server.enqueue(Reply.stall(after_chunks=1))
    async with Harness(server, clock, concurrency=1) as h:
        async with h.client.stream("holds the permit") as stream:
            first = asyncio.ensure_future(h.client.chat("cancelled"))
            second = asyncio.ensure_future(h.client.chat("served"))
            await until(lambda: h.layer.queue_length == 2)
            first.cancel()
            await until(lambda: h.layer.queue_length == 1)
            await stream.aclose()
            assert (await second).text == "served"
        with pytest.raises(asyncio.CancelledError):
            await first
        assert [r.json["messages"][0]["content"] for r in server.requests] == [
            "holds the permit",
            "served",
        ]


# --- concurrency: a permit held until the stream is over --------------------------------


_ENDINGS = {
    "end": Reply.echo(),
    "close": Reply.echo(),
    "error": Reply.stream_error({"message": "boom"}, after_chunks=3),
    "cancel": Reply.stall(after_chunks=2),
}


async def _hold_and_release(h: Harness, server: MockServer, how: str) -> None:
    """Open a stream, show a second call waits for its permit, end the stream by ``how``."""
    server.enqueue(_ENDINGS[how])
    got_chunk = asyncio.Event()
    finish = asyncio.Event()

    async def first() -> None:
        async with h.client.stream("a b c") as stream:
            chunks = aiter(stream)
            await anext(chunks)
            got_chunk.set()
            if how == "cancel":
                async for _ in chunks:  # the server stalls: cancelled while waiting here
                    pass
            await finish.wait()
            if how == "close":
                await chunks.aclose()  # type: ignore[attr-defined]
                return  # leaving the block closes the stream
            async for _ in chunks:
                pass

    task = asyncio.ensure_future(first())
    await got_chunk.wait()
    assert h.layer.in_flight == 1  # headers and a chunk arrived: still held
    second = asyncio.ensure_future(h.client.chat("next"))
    await until(lambda: h.layer.queue_length == 1)
    assert h.layer.in_flight == 1
    assert server.request_count == 1
    if how == "cancel":
        await until(lambda: server.request_count == 1)
        task.cancel()
    else:
        finish.set()
    outcome = (await asyncio.gather(task, return_exceptions=True))[0]
    expected = {
        "end": type(None),
        "close": type(None),
        "error": llmfast.StreamError,
        "cancel": asyncio.CancelledError,
    }
    assert isinstance(outcome, expected[how])
    assert (await second).text == "next"
    assert h.layer.in_flight == 0  # released exactly once: not -1


@pytest.mark.parametrize("how", ["end", "close", "error", "cancel"])
async def test_a_stream_holds_its_permit_until_it_is_over(server: MockServer, how: str) -> None:
    async with Harness(server, None, concurrency=1) as h:
        await _hold_and_release(h, server, how)
        assert h.layer.queue_length == 0


async def test_a_plain_call_and_a_failed_call_release_at_once(server: MockServer) -> None:
    server.enqueue(Reply.error(500), Reply.reset())
    async with Harness(server, None, concurrency=1) as h:
        with pytest.raises(llmfast.ServerError):
            await h.client.chat("a")
        with pytest.raises(llmfast.ReadError):
            await h.client.chat("b")
        assert (await h.client.chat("c")).text == "c"
        assert h.layer.in_flight == 0


async def test_concurrency_caps_calls_in_flight(server: MockServer) -> None:
    server.default = Reply.echo(delay=0.01)
    async with Harness(server, None, concurrency=3) as h:
        peak = 0

        def watch(event: Event) -> None:
            nonlocal peak
            peak = max(peak, h.layer.in_flight)

        h.client.on_event = watch
        replies = await asyncio.gather(*(h.client.chat(f"c{i}") for i in range(12)))
        assert len(replies) == 12
        assert peak == 3
        assert h.layer.in_flight == 0


# --- adaptive pacing: the provider's headers and its 429s -------------------------------


async def test_exhausted_requests_wait_for_the_reset(server: MockServer, clock: FakeClock) -> None:
    headers = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "2s"}
    server.enqueue(Reply.echo(headers=headers))
    async with Harness(server, clock) as h:
        await h.client.chat("first")
        await h.client.chat("second")
        assert h.admitted == {"first": 0, "second": 2}


async def test_the_budget_the_server_reports_is_paced_linearly(
    server: MockServer, clock: FakeClock
) -> None:
    headers = {
        "x-ratelimit-limit-requests": "10",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "10s",  # one request back per second
        "x-ratelimit-limit-tokens": "1000",
        "x-ratelimit-remaining-tokens": "1000",
        "x-ratelimit-reset-tokens": "0s",
    }
    server.enqueue(Reply.echo(headers=headers))
    async with Harness(server, clock) as h:
        await h.client.chat("first")
        await asyncio.gather(h.client.chat("second"), h.client.chat("third"))
        assert h.admitted == {"first": 0, "second": 1, "third": 2}


async def test_exhausted_tokens_hold_a_request_that_needs_more(
    server: MockServer, clock: FakeClock
) -> None:
    headers = {"x-ratelimit-remaining-tokens": "3", "x-ratelimit-reset-tokens": "6m0s"}
    server.enqueue(Reply.echo(headers=headers))
    async with Harness(server, clock) as h:
        await h.client.chat("first")
        await h.client.chat("fits")  # 1 token of the 3 left
        await h.client.chat("needs three tokens")  # 3 > 2 left: until the reset
        assert h.admitted == pytest.approx({"first": 0, "fits": 0, "needs three tokens": 360})


async def test_anthropic_resets_are_read_as_wall_clock_times(
    server: MockServer, clock: FakeClock
) -> None:
    reset = time.time() + 3.0
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(reset)) + f"{reset % 1:.6f}"[1:] + "Z"
    headers = {
        "anthropic-ratelimit-requests-remaining": "0",
        "anthropic-ratelimit-requests-reset": stamp,
    }
    server.enqueue(Reply.echo(headers=headers))
    async with Harness(server, clock) as h:
        await h.client.chat("first")
        await h.client.chat("second")
        assert 2.5 < h.admitted["second"] <= 3.0


@pytest.mark.parametrize(
    ("reply", "pause"),
    [
        (Reply.error(429, retry_after=2), 2.0),
        (Reply.error(429, retry_after_ms=1500), 1.5),
        (
            Reply.error(
                429,
                headers={"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "3s"},
            ),
            3.0,
        ),
        (Reply.error(429), 0.5),  # says nothing: default_pause
    ],
)
async def test_a_429_holds_every_caller_until_the_server_reset(
    server: MockServer, clock: FakeClock, reply: Reply, pause: float
) -> None:
    server.enqueue(reply)
    async with Harness(server, clock, tpm=1000, default_pause=0.5) as h:
        with pytest.raises(llmfast.RateLimitError):
            await h.client.chat("refused")
        assert h.layer.available_tokens == 1000  # refused: its tokens are given back
        await asyncio.gather(*(h.client.chat(f"after {i}") for i in range(3)))
        assert {h.admitted[f"after {i}"] for i in range(3)} == {pause}
        assert server.request_count == 4


async def test_without_adaptive_a_429_pauses_nothing(server: MockServer, clock: FakeClock) -> None:
    server.enqueue(Reply.error(429, retry_after=2, headers={"x-ratelimit-remaining-requests": "0"}))
    async with Harness(server, clock, rpm=100, adaptive=False) as h:
        with pytest.raises(llmfast.RateLimitError):
            await h.client.chat("refused")
        await h.client.chat("next")
        assert h.admitted == {"refused": 0, "next": 0}


async def test_after_a_429_nothing_reaches_the_server_before_retry_after(
    server: MockServer,
) -> None:
    """Done-when, on the real clock: every later call is admitted (and so reaches the
    server) no earlier than the 429's ``retry-after`` counted from before it was sent."""
    server.enqueue(Reply.error(429, retry_after_ms=200))
    async with Harness(server, None) as h:
        sent = time.monotonic()
        with pytest.raises(llmfast.RateLimitError):
            await h.client.chat("refused")
        await asyncio.gather(*(h.client.chat(f"after {i}") for i in range(5)))
        assert min(h.admitted[f"after {i}"] for i in range(5)) >= sent + 0.2
        assert server.request_count == 6


async def test_embeddings_are_counted_and_corrected(server: MockServer, clock: FakeClock) -> None:
    async with Harness(server, clock, tpm=1000, estimator=CharEstimator(chars_per_token=1)) as h:
        result = await h.client.embed(["alpha beta", "gamma"])
        assert result.usage is not None
        assert result.usage.total_tokens > 0
        assert h.layer.available_tokens == 1000 - result.usage.total_tokens


# --- the margin: the limit as the provider counts arrivals ------------------------------


def busiest_window(stamps: list[float], length: float) -> int:
    """The most stamps in any half-open window ``[t, t + length)``, wherever it starts."""
    busiest, start = 0, 0
    for end, stamp in enumerate(stamps):
        while stamps[start] <= stamp - length:
            start += 1
        busiest = max(busiest, end - start + 1)
    return busiest


async def test_the_server_logs_arrivals_on_the_monotonic_clock(server: MockServer) -> None:
    before = time.monotonic()
    async with Client(base_url=server.url, model="m") as client:
        await client.warmup(1)
        await client.chat("one")
        await client.chat("two")
    after = time.monotonic()
    chats = server.arrivals("/v1/chat/completions")
    assert len(chats) == 2
    assert before <= chats[0] <= chats[1] <= after
    assert len(server.arrivals()) == 3  # the warm-up's GET too
    assert [r.arrived for r in server.requests][1:] == chats


async def test_the_limit_holds_at_arrival_at_the_server(server: MockServer) -> None:
    """On the real clock, 16 callers, the default margin: no window of the server's
    arrival log holds more than the limit (with ``margin=0`` it held 25-29 of 20), and
    the limit is used to at least 90%."""
    limit, period, periods = 20, 0.5, 4
    async with Harness(server, None, rpm=limit, period=period, margin=None) as h:
        await h.client.warmup(16)
        server.reset()
        end = time.monotonic() + periods * period + period / 2

        async def work() -> None:
            while time.monotonic() < end:
                await h.client.chat("x")

        await asyncio.gather(*(work() for _ in range(16)))
    arrived = server.arrivals("/v1/chat/completions")
    first = arrived[0]
    for window in range(periods):
        low, high = first + window * period, first + (window + 1) * period
        assert sum(low <= t < high for t in arrived) >= 0.9 * limit, window
    assert busiest_window(arrived, period) <= limit
