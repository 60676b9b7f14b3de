"""The Anthropic Messages backend over real HTTP to the local test server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest

import llmfast
from llmfast import Client
from llmfast.backends.anthropic import AnthropicBackend
from llmfast.layers import Retry, RetryPolicy
from llmfast.testing import MockServer, Reply
from tests.streams import read_stream

KEY = "sk-ant-very-secret"
CALLS = [
    {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}},
    {"name": "search", "arguments": {"query": "mock servers", "limit": 10}},
]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    },
    {"type": "function", "function": {"name": "search"}},
]


@pytest.fixture
async def client(server: MockServer) -> AsyncIterator[Client]:
    backend = AnthropicBackend(server.url_for("anthropic"), api_key=KEY, model="claude-test")
    # The backend alone (no default retries): each test sees what one response maps to.
    async with Client(backend, layers=[]) as client:
        yield client


async def test_chat_sends_the_messages_api_request(server: MockServer, client: Client) -> None:
    server.enqueue(Reply.text("Hello there!"))
    result = await client.chat(
        [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": "Be kind."},
            {"role": "user", "content": "Hi"},
        ],
        temperature=0.2,
        top_p=0.9,
        stop="END",
        user="u-1",
        extra_body={"top_k": 5},
    )
    assert result.text == "Hello there!"
    assert result.finish_reason == "stop"
    assert result.choices[0].provider_finish_reason == "end_turn"
    assert result.id == "msg_mock1"
    assert result.model == "claude-test"
    assert result.usage == llmfast.Usage(  # the mock counts words: 1 + 4 in, 2 out
        5, 2, 7, prompt_tokens_details={"cached_tokens": 0, "cache_creation_tokens": 0}
    )
    sent = server.requests[0]
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in sent.headers
    assert sent.json == {
        "model": "claude-test",
        "messages": [{"role": "user", "content": "Hi"}],
        "system": "Be brief.\n\nBe kind.",
        "max_tokens": 4096,
        "temperature": 0.2,
        "top_p": 0.9,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "u-1"},
        "top_k": 5,
    }


async def test_stream_accumulates_to_the_same_completion(
    server: MockServer, client: Client
) -> None:
    server.enqueue(Reply.text("The quick brown fox."), Reply.text("The quick brown fox."))
    whole = await client.chat("hi")
    stream = await read_stream(client)
    streamed = stream.completion
    assert streamed.text == whole.text == "The quick brown fox."
    assert streamed.finish_reason == whole.finish_reason == "stop"
    assert streamed.usage == whole.usage
    assert (streamed.id, streamed.model) == ("msg_mock2", "claude-test")
    assert [c.text for c in stream.chunks if c.text] == ["The ", "quick ", "brown ", "fox."]
    assert server.requests[1].json["stream"] is True
    last = stream.chunks[-1].choices[0]
    assert last.provider_finish_reason == "end_turn"


async def test_parallel_tool_calls_with_thinking(server: MockServer, client: Client) -> None:
    reply = Reply.tool_calls(CALLS, text="Let me check.", reasoning="I should call both tools.")
    server.enqueue(reply, reply)
    whole = await client.chat("weather?", tools=TOOLS)
    stream = await read_stream(client, "weather?", tools=TOOLS)
    for result in (whole, stream.completion):
        assert result.text == "Let me check."
        assert result.finish_reason == "tool_calls"
        assert result.message.reasoning_content == "I should call both tools."
        assert [c.function.name for c in result.tool_calls] == ["get_weather", "search"]
        assert [json.loads(c.function.arguments) for c in result.tool_calls] == [
            c["arguments"] for c in CALLS
        ]
        assert all(c.id.startswith("toolu_mock") for c in result.tool_calls)
    assert [c.id for c in stream.completion.tool_calls] != [c.id for c in whole.tool_calls]
    # input_json_delta fragments arrive as argument fragments under a stable index.
    fragments: dict[int, list[str]] = {}
    for chunk in stream.chunks:
        for call in chunk.choices[0].delta.tool_calls or ():
            assert call.function is not None
            if call.id is not None:
                assert call.function.name in ("get_weather", "search")
            elif call.function.arguments:
                fragments.setdefault(call.index, []).append(call.function.arguments)
    assert sorted(fragments) == [0, 1]
    assert all(len(parts) > 2 for parts in fragments.values())
    signatures = [c.choices[0].delta.reasoning_signature for c in stream.chunks]
    assert "sig_mock2" in signatures
    assert whole.message.reasoning_signature == "sig_mock1"
    sent = server.requests[0].json
    assert sent["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather in a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
        {"name": "search", "input_schema": {"type": "object", "properties": {}}},
    ]


async def test_conversation_with_tool_results_and_images(
    server: MockServer, client: Client
) -> None:
    messages: list[Any] = [
        llmfast.UserMessage(
            content=[
                llmfast.TextPart(text="What is this?"),
                llmfast.ImagePart(image_url=llmfast.ImageURL(url="data:image/png;base64,iVBO")),
                llmfast.ImagePart(image_url=llmfast.ImageURL(url="https://x.test/a.jpg")),
            ]
        ),
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {"id": "t1", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
                {"id": "t2", "function": {"name": "search", "arguments": ""}},
            ],
        },
        {"role": "tool", "tool_call_id": "t1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "t2", "content": [{"type": "text", "text": "none"}]},
        {"role": "user", "content": "Thanks"},
    ]
    await client.chat(messages, tool_choice={"type": "function", "function": {"name": "search"}})
    sent = server.requests[0].json
    assert sent["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"},
                },
                {"type": "image", "source": {"type": "url", "url": "https://x.test/a.jpg"}},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "t2", "name": "search", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": "sunny"},
                {"type": "tool_result", "tool_use_id": "t2", "content": "none"},
                {"type": "text", "text": "Thanks"},
            ],
        },
    ]
    assert sent["tool_choice"] == {"type": "tool", "name": "search"}


@pytest.mark.parametrize(
    ("params", "wire"),
    [
        ({"tool_choice": "auto"}, {"tool_choice": {"type": "auto"}}),
        ({"tool_choice": "required"}, {"tool_choice": {"type": "any"}}),
        ({"tool_choice": "none"}, {"tool_choice": {"type": "none"}}),
        (
            {"parallel_tool_calls": False},
            {"tool_choice": {"type": "auto", "disable_parallel_tool_use": True}},
        ),
        (
            {"reasoning_effort": "low"},
            {"thinking": {"type": "enabled", "budget_tokens": 1024}, "max_tokens": 1024 + 4096},
        ),
        (
            {"reasoning_effort": "high", "max_tokens": 9000},
            {"thinking": {"type": "enabled", "budget_tokens": 4096}, "max_tokens": 9000},
        ),
        ({"max_completion_tokens": 77}, {"max_tokens": 77}),
        ({"extra_body": {"max_tokens": 5}}, {"max_tokens": 5}),
    ],
)
async def test_parameter_mapping(
    server: MockServer, client: Client, params: dict[str, Any], wire: dict[str, Any]
) -> None:
    await client.chat("hi", **params)
    sent = server.requests[0].json
    assert {key: sent[key] for key in wire} == wire


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("n", 2),
        ("seed", 1),
        ("logprobs", True),
        ("top_logprobs", 2),
        ("presence_penalty", 0.5),
        ("frequency_penalty", 0.5),
        ("response_format", {"type": "json_object"}),
        ("reasoning_effort", "extreme"),
    ],
)
async def test_unsupported_parameters_raise(
    server: MockServer, client: Client, name: str, value: Any
) -> None:
    with pytest.raises(llmfast.UnsupportedParameterError) as caught:
        await client.chat("hi", **{name: value})
    assert (caught.value.parameter, caught.value.provider) == (name, "anthropic")
    assert name in str(caught.value)
    assert server.request_count == 0
    await client.chat("hi", n=1, logprobs=False)  # asking for nothing is fine


async def test_embeddings_are_a_clear_error(server: MockServer, client: Client) -> None:
    with pytest.raises(llmfast.UnsupportedParameterError, match="no embeddings"):
        await client.embed("text")
    assert server.request_count == 0


@pytest.mark.parametrize(
    ("status", "error", "type_"),
    [
        (400, llmfast.BadRequestError, "invalid_request_error"),
        (401, llmfast.AuthenticationError, "authentication_error"),
        (403, llmfast.PermissionDeniedError, "permission_error"),
        (404, llmfast.NotFoundError, "not_found_error"),
        (429, llmfast.RateLimitError, "rate_limit_error"),
        (500, llmfast.ServerError, "api_error"),
        (529, llmfast.OverloadedError, "overloaded_error"),
    ],
)
async def test_status_errors_map_to_the_tree(
    server: MockServer,
    client: Client,
    status: int,
    error: type[llmfast.APIStatusError],
    type_: str,
) -> None:
    server.enqueue(Reply.error(status, message=f"failure {status}", retry_after=3))
    with pytest.raises(error) as caught:
        await client.chat("hi")
    exc = caught.value
    assert type(exc) is error
    assert exc.status == status
    assert exc.message == f"failure {status}"
    assert exc.body == {"type": "error", "error": {"type": type_, "message": f"failure {status}"}}
    assert exc.request_id == "req_1"  # from the request-id header
    assert exc.retry_after == 3.0
    assert KEY not in str(exc)
    assert KEY not in repr(exc.headers)


async def test_overloaded_body_on_a_500(server: MockServer, client: Client) -> None:
    server.enqueue(Reply.error(500, type="overloaded_error"))
    with pytest.raises(llmfast.OverloadedError):
        await client.chat("hi")


async def test_error_body_with_status_200(server: MockServer, client: Client) -> None:
    body = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
    server.enqueue(Reply.raw(body, content_type="application/json"))
    with pytest.raises(llmfast.OverloadedError, match="Overloaded"):
        await client.chat("hi")


async def test_overloaded_event_before_content_is_retryable(
    server: MockServer, client: Client
) -> None:
    overloaded = {"type": "overloaded_error", "message": "Overloaded"}
    server.enqueue(Reply.stream_error(overloaded, after_chunks=0))
    with pytest.raises(llmfast.StreamEventError) as caught:
        await read_stream(client)
    assert caught.value.status == 529
    assert caught.value.error == overloaded
    assert RetryPolicy().is_retryable(caught.value)
    assert client._pool.connections_in_use() == 0


async def test_overloaded_after_message_start_is_retried(server: MockServer) -> None:
    """message_start and ping make no chunk, so an error before content can be retried."""
    backend = AnthropicBackend(server.url_for("anthropic"), api_key=KEY, model="m")
    overloaded = {"type": "overloaded_error", "message": "Overloaded"}
    server.enqueue(Reply.stream_error(overloaded, after_chunks=3), Reply.text("second try"))
    async with Client(backend, layers=[Retry(max_attempts=2, sleep=_no_sleep)]) as client:
        stream = await read_stream(client)
    assert stream.completion.text == "second try"
    assert stream.chunks[0].choices[0].delta.role == "assistant"
    assert server.request_count == 2


async def _no_sleep(seconds: float) -> None:
    return None


async def test_error_event_after_content_keeps_the_partial(
    server: MockServer, client: Client
) -> None:
    error = {"type": "api_error", "message": "Internal server error"}
    server.enqueue(Reply.stream_error(error, after_chunks=5))  # start, block, ping, 2 deltas
    with pytest.raises(llmfast.StreamInterruptedError) as caught:
        await read_stream(client, "a b c d")
    exc = caught.value
    assert isinstance(exc.__cause__, llmfast.StreamEventError)
    assert exc.__cause__.status == 500
    assert exc.partial_text == "a b "


async def test_truncated_and_malformed_streams(server: MockServer, client: Client) -> None:
    server.enqueue(
        Reply.truncated(after_chunks=4),
        Reply.malformed(after_chunks=4),
        Reply.malformed(after_chunks=1),
        Reply.malformed(),
    )
    with pytest.raises(llmfast.StreamInterruptedError) as caught:
        await read_stream(client, "p q r")
    assert isinstance(caught.value.__cause__, llmfast.StreamTruncatedError)
    assert caught.value.partial_text == "p "
    with pytest.raises(llmfast.StreamInterruptedError) as malformed:
        await read_stream(client, "p q r")
    assert isinstance(malformed.value.__cause__, llmfast.DecodeError)
    with pytest.raises(llmfast.DecodeError, match="malformed Anthropic event"):
        await read_stream(client, "p q r")  # after message_start: no chunk reached the caller
    with pytest.raises(llmfast.DecodeError, match="Anthropic message"):
        await client.chat("hi")


async def test_reset_mid_stream_is_a_read_error(server: MockServer, client: Client) -> None:
    server.enqueue(Reply.reset(after_chunks=5))
    with pytest.raises(llmfast.StreamInterruptedError) as caught:
        await read_stream(client, "x y z")
    assert isinstance(caught.value.__cause__, llmfast.ReadError)
    assert caught.value.partial_text == "x y "
    assert (await client.chat("again")).text == "again"


async def test_usage_with_cache_tokens(server: MockServer, client: Client) -> None:
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-test",
        "content": [{"type": "text", "text": "ok"}],
        "stop_reason": "max_tokens",
        "usage": {
            "input_tokens": 10,
            "cache_read_input_tokens": 2000,
            "cache_creation_input_tokens": 300,
            "output_tokens": 5,
        },
    }
    server.enqueue(Reply.raw(msgspec.json.encode(message), content_type="application/json"))
    result = await client.chat("hi")
    assert result.finish_reason == "length"
    assert result.usage == llmfast.Usage(
        2310, 5, 2315, prompt_tokens_details={"cached_tokens": 2000, "cache_creation_tokens": 300}
    )


async def test_key_from_the_environment_and_never_shown(
    server: MockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-from-env")
    backend = AnthropicBackend(server.url_for("anthropic"), model="m", version="2024-01-01")
    async with Client(backend) as client:
        await client.chat("hi")
        assert "sk-ant-from-env" not in repr(client)
        assert "sk-ant-from-env" not in repr(backend)
    sent = server.requests[0].headers
    assert sent["x-api-key"] == "sk-ant-from-env"
    assert sent["anthropic-version"] == "2024-01-01"


async def test_invalid_messages_are_configuration_errors(client: Client) -> None:
    with pytest.raises(llmfast.ConfigurationError, match="invalid message"):
        await client.chat([{"role": "user", "content": [{"type": "audio"}]}])
    with pytest.raises(llmfast.ConfigurationError, match="JSON object"):
        call = {"id": "1", "function": {"name": "f", "arguments": "{"}}
        await client.chat([{"role": "assistant", "tool_calls": [call]}])


async def test_server_tool_blocks_are_skipped(server: MockServer, client: Client) -> None:
    def event(name: str, data: dict[str, Any]) -> bytes:
        return b"event: %s\ndata: %s\n\n" % (name.encode(), msgspec.json.encode(data))

    start = {"id": "msg_s", "model": "m", "content": [], "usage": {"input_tokens": 5}}
    search = {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}
    result = {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []}
    body = b"".join(
        [
            event("message_start", {"type": "message_start", "message": start}),
            event(
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": search},
            ),
            event(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "input_json_delta", "partial_json": '{"query": "x"}'},
                },
            ),
            event("content_block_stop", {"type": "content_block_stop", "index": 0}),
            event(
                "content_block_start",
                {"type": "content_block_start", "index": 1, "content_block": result},
            ),
            event("content_block_stop", {"type": "content_block_stop", "index": 1}),
            event(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 2,
                    "content_block": {"type": "text", "text": ""},
                },
            ),
            event(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 2,
                    "delta": {"type": "citations_delta", "citation": {}},
                },
            ),
            event(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 2,
                    "delta": {"type": "text_delta", "text": "Found it."},
                },
            ),
            event("content_block_stop", {"type": "content_block_stop", "index": 2}),
            event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "pause_turn"},
                    "usage": {"output_tokens": 9},
                },
            ),
            event("message_stop", {"type": "message_stop"}),
        ]
    )
    server.enqueue(Reply.raw(body, write_size=50))
    stream = await read_stream(client)
    assert stream.completion.text == "Found it."
    assert stream.completion.tool_calls == []
    assert stream.completion.finish_reason == "pause_turn"  # not mapped: kept as sent
    assert stream.completion.usage == llmfast.Usage(5, 9, 14)


async def test_pings_do_not_reset_the_idle_timeout() -> None:
    async with MockServer() as server:
        server.enqueue(Reply.stall(after_chunks=4, keepalive=0.05))
        backend = AnthropicBackend(server.url_for("anthropic"), api_key="k", model="claude")
        timeouts = llmfast.Timeouts(idle=0.3, read=5)
        async with llmfast.Client(backend, timeouts=timeouts) as client:
            with pytest.raises(llmfast.LLMFastError) as caught:
                async with client.stream("a b c d e") as stream:
                    await stream.collect()
            assert client._pool.connections_in_use() == 0
    error = caught.value.__cause__ or caught.value
    assert type(error) is llmfast.IdleTimeout
