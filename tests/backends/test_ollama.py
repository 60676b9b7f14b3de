"""The Ollama native backend over real HTTP to the local test server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

import llmfast
from llmfast import Client
from llmfast.backends.ollama import OllamaBackend, ollama_host
from llmfast.testing import MockServer, Reply
from tests.streams import read_stream

CALLS = [
    {"name": "get_weather", "arguments": {"city": "Tokyo"}},
    {"name": "get_time", "arguments": {"zone": "Asia/Tokyo"}},
]


@pytest.fixture
async def client(server: MockServer) -> AsyncIterator[Client]:
    backend = OllamaBackend(server.url_for("ollama"), model="llama3.2", keep_alive="10m")
    # The backend alone (no default retries): each test sees what one response maps to.
    async with Client(backend, layers=[]) as client:
        yield client


async def test_chat_maps_options_and_keep_alive(server: MockServer, client: Client) -> None:
    server.enqueue(Reply.text("The answer is 2"))
    result = await client.chat(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "1+1?"}],
        temperature=0.1,
        top_p=0.5,
        seed=7,
        max_tokens=64,
        stop=["\n\n"],
        presence_penalty=0.3,
        frequency_penalty=0.4,
        response_format={"type": "json_object"},
        reasoning_effort="high",
        extra_body={"options": {"num_ctx": 8192}, "keep_alive": 0},
    )
    assert result.text == "The answer is 2"
    assert result.finish_reason == "stop"
    assert result.usage == llmfast.Usage(3, 4, 7)
    assert result.model == "llama3.2"
    assert result.created > 0
    sent = server.requests[0]
    assert sent.path == "/api/chat"
    assert sent.json == {
        "model": "llama3.2",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "1+1?"},
        ],
        "options": {
            "temperature": 0.1,
            "top_p": 0.5,
            "seed": 7,
            "presence_penalty": 0.3,
            "frequency_penalty": 0.4,
            "num_predict": 64,
            "stop": ["\n\n"],
            "num_ctx": 8192,
        },
        "format": "json",
        "think": "high",
        "keep_alive": 0,  # extra_body wins over the backend's default
        "stream": False,
    }


async def test_stream_accumulates_to_the_same_completion(
    server: MockServer, client: Client
) -> None:
    server.enqueue(Reply.text("The answer is: 2", reasoning="one plus one"))
    server.enqueue(Reply.text("The answer is: 2", reasoning="one plus one"))
    whole = await client.chat("q")
    stream = await read_stream(client, "q")
    streamed = stream.completion
    for result in (whole, streamed):
        assert result.text == "The answer is: 2"
        assert result.message.reasoning_content == "one plus one"
        assert result.finish_reason == "stop"
        assert result.usage == llmfast.Usage(1, 7, 8)
    assert [c.text for c in stream.chunks if c.text] == ["The ", "answer ", "is: ", "2"]
    assert server.requests[1].json["stream"] is True
    assert server.requests[1].json["keep_alive"] == "10m"


async def test_parallel_tool_calls_round_trip(server: MockServer, client: Client) -> None:
    server.enqueue(Reply.tool_calls(CALLS), Reply.tool_calls(CALLS))
    whole = await client.chat("weather and time in Tokyo?")
    stream = await read_stream(client, "weather and time in Tokyo?")
    for result in (whole, stream.completion):
        assert result.finish_reason == "tool_calls"
        assert [c.id for c in result.tool_calls] == ["call_0", "call_1"]
        assert [c.function.name for c in result.tool_calls] == ["get_weather", "get_time"]
        assert [json.loads(c.function.arguments) for c in result.tool_calls] == [
            c["arguments"] for c in CALLS
        ]
    # Send the results back: each tool message names its function.
    messages: list[Any] = [
        {"role": "user", "content": "weather and time in Tokyo?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [msgspec_builtins(call) for call in whole.tool_calls],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "12:00"},
        {"role": "tool", "tool_call_id": "call_0", "content": "sunny"},
    ]
    await client.chat(messages)
    sent = server.requests[2].json["messages"]
    assert sent[1] == {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"function": {"name": "get_weather", "arguments": {"city": "Tokyo"}}},
            {"function": {"name": "get_time", "arguments": {"zone": "Asia/Tokyo"}}},
        ],
    }
    assert sent[2:] == [
        {"role": "tool", "content": "12:00", "tool_name": "get_time"},
        {"role": "tool", "content": "sunny", "tool_name": "get_weather"},
    ]


def msgspec_builtins(call: llmfast.ToolCall) -> dict[str, Any]:
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.function.name, "arguments": call.function.arguments},
    }


async def test_tools_and_images(server: MockServer, client: Client) -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    await client.chat(
        [{"role": "user", "content": [{"type": "text", "text": "what is it?"}, image]}],
        tools=[tool],
        tool_choice="auto",
    )
    sent = server.requests[0].json
    assert sent["messages"] == [
        {"role": "user", "content": "what is it?", "images": ["iVBORw0KGgo="]}
    ]
    assert sent["tools"] == [tool]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("n", 3),
        ("logprobs", True),
        ("top_logprobs", 1),
        ("user", "u"),
        ("parallel_tool_calls", False),
        ("tool_choice", "required"),
        ("response_format", {"type": "xml"}),
    ],
)
async def test_unsupported_parameters_raise(
    server: MockServer, client: Client, name: str, value: Any
) -> None:
    with pytest.raises(llmfast.UnsupportedParameterError) as caught:
        await client.chat("hi", **{name: value})
    assert (caught.value.parameter, caught.value.provider) == (name, "ollama")
    assert server.request_count == 0


async def test_image_links_are_unsupported(client: Client) -> None:
    image = {"type": "image_url", "image_url": {"url": "https://x.test/cat.png"}}
    with pytest.raises(llmfast.UnsupportedParameterError, match="base64"):
        await client.chat([{"role": "user", "content": [image]}])


async def test_embeddings(server: MockServer, client: Client) -> None:
    batch = await client.embed(["a b", "c"], dimensions=5)
    one = await client.embed("c", model="nomic-embed-text")
    assert [len(v) for v in batch.vectors] == [5, 5]
    assert batch.usage == llmfast.EmbeddingUsage(3, 3)
    assert batch.model == "llama3.2"
    assert len(one.vectors[0]) == 8
    assert one.model == "nomic-embed-text"
    assert server.requests[0].path == "/api/embed"
    assert server.requests[0].json == {
        "model": "llama3.2",
        "input": ["a b", "c"],
        "dimensions": 5,
        "keep_alive": "10m",
    }
    with pytest.raises(llmfast.UnsupportedParameterError, match="encoding_format"):
        await client.embed("x", encoding_format="base64")


async def test_errors_are_mapped(server: MockServer, client: Client) -> None:
    server.enqueue(
        Reply.error(404, message="model 'nope' not found"),
        Reply.error(500, message="llama runner process has terminated"),
        Reply.error(503, message="server busy", retry_after=1),
    )
    with pytest.raises(llmfast.NotFoundError) as missing:
        await client.chat("hi")
    assert missing.value.message == "model 'nope' not found"
    assert missing.value.body == {"error": "model 'nope' not found"}
    with pytest.raises(llmfast.ServerError, match="llama runner"):
        await client.chat("hi")
    with pytest.raises(llmfast.ServerError) as busy:
        await client.chat("hi")
    assert busy.value.retry_after == 1.0


async def test_error_line_mid_stream_keeps_the_partial(server: MockServer, client: Client) -> None:
    error = {"message": "an error was encountered while running the model"}
    server.enqueue(Reply.stream_error(error, after_chunks=2), Reply.stream_error(error))
    with pytest.raises(llmfast.StreamInterruptedError) as caught:
        await read_stream(client, "Yes I can")
    assert isinstance(caught.value.__cause__, llmfast.StreamEventError)
    assert caught.value.__cause__.error == error
    assert caught.value.partial_text == "Yes I "
    with pytest.raises(llmfast.ServerError, match="an error was encountered"):
        await client.chat("hi")


async def test_stream_faults(server: MockServer, client: Client) -> None:
    server.enqueue(
        Reply.truncated(after_chunks=1),
        Reply.malformed(after_chunks=1),
        Reply.reset(after_chunks=1),
        Reply.malformed(),
    )
    for cause in (llmfast.StreamTruncatedError, llmfast.DecodeError, llmfast.ReadError):
        with pytest.raises(llmfast.StreamInterruptedError) as caught:
            await read_stream(client, "x y z")
        assert isinstance(caught.value.__cause__, cause)
        assert caught.value.partial_text == "x "
    with pytest.raises(llmfast.DecodeError, match="Ollama response"):
        await client.chat("hi")
    assert client._pool.connections_in_use() == 0


async def test_length_finish(server: MockServer, client: Client) -> None:
    server.enqueue(Reply.text("cut", finish_reason="length"))
    stream = await read_stream(client)
    assert stream.completion.finish_reason == "length"
    last = stream.chunks[-1].choices[0]
    assert last.provider_finish_reason == "length"


def test_base_url_from_ollama_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "10.0.0.5:11434")
    assert ollama_host() == "http://10.0.0.5:11434"
    assert OllamaBackend().base_url == "http://10.0.0.5:11434"
    assert ollama_host("https://ollama.example") == "https://ollama.example"
    monkeypatch.delenv("OLLAMA_HOST")
    assert OllamaBackend().base_url == "http://localhost:11434"
    assert repr(OllamaBackend(model="m")) == "OllamaBackend('http://localhost:11434', model='m')"


async def test_warmup_uses_the_version_endpoint(server: MockServer, client: Client) -> None:
    assert await client.warmup(2) == 2
    assert {r.path for r in server.requests} == {"/api/version"}
