"""The structured API on the Client itself: chat(output=), extract, stream(output=),
run_tools — through the default layers and the cache."""

from __future__ import annotations

import json
from typing import Literal

import msgspec
import pytest

import llmfast
from llmfast.layers import Cache, MemoryStore
from llmfast.testing import MockServer, Reply
from tests.structured.test_call import EXPECTED, GOOD, Invoice


async def test_chat_with_output_returns_a_typed_completion() -> None:
    async with MockServer() as server, llmfast.Client(base_url=server.url, model="m") as client:
        server.enqueue(Reply.error(429, retry_after=0), Reply.text(json.dumps(GOOD)))
        reply = await client.chat("bill me", output=Invoice)
        assert reply.output == EXPECTED
        assert isinstance(reply, llmfast.StructuredCompletion)
        assert reply.text == json.dumps(GOOD)
        assert server.request_count == 2  # the default Retry took the 429
        server.enqueue(Reply.text('{"value": "b"}'))
        assert await client.extract("a or b?", Literal["a", "b"]) == "b"
        server.enqueue(Reply.text("nope"), Reply.text(json.dumps(GOOD)))
        with pytest.raises(llmfast.OutputValidationError):
            await client.chat(
                messages=[{"role": "user", "content": "x"}],
                output=llmfast.Output(Invoice, max_attempts=1),
            )


async def test_output_options_choose_the_mode() -> None:
    async with MockServer() as server, llmfast.Client(base_url=server.url, model="m") as client:
        reply = await client.chat("bill", output=llmfast.Output(Invoice, mode="tool"))
    assert isinstance(reply.output, Invoice)  # the server made a valid tool call by itself
    assert server.requests[0].json["tool_choice"]["function"]["name"] == "Invoice"


async def test_stream_with_output_yields_partials() -> None:
    async with MockServer() as server, llmfast.Client(base_url=server.url, model="m") as client:
        server.enqueue(Reply.text(json.dumps(GOOD), chunk_size=6))
        async with client.stream("bill", output=Invoice) as stream:
            partials = [p async for p in stream.partials(raw=True)]
        assert stream.output == EXPECTED
        assert partials[-1] == GOOD
        assert len(partials) > 3


async def test_run_tools_on_the_client() -> None:
    @llmfast.tool
    def add(a: int, b: int) -> int:
        return a + b

    async with MockServer() as server, llmfast.Client(base_url=server.url, model="m") as client:
        server.enqueue(
            Reply.tool_calls([{"name": "add", "arguments": {"a": 2, "b": 3}}]), Reply.text("5")
        )
        run = await client.run_tools("2+3?", [add], temperature=0)
    assert run.text == "5"
    assert server.requests[1].json["messages"][-1]["content"] == "5"
    assert server.requests[0].json["temperature"] == 0


async def test_a_structured_reply_is_cached_like_any_other() -> None:
    class Point(msgspec.Struct):
        x: int
        y: int

    cache = Cache(store=MemoryStore())
    async with (
        MockServer() as server,
        llmfast.Client(base_url=server.url, model="m", layers=[cache]) as client,
    ):
        first = await client.chat("where?", output=Point, temperature=0)
        second = await client.chat("where?", output=Point, temperature=0)
    assert first.output == second.output
    assert server.request_count == 1


def test_the_sync_client_speaks_structured_output_too() -> None:
    from llmfast.sync import SyncClient

    @llmfast.tool
    def double(x: int) -> int:
        return 2 * x

    with MockServer.in_thread() as server, SyncClient(base_url=server.url, model="m") as client:
        reply = client.chat("bill", output=Invoice)
        assert isinstance(reply.output, Invoice)
        assert isinstance(client.extract("bill", Invoice), Invoice)
        server.enqueue(
            Reply.tool_calls([{"name": "double", "arguments": {"x": 4}}]), Reply.text("8")
        )
        run = client.run_tools("double 4", [double])
    assert run.text == "8"
    assert server.requests[-1].json["messages"][-1]["content"] == "8"
