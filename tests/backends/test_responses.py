"""The OpenAI Responses backend: request mapping, result mapping, the event stream and
its errors, over real HTTP to the test server's ``/v1/responses``."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import llmfast
from llmfast import Client, ToolCall, UserMessage
from llmfast.backends._responses_request import wire_body
from llmfast.backends._responses_stream import ResponsesStreamParser
from llmfast.backends._responses_wire import completion_from
from llmfast.backends.openai_responses import OpenAIResponsesBackend
from llmfast.errors import (
    DecodeError,
    RateLimitError,
    StreamEventError,
    UnsupportedParameterError,
)
from llmfast.testing import MockServer, Reply
from llmfast.types import (
    AssistantMessage,
    ChatRequest,
    FunctionCall,
    ImagePart,
    ImageURL,
    SystemMessage,
    TextPart,
    ToolMessage,
)

TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def _client(server: MockServer, **kwargs: Any) -> Client:
    backend = OpenAIResponsesBackend(server.url, api_key="sk-secret", model="m", **kwargs)
    return Client(backend)


# -- request mapping ----------------------------------------------------------------------


def test_request_mapping() -> None:
    body = ChatRequest(
        model="gpt-5",
        messages=[
            SystemMessage(content="Be brief."),
            UserMessage(
                content=[
                    TextPart(text="What is this?"),
                    ImagePart(image_url=ImageURL(url="https://x/y.png", detail="low")),
                ]
            ),
            AssistantMessage(
                content="Let me look.",
                tool_calls=[ToolCall(id="call_1", function=FunctionCall("get_weather", "{}"))],
            ),
            ToolMessage(content="sunny", tool_call_id="call_1"),
        ],
        tools=[TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "out", "schema": {"type": "object"}, "strict": True},
        },
        max_tokens=100,
        reasoning_effort="low",
        temperature=0.5,
        top_p=0.9,
        user="u1",
        extra_body={"metadata": {"k": "v"}, "store": False, "reasoning": {"summary": "auto"}},
    )
    assert wire_body(body) == {
        "model": "gpt-5",
        "instructions": "Be brief.",
        "input": [
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is this?"},
                    {"type": "input_image", "image_url": "https://x/y.png", "detail": "low"},
                ],
            },
            {"role": "assistant", "content": "Let me look."},
            {
                "type": "function_call",
                "call_id": "call_1",
                "name": "get_weather",
                "arguments": "{}",
            },
            {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
        ],
        "max_output_tokens": 100,
        "temperature": 0.5,
        "top_p": 0.9,
        "user": "u1",
        "reasoning": {"effort": "low", "summary": "auto"},
        "tools": [
            {
                "type": "function",
                "name": "get_weather",
                "description": "Weather in a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                "strict": False,
            }
        ],
        "tool_choice": {"type": "function", "name": "get_weather"},
        "text": {
            "format": {
                "type": "json_schema",
                "name": "out",
                "schema": {"type": "object"},
                "strict": True,
            }
        },
        "metadata": {"k": "v"},
        "store": False,
    }


def test_input_items_pass_through_and_late_system_messages_stay_in_place() -> None:
    reasoning = {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "e"}
    body = ChatRequest(
        model="m",
        messages=[{"role": "user", "content": "hi"}, reasoning, SystemMessage(content="now")],
    )
    wire = wire_body(body)
    assert "instructions" not in wire
    assert wire["input"] == [
        {"role": "user", "content": "hi"},
        reasoning,
        {"role": "system", "content": "now"},
    ]


@pytest.mark.parametrize(("name", "value"), [("n", 2), ("seed", 1), ("stop", "x")])
def test_parameters_the_api_lacks_are_refused(name: str, value: Any) -> None:
    body = ChatRequest(model="m", messages=[], **{name: value})
    with pytest.raises(UnsupportedParameterError, match=name):
        wire_body(body)


# -- result mapping -----------------------------------------------------------------------


def _response(**fields: Any) -> bytes:
    base: dict[str, Any] = {
        "id": "resp_1",
        "object": "response",
        "created_at": 1700000000,
        "model": "gpt-5",
        "status": "completed",
        "output": [],
        "usage": {
            "input_tokens": 10,
            "input_tokens_details": {"cached_tokens": 4},
            "output_tokens": 7,
            "output_tokens_details": {"reasoning_tokens": 3},
            "total_tokens": 17,
        },
    }
    return msgspec.json.encode({**base, **fields})


def test_result_mapping() -> None:
    output = [
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "hm"}]},
        {
            "type": "message",
            "role": "assistant",
            "content": [
                {"type": "output_text", "text": "Hello", "annotations": []},
                {"type": "refusal", "refusal": "no"},
            ],
        },
        {
            "type": "function_call",
            "id": "fc_1",
            "call_id": "call_9",
            "name": "f",
            "arguments": "{}",
        },
        {"type": "web_search_call", "id": "ws_1", "status": "completed"},
    ]
    result = completion_from(_response(output=output))
    assert result.id == "resp_1"
    assert result.model == "gpt-5"
    assert result.created == 1700000000
    assert result.text == "Hello"
    assert result.message.refusal == "no"
    assert result.message.reasoning_content == "hm"
    assert result.tool_calls == [ToolCall(id="call_9", function=FunctionCall("f", "{}"))]
    assert result.finish_reason == "tool_calls"
    assert result.choices[0].provider_finish_reason == "completed"
    usage = result.usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (10, 7, 17)
    assert usage.prompt_tokens_details == {"cached_tokens": 4}
    assert usage.completion_tokens_details == {"reasoning_tokens": 3}
    assert result.native is not None
    assert result.native["output"][3]["type"] == "web_search_call"


@pytest.mark.parametrize(
    ("reason", "finish", "kept"),
    [
        ("max_output_tokens", "length", "max_output_tokens"),
        ("content_filter",) * 2 + ("content_filter",),
    ],
)
def test_incomplete_maps_to_a_finish_reason(reason: str, finish: str, kept: str) -> None:
    raw = _response(status="incomplete", incomplete_details={"reason": reason})
    result = completion_from(raw)
    assert result.finish_reason == finish
    assert result.choices[0].provider_finish_reason == kept


# -- the event stream ---------------------------------------------------------------------


def _stream_body(pieces: list[str]) -> bytes:
    events: list[dict[str, Any]] = [
        {
            "type": "response.created",
            "response": {"id": "resp_s", "model": "m", "status": "in_progress"},
        },
        {"type": "response.output_item.added", "output_index": 0, "item": {"type": "message"}},
        *({"type": "response.output_text.delta", "delta": piece} for piece in pieces),
        {"type": "response.some_future_event", "whatever": [1, 2]},
        {"type": "response.completed", "response": {"id": "resp_s", "status": "completed"}},
    ]
    out = b""
    for number, event in enumerate(events):
        event["sequence_number"] = number
        out += b"event: %s\ndata: %s\n\n" % (event["type"].encode(), msgspec.json.encode(event))
    return out


@settings(max_examples=60, deadline=None)
@given(
    pieces=st.lists(st.text(min_size=1, max_size=5), max_size=8),
    cuts=st.lists(st.integers(min_value=1, max_value=40), max_size=30),
)
def test_any_split_of_a_stream_gives_the_same_chunks(pieces: list[str], cuts: list[int]) -> None:
    body = _stream_body(pieces)
    parser = ResponsesStreamParser()
    chunks = []
    position = 0
    for size in cuts:
        chunks += parser.feed(body[position : position + size])
        position += size
    chunks += parser.feed(body[position:])
    chunks += parser.close()
    accumulator = llmfast.ChatAccumulator()
    accumulator.extend(chunks)
    result = accumulator.result()
    assert (result.text or "") == "".join(pieces)
    assert result.finish_reason == "stop"
    assert parser.last_sequence == len(pieces) + 3  # the unknown event counted too


def test_a_malformed_event_is_a_decode_error() -> None:
    parser = ResponsesStreamParser()
    with pytest.raises(DecodeError):
        parser.feed(b"event: response.output_text.delta\ndata: {not json}\n\n")


# -- over HTTP ----------------------------------------------------------------------------


async def test_chat_and_stream_over_http() -> None:
    async with MockServer() as server, _client(server) as client:
        result = await client.chat("hello there", max_tokens=5)
        assert result.text == "hello there"
        assert result.finish_reason == "stop"
        assert result.native is not None
        assert result.native["id"] == result.id
        async with client.stream("one two three") as stream:
            texts = [chunk.text async for chunk in stream]
        assert "".join(texts) == "one two three"
        assert stream.completion.usage is not None
    sent = server.requests[0]
    assert sent.path == "/v1/responses"
    assert sent.headers["authorization"] == "Bearer sk-secret"
    assert sent.json["input"] == [{"role": "user", "content": "hello there"}]
    assert sent.json["max_output_tokens"] == 5
    assert server.requests[1].json["stream"] is True
    assert "sk-secret" not in repr(client)


async def test_tool_calls_keep_their_call_ids_and_round_trip() -> None:
    async with MockServer() as server, _client(server) as client:
        server.enqueue(
            Reply.tool_calls(
                [{"id": "call_7", "name": "get_weather", "arguments": {"city": "Oslo"}}]
            )
        )
        first = await client.chat("weather?", tools=[TOOL])
        assert first.finish_reason == "tool_calls"
        [call] = first.tool_calls
        assert call.id == "call_7"
        assert msgspec.json.decode(call.function.arguments) == {"city": "Oslo"}
        server.enqueue(Reply.tool_calls([{"name": "get_weather", "arguments": {"city": "Rome"}}]))
        async with client.stream("again", tools=[TOOL]) as stream:
            async for _ in stream:
                pass
        assert stream.completion.tool_calls[0].function.name == "get_weather"
        assert stream.completion.finish_reason == "tool_calls"
        messages = [
            UserMessage(content="weather?"),
            AssistantMessage(tool_calls=first.tool_calls),
            ToolMessage(content="sunny", tool_call_id="call_7"),
        ]
        await client.chat(messages, tools=[TOOL])
    items = server.requests[-1].json["input"]
    assert items[1] == {
        "type": "function_call",
        "call_id": "call_7",
        "name": "get_weather",
        "arguments": call.function.arguments,
    }
    assert items[2] == {"type": "function_call_output", "call_id": "call_7", "output": "sunny"}


async def test_a_429_is_a_rate_limit_error() -> None:
    async with (
        MockServer() as server,
        Client(OpenAIResponsesBackend(server.url, api_key="k", model="m"), layers=[]) as client,
    ):
        server.enqueue(Reply.error(429, message="slow down", retry_after=7))
        with pytest.raises(RateLimitError) as caught:
            await client.chat("hi")
    assert caught.value.retry_after == 7


async def test_an_in_stream_error_before_any_chunk_is_retried() -> None:
    async with MockServer() as server, _client(server) as client:
        server.enqueue(
            Reply.stream_error({"type": "server_error", "message": "oops"}, after_chunks=2)
        )
        async with client.stream("fine now") as stream:
            text = "".join([chunk.text async for chunk in stream])
    assert text == "fine now"
    assert server.request_count == 2


async def test_an_in_stream_error_after_chunks_interrupts_the_stream() -> None:
    async with MockServer() as server, _client(server) as client:
        server.enqueue(
            Reply.stream_error({"type": "server_error", "message": "oops"}, after_chunks=6)
        )
        with pytest.raises(llmfast.StreamInterruptedError) as caught:
            async with client.stream("a b c d e f g") as stream:
                async for _ in stream:
                    pass
    error = caught.value
    assert isinstance(error, StreamEventError)
    assert error.partial is not None
    assert error.partial_text == "a b "
    assert server.request_count == 1


def test_a_body_that_is_not_a_response_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match=r"chat\.completion"):
        completion_from(b'{"object": "chat.completion", "choices": []}')
