"""The Gemini backend over real HTTP to the local test server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest

import llmfast
from llmfast import Client
from llmfast.backends.gemini import GeminiBackend
from llmfast.testing import MockServer, Reply
from tests.streams import read_stream

KEY = "AIza-very-secret"
CALLS = [
    {"name": "weather", "arguments": {"location": "San Francisco"}},
    {"name": "time", "arguments": {"zone": "PST"}},
]


@pytest.fixture
async def client(server: MockServer) -> AsyncIterator[Client]:
    backend = GeminiBackend(server.url_for("gemini"), api_key=KEY, model="gemini-2.5-flash")
    # The backend alone (no default retries): each test sees what one response maps to.
    async with Client(backend, layers=[]) as client:
        yield client


async def test_generate_content_request(server: MockServer, client: Client) -> None:
    server.enqueue(Reply.text("Hello!"))
    result = await client.chat(
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "Again"},
        ],
        temperature=0.5,
        top_p=0.9,
        max_tokens=100,
        stop="END",
        seed=3,
        presence_penalty=0.1,
        frequency_penalty=0.2,
        reasoning_effort="low",
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {}}},
        extra_body={"generationConfig": {"topK": 40}, "safetySettings": []},
    )
    assert result.text == "Hello!"
    assert result.finish_reason == "stop"
    assert result.choices[0].provider_finish_reason == "STOP"
    assert (result.id, result.model) == ("resp_mock1", "gemini-2.5-flash")
    assert result.usage == llmfast.Usage(5, 1, 6)
    sent = server.requests[0]
    assert sent.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert sent.headers["x-goog-api-key"] == KEY
    assert sent.headers["x-goog-api-client"].startswith("llmfast/")
    assert sent.json == {
        "contents": [
            {"role": "user", "parts": [{"text": "Hi"}]},
            {"role": "model", "parts": [{"text": "Hello."}]},
            {"role": "user", "parts": [{"text": "Again"}]},
        ],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "generationConfig": {
            "temperature": 0.5,
            "topP": 0.9,
            "seed": 3,
            "presencePenalty": 0.1,
            "frequencyPenalty": 0.2,
            "maxOutputTokens": 100,
            "stopSequences": ["END"],
            "responseMimeType": "application/json",
            "responseJsonSchema": {},
            "thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": True},
            "topK": 40,
        },
        "safetySettings": [],
    }


async def test_stream_accumulates_to_the_same_completion(
    server: MockServer, client: Client
) -> None:
    reply = Reply.text("There are three.", reasoning="Count the r's.")
    server.enqueue(reply, reply)
    whole = await client.chat("how many r's?")
    stream = await read_stream(client, "how many r's?")
    streamed = stream.completion
    for result in (whole, streamed):
        assert result.text == "There are three."
        assert result.message.reasoning_content == "Count the r's."
        assert result.finish_reason == "stop"
        assert result.usage == llmfast.Usage(
            3, 6, 9, completion_tokens_details={"reasoning_tokens": 3}
        )
    assert [c.text for c in stream.chunks if c.text] == ["There ", "are ", "three."]
    sent = server.requests[1]
    assert (sent.path, sent.query) == (
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
        "alt=sse",
    )
    signatures = [c.choices[0].delta.reasoning_signature for c in stream.chunks]
    assert "sig_mock2" in signatures
    assert whole.message.reasoning_signature == "sig_mock1"


async def test_candidates_become_choices(server: MockServer, client: Client) -> None:
    server.enqueue(Reply.text("one two"), Reply.text("one two"))
    whole = await client.chat("hi", n=2)
    stream = await read_stream(client, n=2)
    for result in (whole, stream.completion):
        assert [c.index for c in result.choices] == [0, 1]
        assert [c.message.content for c in result.choices] == ["one two", "one two"]
    assert server.requests[0].json["generationConfig"] == {"candidateCount": 2}


async def test_parallel_function_calls_round_trip(server: MockServer, client: Client) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "weather",
                "description": "Weather",
                "parameters": {"type": "object", "additionalProperties": False},
            },
        },
        {"type": "function", "function": {"name": "time"}},
    ]
    server.enqueue(Reply.tool_calls(CALLS), Reply.tool_calls(CALLS))
    whole = await client.chat("weather?", tools=tools, tool_choice="required")
    stream = await read_stream(client, "weather?", tools=tools)
    for result in (whole, stream.completion):
        assert result.finish_reason == "tool_calls"
        assert [c.id for c in result.tool_calls] == ["call_0", "call_1"]
        assert [c.function.name for c in result.tool_calls] == ["weather", "time"]
        assert [json.loads(c.function.arguments) for c in result.tool_calls] == [
            c["arguments"] for c in CALLS
        ]
    sent = server.requests[0].json
    assert sent["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "weather",
                    "description": "Weather",
                    "parametersJsonSchema": {"type": "object", "additionalProperties": False},
                },
                {"name": "time"},
            ]
        }
    ]
    assert sent["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    messages: list[Any] = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "tool_calls": [msgspec.to_builtins(c) for c in whole.tool_calls]},
        {"role": "tool", "tool_call_id": "call_0", "content": '{"temp": 18}'},
        {"role": "tool", "tool_call_id": "call_1", "content": "9am"},
    ]
    await client.chat(messages, tool_choice={"type": "function", "function": {"name": "weather"}})
    sent = server.requests[2].json
    assert sent["contents"][1:] == [
        {
            "role": "model",
            "parts": [
                {"functionCall": {"name": "weather", "args": {"location": "San Francisco"}}},
                {"functionCall": {"name": "time", "args": {"zone": "PST"}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "weather", "response": {"temp": 18}}},
                {"functionResponse": {"name": "time", "response": {"content": "9am"}}},
            ],
        },
    ]
    assert sent["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["weather"]}
    }


async def test_a_tool_result_without_its_call_is_a_configuration_error(client: Client) -> None:
    with pytest.raises(llmfast.ConfigurationError, match="function name"):
        await client.chat([{"role": "tool", "tool_call_id": "x", "content": "1"}])


async def test_images(server: MockServer, client: Client) -> None:
    parts = [
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/"}},
        {"type": "image_url", "image_url": {"url": "https://x.test/cat.png"}},
    ]
    await client.chat([{"role": "user", "content": parts}])
    assert server.requests[0].json["contents"][0]["parts"] == [
        {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/"}},
        {"fileData": {"fileUri": "https://x.test/cat.png", "mimeType": "image/png"}},
    ]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("logprobs", True),
        ("top_logprobs", 2),
        ("user", "u"),
        ("parallel_tool_calls", False),
        ("tool_choice", "sometimes"),
        ("reasoning_effort", "max"),
    ],
)
async def test_unsupported_parameters_raise(
    server: MockServer, client: Client, name: str, value: Any
) -> None:
    with pytest.raises(llmfast.UnsupportedParameterError) as caught:
        await client.chat("hi", **{name: value})
    assert (caught.value.parameter, caught.value.provider) == (name, "gemini")
    assert server.request_count == 0


async def test_embeddings(server: MockServer, client: Client) -> None:
    one = await client.embed("a b", model="text-embedding-004", dimensions=4)
    batch = await client.embed(["a b", "c"], model="models/text-embedding-004")
    assert len(one.vectors[0]) == 4
    assert [len(v) for v in batch.vectors] == [8, 8]
    assert batch.vectors[0][:4] != one.vectors[0]  # other dimensions, other vector
    first, second = server.requests
    assert first.path == "/v1beta/models/text-embedding-004:embedContent"
    assert first.json == {"content": {"parts": [{"text": "a b"}]}, "outputDimensionality": 4}
    assert second.path == "/v1beta/models/text-embedding-004:batchEmbedContents"
    assert second.json == {
        "requests": [
            {"model": "models/text-embedding-004", "content": {"parts": [{"text": "a b"}]}},
            {"model": "models/text-embedding-004", "content": {"parts": [{"text": "c"}]}},
        ]
    }
    await client.embed(["x"], extra_body={"taskType": "RETRIEVAL_QUERY"})
    assert server.requests[2].json["requests"][0]["taskType"] == "RETRIEVAL_QUERY"
    with pytest.raises(llmfast.UnsupportedParameterError, match="token ids"):
        await client.embed([[1, 2, 3]])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("status", "error", "name"),
    [
        (400, llmfast.BadRequestError, "INVALID_ARGUMENT"),
        (403, llmfast.PermissionDeniedError, "PERMISSION_DENIED"),
        (404, llmfast.NotFoundError, "NOT_FOUND"),
        (429, llmfast.RateLimitError, "RESOURCE_EXHAUSTED"),
        (500, llmfast.ServerError, "INTERNAL"),
        (503, llmfast.ServerError, "UNAVAILABLE"),
    ],
)
async def test_status_errors_map_to_the_tree(
    server: MockServer,
    client: Client,
    status: int,
    error: type[llmfast.APIStatusError],
    name: str,
) -> None:
    server.enqueue(Reply.error(status, message=f"failure {status}"))
    with pytest.raises(error) as caught:
        await client.chat("hi")
    exc = caught.value
    assert type(exc) is error
    assert exc.message == f"failure {status}"
    assert exc.body == {"error": {"code": status, "message": f"failure {status}", "status": name}}
    assert KEY not in str(exc)


async def test_overloaded_and_retry_info(server: MockServer, client: Client) -> None:
    overloaded = {"error": {"code": 503, "message": "The model is overloaded.", "status": "X"}}
    limited = {
        "error": {
            "code": 429,
            "message": "Quota exceeded",
            "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}],
        }
    }
    for body, status in ((overloaded, 503), (limited, 429)):
        encoded = msgspec.json.encode(body)
        server.enqueue(Reply.raw(encoded, status=status, content_type="application/json"))
    with pytest.raises(llmfast.OverloadedError):
        await client.chat("hi")
    with pytest.raises(llmfast.RateLimitError) as caught:
        await client.chat("hi")
    assert caught.value.retry_after == 37.0
    assert caught.value.body == limited


async def test_error_event_in_the_stream(server: MockServer, client: Client) -> None:
    error = {"message": "The model is overloaded.", "code": "503"}
    server.enqueue(Reply.stream_error(error, after_chunks=0), Reply.stream_error(error))
    with pytest.raises(llmfast.StreamEventError) as caught:
        await read_stream(client)
    assert caught.value.status == 503
    assert caught.value.error["status"] == "UNAVAILABLE"
    with pytest.raises(llmfast.ServerError):
        await client.chat("hi")
    server.enqueue(Reply.stream_error({"message": "boom"}, after_chunks=2))
    with pytest.raises(llmfast.StreamInterruptedError) as later:
        await read_stream(client, "a b c")
    assert later.value.partial_text == "a b "
    assert isinstance(later.value.__cause__, llmfast.StreamEventError)
    assert later.value.__cause__.status == 500


async def test_stream_faults(server: MockServer, client: Client) -> None:
    server.enqueue(
        Reply.truncated(after_chunks=2), Reply.malformed(after_chunks=1), Reply.malformed()
    )
    with pytest.raises(llmfast.StreamInterruptedError) as truncated:
        await read_stream(client, "p q r")
    assert isinstance(truncated.value.__cause__, llmfast.StreamTruncatedError)
    assert truncated.value.partial_text == "p q "
    with pytest.raises(llmfast.StreamInterruptedError) as malformed:
        await read_stream(client, "p q r")
    assert isinstance(malformed.value.__cause__, llmfast.DecodeError)
    with pytest.raises(llmfast.DecodeError, match="Gemini response"):
        await client.chat("hi")


async def test_safety_and_blocked_prompts(server: MockServer, client: Client) -> None:
    server.enqueue(Reply.text("partial", finish_reason="content_filter"))
    blocked = b'{"promptFeedback": {"blockReason": "SAFETY"}, "modelVersion": "g"}'
    server.enqueue(Reply.raw(blocked, content_type="application/json"))
    server.enqueue(Reply.raw(b"data: " + blocked + b"\r\n\r\n"))
    stream = await read_stream(client)
    assert stream.completion.finish_reason == "content_filter"
    last = stream.chunks[-1].choices[0]
    assert last.provider_finish_reason == "SAFETY"
    result = await client.chat("hi")
    assert result.finish_reason == "content_filter"
    assert result.text is None
    stream = await read_stream(client)
    assert stream.completion.finish_reason == "content_filter"


async def test_key_from_the_environment(
    server: MockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.setenv("GOOGLE_API_KEY", "from-google-env")
    backend = GeminiBackend(server.url_for("gemini"), model="models/gemini-2.0-flash")
    async with Client(backend) as client:
        await client.chat("hi")
        assert "from-google-env" not in repr(client)
    assert server.requests[0].headers["x-goog-api-key"] == "from-google-env"
    assert server.requests[0].path == "/v1beta/models/gemini-2.0-flash:generateContent"
    monkeypatch.setenv("GEMINI_API_KEY", "from-gemini-env")
    assert GeminiBackend().auth_headers() == {"x-goog-api-key": "from-gemini-env"}
