"""``watched``: a stream whose end is reported once, however it ends, that still offers
the backend's batches; the router and the circuit breaker use it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from llmfast import Client, OpenAIBackend, Router
from llmfast.commit import commit_first_chunk
from llmfast.errors import StreamEventError
from llmfast.layers import CircuitBreaker, Retry
from llmfast.testing import MockServer, Reply
from llmfast.transport import Request, Response
from llmfast.types import ChatRequest, UserMessage
from llmfast.watched import Ends, watched

WORDS = "one two three four five six seven eight"


@pytest.fixture
async def server() -> AsyncIterator[MockServer]:
    async with MockServer() as server:
        yield server


def _request() -> Request:
    body = ChatRequest(model="m", messages=[UserMessage("x")])
    return Request(body, stream=True)


async def _watched_stream(
    client: Client, ends: list[BaseException | None]
) -> tuple[Response, Response]:
    inner = await client.send(_request())
    return inner, watched(inner, ends.append)


def _text(chunks: list[object]) -> str:
    return "".join(getattr(chunk, "text", "") for chunk in chunks)


async def test_read_out_by_batches_reports_none_once(server: MockServer) -> None:
    server.enqueue(Reply.text(WORDS))
    ends: list[BaseException | None] = []
    async with Client(OpenAIBackend(server.url), layers=[]) as client:
        inner, outer = await _watched_stream(client, ends)
        batches = outer.batches()
        assert batches is not None  # the backend's batches come through
        chunks = [chunk async for batch in batches for chunk in batch]
        await outer.aclose()
    assert _text(chunks) == WORDS
    assert ends == [None]
    assert inner.closed


async def test_read_out_one_chunk_at_a_time_reports_none_once(server: MockServer) -> None:
    server.enqueue(Reply.text(WORDS))
    ends: list[BaseException | None] = []
    async with Client(OpenAIBackend(server.url), layers=[]) as client:
        _, outer = await _watched_stream(client, ends)
        chunks = [chunk async for chunk in outer]
        await outer.aclose()
    assert _text(chunks) == WORDS
    assert ends == [None]


@pytest.mark.parametrize("by_batches", [True, False])
async def test_closed_early_or_never_read_reports_a_non_exception(
    server: MockServer, by_batches: bool
) -> None:
    server.enqueue(Reply.text(WORDS, chunk_size=1), Reply.text(WORDS))
    ends: list[BaseException | None] = []
    async with Client(OpenAIBackend(server.url), layers=[]) as client:
        inner, outer = await _watched_stream(client, ends)
        if by_batches:
            batches = outer.batches()
            assert batches is not None
            await anext(batches)
        else:
            await anext(aiter(outer))
        await outer.aclose()
        assert inner.closed
        never_inner, never = await _watched_stream(client, ends)
        await never.aclose()
        assert never_inner.closed
    assert len(ends) == 2
    assert all(isinstance(e, BaseException) and not isinstance(e, Exception) for e in ends)


async def test_a_failure_is_reported_as_itself(server: MockServer) -> None:
    server.enqueue(Reply.stream_error({"message": "boom"}, after_chunks=2))
    ends: list[BaseException | None] = []
    async with Client(OpenAIBackend(server.url), layers=[]) as client:
        _, outer = await _watched_stream(client, ends)
        batches = outer.batches()
        assert batches is not None
        with pytest.raises(StreamEventError):
            async for _ in batches:
                pass
        await outer.aclose()
    assert len(ends) == 1
    assert isinstance(ends[0], StreamEventError)


async def test_batches_pass_through_retry_router_and_breaker(server: MockServer) -> None:
    """The gateway's stack keeps one async step per read, and still counts outcomes."""
    server.enqueue(Reply.text(WORDS), Reply.stream_error({"message": "x"}, after_chunks=3))
    router = Router([OpenAIBackend(server.url)], breaker=CircuitBreaker(consecutive=1))
    async with Client(router, layers=[Retry(max_attempts=2)]) as client:
        response = await client.send(_request())
        batches = response.batches()
        assert batches is not None
        chunks = [chunk async for batch in batches for chunk in batch]
        await response.aclose()
        assert _text(chunks) == WORDS
        (state,) = router._states
        assert state.in_flight == 0
        breaker = router.breakers[0]
        assert breaker.available()
        failing = await client.send(_request())
        with pytest.raises(StreamEventError):
            async for _ in failing:
                pass
        await failing.aclose()
        assert state.in_flight == 0
        assert not breaker.available()  # the in-stream failure counted: open


async def test_a_backend_stream_is_watched_without_a_wrapper(server: MockServer) -> None:
    """Its end is reported by the backend's read itself: watching it twice (a breaker
    and a router) takes no layer per read, and both hear the end, inner first."""
    server.enqueue(Reply.text(WORDS))
    ends: list[tuple[str, BaseException | None]] = []
    async with Client(OpenAIBackend(server.url), layers=[]) as client:
        inner = await client.send(_request())
        body = inner._chunks
        once = watched(inner, lambda error: ends.append(("first", error)))
        twice = watched(once, lambda error: ends.append(("second", error)))
        assert twice is inner
        assert twice._chunks is body
        batches = twice.batches()
        assert batches is not None
        chunks = [chunk async for batch in batches for chunk in batch]
        assert ends == [("first", None), ("second", None)]  # at the end of the read
        await twice.aclose()
    assert _text(chunks) == WORDS
    assert ends == [("first", None), ("second", None)]


async def test_a_body_that_has_ended_is_wrapped_and_still_reports(server: MockServer) -> None:
    server.enqueue(Reply.text(WORDS))
    ends: list[BaseException | None] = []
    async with Client(OpenAIBackend(server.url), layers=[]) as client:
        inner = await client.send(_request())
        batches = inner.batches()
        assert batches is not None
        async for _ in batches:
            pass
        late = watched(inner, ends.append)  # the backend's read ended: it cannot take it
        assert late is not inner
        await late.aclose()
    assert len(ends) == 1
    assert isinstance(ends[0], GeneratorExit)  # closed, never read through the watcher


def test_every_callback_hears_the_end_even_when_one_raises() -> None:
    heard: list[str] = []

    def broken(error: BaseException | None) -> None:
        heard.append("broken")
        raise RuntimeError("a callback's bug")

    ends = Ends()
    assert ends.add(broken)
    assert ends.add(lambda error: heard.append("after"))
    with pytest.raises(RuntimeError):
        ends.report(None)
    assert heard == ["broken", "after"]
    ends.report(None)  # once only
    assert heard == ["broken", "after"]
    assert not ends.add(lambda error: heard.append("late"))


async def test_a_committed_stream_is_not_committed_again(server: MockServer) -> None:
    """A retry layer around a router finds the router's first chunk already waited
    for: the response comes back as it is, with no second replay of it."""
    server.enqueue(Reply.text(WORDS))
    async with Client(OpenAIBackend(server.url), layers=[]) as client:
        committed = await commit_first_chunk(await client.send(_request()))
        assert await commit_first_chunk(committed) is committed
        batches = committed.batches()
        assert batches is not None
        chunks = [chunk async for batch in batches for chunk in batch]
        await committed.aclose()
    assert _text(chunks) == WORDS
