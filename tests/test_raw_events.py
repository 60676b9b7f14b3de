"""``Request(raw_events=True)``: an OpenAI-format stream's batches come as
[`RawEvents`][llmfast.raw_events.RawEvents] through retry, router and breaker, and
reading the response chunk by chunk still gives every typed chunk."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from llmfast import Client, OpenAIBackend, Route, Router
from llmfast.layers import CircuitBreaker, Retry
from llmfast.raw_events import RawEvents
from llmfast.testing import MockServer, Reply
from llmfast.transport import Request
from llmfast.types import ChatRequest, UserMessage


@pytest.fixture
async def server() -> AsyncIterator[MockServer]:
    async with MockServer() as server:
        yield server


def _client(server: MockServer) -> Client:
    backend = OpenAIBackend(server.url, api_key="sk-test")
    router = Router([Route(backend, model="m")], breaker=CircuitBreaker())
    return Client(router, layers=[Retry(max_attempts=2)])


def _request(raw: bool) -> Request:
    body = ChatRequest(model="m", messages=[UserMessage(content="hi")])
    return Request(body, stream=True, raw_events=raw)


async def test_batches_are_raw_events_through_the_layers(server: MockServer) -> None:
    server.enqueue(Reply.text("one two three", chunk_size=1))
    async with _client(server) as client:
        response = await client.send(_request(True))
        batches = response.batches()
        assert batches is not None
        reads: list[Any] = [batch async for batch in batches]
        await response.aclose()
    assert reads
    assert all(type(read) is RawEvents for read in reads)
    text = "".join(chunk.text for read in reads for chunk in read)
    assert text == "one two three"
    assert sum(len(read.notable) for read in reads) < sum(len(read) for read in reads)


async def test_reading_chunk_by_chunk_gives_the_typed_chunks(server: MockServer) -> None:
    server.enqueue(
        Reply.text("one two three", chunk_size=1), Reply.text("one two three", chunk_size=1)
    )
    async with _client(server) as client:
        raw = await (await client.send(_request(True))).collect()
        typed = await (await client.send(_request(False))).collect()
    assert raw.choices[0].message.content == "one two three"
    assert raw.choices == typed.choices
    assert raw.usage == typed.usage


async def test_a_failure_before_the_first_chunk_is_retried(server: MockServer) -> None:
    server.enqueue(Reply.error(503, retry_after=0), Reply.text("ok then"))
    async with _client(server) as client:
        result = await (await client.send(_request(True))).collect()
    assert result.choices[0].message.content == "ok then"
    assert len(server.requests) == 2
