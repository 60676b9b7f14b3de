"""``watched``: a stream whose end is reported once, however it ends, that still offers
the backend's batches; the router and the circuit breaker use it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from llmfast import Client, OpenAIBackend, Router
from llmfast.errors import StreamEventError
from llmfast.layers import CircuitBreaker, Retry
from llmfast.testing import MockServer, Reply
from llmfast.transport import Request, Response
from llmfast.types import ChatRequest, UserMessage
from llmfast.watched import watched

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
