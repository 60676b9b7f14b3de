"""One test body, two backends: the chat, stream, tools, structured-output and error
cases give the same shared results over the Responses backend and the chat-completions
one, through every default layer (retry included), and then through cache and coalescing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import msgspec
import pytest

import llmfast
from llmfast import Client
from llmfast.backends.base import Backend
from llmfast.backends.openai import OpenAIBackend
from llmfast.backends.openai_responses import OpenAIResponsesBackend
from llmfast.events import Event
from llmfast.layers import Cache, Coalesce, RateLimit, backend_identity
from llmfast.testing import MockServer, Reply
from tests.fakeclock import FakeClock


class Invoice(msgspec.Struct):
    customer: str
    total: float


TOOL = {
    "type": "function",
    "function": {
        "name": "add",
        "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}},
    },
}
BACKENDS: dict[str, Callable[[str], Backend]] = {
    "chat-completions": lambda url: OpenAIBackend(url, api_key="k", model="m"),
    "responses": lambda url: OpenAIResponsesBackend(url, api_key="k", model="m"),
}


async def _shared_results(make: Callable[[str], Backend]) -> dict[str, Any]:
    """Every case, as the shared types say it (what must not depend on the backend)."""
    out: dict[str, Any] = {}
    async with MockServer() as server, Client(make(server.url), stats=True) as client:
        result = await client.chat("plain words here", temperature=0.2)
        out["chat"] = (result.text, result.finish_reason, result.model)
        async with client.stream("streamed words here") as stream:
            out["stream"] = [chunk.text async for chunk in stream if chunk.text]
        out["stream_result"] = (stream.completion.text, stream.completion.finish_reason)
        server.enqueue(Reply.tool_calls([{"id": "call_1", "name": "add", "arguments": {"a": 2}}]))
        result = await client.chat("add", tools=[TOOL], tool_choice="required")
        out["tools"] = (
            [
                (c.id, c.function.name, msgspec.json.decode(c.function.arguments))
                for c in result.tool_calls
            ],
            result.finish_reason,
        )
        structured = await client.chat("bill me", output=Invoice)
        out["structured"] = type(structured.output).__name__
        server.enqueue(Reply.text("cut short", finish_reason="length"))
        out["length"] = (await client.chat("x")).finish_reason
        server.enqueue(Reply.error(400, message="bad thing"))
        with pytest.raises(llmfast.BadRequestError) as bad:
            await client.chat("x")
        out["400"] = (type(bad.value).__name__, bad.value.status, "bad thing" in str(bad.value))
        server.enqueue(Reply.error(429, message="slow", retry_after=0))
        out["429_then_ok"] = (await client.chat("recovered")).text
        server.enqueue(Reply.reset(after_chunks=0))
        out["reset_then_ok"] = (await client.chat("again")).text
        out["requests"] = server.request_count
        stats = client.stats()
        out["stats"] = (stats.calls, stats.errors, stats.input_tokens > 0, stats.first_chunk.count)
        out["open_after"] = client._pool.connections_in_use()
    return out


async def test_both_backends_give_the_same_shared_results() -> None:
    results = {name: await _shared_results(make) for name, make in BACKENDS.items()}
    assert results["responses"] == results["chat-completions"]
    got = results["responses"]
    assert got["chat"] == ("plain words here", "stop", "m")
    assert "".join(got["stream"]) == "streamed words here"
    assert got["tools"] == ([("call_1", "add", {"a": 2})], "tool_calls")
    assert got["structured"] == "Invoice"
    assert got["400"] == ("BadRequestError", 400, True)
    assert got["stats"] == (8, 1, True, 1)
    assert got["requests"] == 10  # the 429 and the reset were retried once each


@pytest.mark.parametrize("name", list(BACKENDS))
async def test_cache_and_coalescing_work_through_it(name: str) -> None:
    async with MockServer() as server:
        backend = BACKENDS[name](server.url)
        async with Client(backend, layers=[Cache(), Coalesce()]) as client:
            server.enqueue(Reply.text("shared answer", token_delay=0.01))
            first, second = await asyncio.gather(
                client.chat("same", temperature=0), client.chat("same", temperature=0)
            )
            third = await client.chat("same", temperature=0)
            async with client.stream("streamed", temperature=0) as stream:
                live = [chunk.text async for chunk in stream]
            async with client.stream("streamed", temperature=0) as stream:
                replayed = [chunk.text async for chunk in stream]
    assert first.text == second.text == third.text == "shared answer"
    assert replayed == live
    assert server.request_count == 2  # one chat (coalesced, then cached), one stream


def test_the_api_kind_is_part_of_the_cache_key() -> None:
    url = "http://127.0.0.1:1/v1"
    chat = backend_identity(BACKENDS["chat-completions"](url))
    responses = backend_identity(BACKENDS["responses"](url))
    assert chat != responses
    assert "openai-responses" in responses


@pytest.mark.parametrize("name", list(BACKENDS))
async def test_rate_limit_headers_pace_the_next_call(name: str) -> None:
    clock = FakeClock()
    waits: list[float] = []

    def record(event: Event) -> None:
        if event.name == "ratelimit.wait":
            waits.append(round(event.elapsed or 0.0, 6))

    headers = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "2s"}
    limit = RateLimit(clock=clock, sleep=clock.sleep, margin=0)
    async with MockServer() as server:
        server.enqueue(Reply.echo(headers=headers))
        backend = BACKENDS[name](server.url)
        async with Client(backend, layers=[limit], on_event=record) as client:
            await client.chat("first")
            async with client.stream("second") as stream:
                async for _ in stream:
                    pass
    assert waits == [0, 2]  # the second call waited for the window the server named
    assert clock.sleeps == [2]
