"""Structured streams over real HTTP on all four backends: partial objects equal the
prefix's value at every chunk, and the final object is validated."""

from __future__ import annotations

import json

import msgspec
import pytest

from llmfast.errors import OutputValidationError
from llmfast.structured import output_spec
from llmfast.structured.stream import StructuredStream
from llmfast.testing import MockServer, Reply
from tests.structured.clients import PROVIDERS, client_for
from tests.structured.test_call import EXPECTED, GOOD, Invoice, Line
from tests.structured.test_partial import reference


def text_so_far(stream: StructuredStream[object], tool: bool) -> str:
    pieces = []
    for chunk in stream.stream.chunks:
        for choice in chunk.choices:
            if tool:
                pieces += [
                    c.function.arguments or "" for c in choice.delta.tool_calls or () if c.function
                ]
            else:
                pieces.append(choice.delta.content or "")
    return "".join(pieces)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_partials_are_the_prefix_value_at_every_chunk(
    server: MockServer, provider: str
) -> None:
    text = json.dumps(GOOD)
    tool = provider == "anthropic"
    if tool:
        server.enqueue(Reply.tool_calls([{"name": "Invoice", "arguments": text}]))
    else:
        server.enqueue(Reply.text(text, chunk_size=5))
    seen = []
    async with client_for(server, provider) as client:
        async with StructuredStream(client, "bill", output_spec(Invoice), None, {}) as stream:
            async for partial in stream.partials(raw=True):
                assert partial == reference(text_so_far(stream, tool))
                seen.append(partial)
        assert stream.output == EXPECTED
    assert len(seen) > 3 or tool
    assert seen[-1] == GOOD
    assert stream.completion.usage is not None


async def test_strings_grow_in_the_partials(server: MockServer) -> None:
    server.enqueue(
        Reply.text('{"number": 1, "lines": [{"item": "a long item name"}]}', chunk_size=4)
    )
    async with (
        client_for(server, "openai") as client,
        StructuredStream(client, "bill", output_spec(Invoice), None, {}) as stream,
    ):
        items = [
            p["lines"][0]["item"]
            async for p in stream.partials(raw=True)
            if p and p.get("lines") and "item" in p["lines"][0]
        ]
    assert items[-1] == "a long item name"
    assert len(set(items)) > 2
    assert all(items[-1].startswith(i) for i in items)


async def test_a_wrapped_output_streams_unwrapped(server: MockServer) -> None:
    server.enqueue(Reply.text('{"value": [{"item": "a"}, {"item": "b"}]}', chunk_size=3))
    async with (
        client_for(server, "openai") as client,
        StructuredStream(client, "x", output_spec(list[Line]), None, {}) as stream,
    ):
        partials = [p async for p in stream.partials(raw=True)]
    assert stream.output == [Line("a"), Line("b")]
    assert partials[-1] == [{"item": "a"}, {"item": "b"}]


async def test_a_stream_that_does_not_validate_is_a_typed_error(server: MockServer) -> None:
    server.enqueue(Reply.text('{"number": "x", "lines": []}', chunk_size=4))
    async with (
        client_for(server, "openai") as client,
        StructuredStream(client, "x", output_spec(Invoice), None, {}) as stream,
    ):
        with pytest.raises(OutputValidationError) as info:
            await stream.get_output()
    assert info.value.attempts[0].path == "$.number"


async def test_prompted_streams_skip_the_prose_before_the_json(server: MockServer) -> None:
    server.enqueue(Reply.text(f"Here you go: {json.dumps(GOOD)} -- enjoy", chunk_size=6))
    async with (
        client_for(server, "openai") as client,
        StructuredStream(client, "x", output_spec(Invoice), "prompted", {}) as stream,
    ):
        partials = [p async for p in stream.partials(raw=True)]
    assert stream.output == EXPECTED
    assert partials[-1] == GOOD


class Tagged(msgspec.Struct, tag=True):
    name: str


class Other(msgspec.Struct, tag=True):
    size: int


class Basket(msgspec.Struct):
    owner: str
    things: list[Tagged | Other]
    lines: list[Line] = []


async def test_partials_are_typed_objects_by_default(server: MockServer) -> None:
    value = {
        "owner": "Ada Lovelace",
        "things": [{"type": "Tagged", "name": "pen"}, {"type": "Other", "size": 3}],
        "lines": [{"item": "tea", "qty": 2}],
    }
    server.enqueue(Reply.text(json.dumps(value), chunk_size=5))
    async with (
        client_for(server, "openai") as client,
        StructuredStream(client, "x", output_spec(Basket), None, {}) as stream,
    ):
        partials = [p async for p in stream.partials()]
    first, last = partials[0], partials[-1]
    assert type(first).__name__ == "Basket"
    assert first.things is None  # fields are None until they arrive
    assert first.lines is None
    assert last.owner == "Ada Lovelace"
    assert [type(t).__name__ for t in last.things] == ["Tagged", "Other"]
    assert last.things[1].size == 3
    assert last.lines[0].item == "tea"
    assert stream.output == msgspec.convert(value, Basket)
    # Strings grow: some partial had a prefix of the owner's name.
    owners = [p.owner for p in partials if p.owner]
    assert owners[0] != "Ada Lovelace"
    assert all("Ada Lovelace".startswith(o) for o in owners)
    # A completed line is converted once and shared by every later partial.
    with_lines = [p for p in partials if p.lines and p.lines[0].qty == 2]
    assert all(p.lines[0] is with_lines[0].lines[0] for p in with_lines)
