"""``ChatLLMFast`` and ``LLMFastEmbeddings`` beyond the standard suites: what reaches
the wire, llmfast's layers and clients underneath, streaming details, structured
output edge cases, errors and secrets (real HTTP to ``llmfast.testing``)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.exceptions import OutputParserException
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from pydantic import BaseModel, SecretStr, ValidationError

import llmfast
from llmfast.errors import ConfigurationError, RateLimitError
from llmfast.integrations.langchain import ChatLLMFast, LLMFastEmbeddings
from llmfast.layers import Cache
from llmfast.testing import MockServer, Reply


class Joke(BaseModel):
    setup: str
    punchline: str


@pytest.fixture(scope="module")
def module_server() -> Iterator[MockServer]:
    with MockServer.in_thread() as running:
        yield running


@pytest.fixture
def server(module_server: MockServer) -> MockServer:
    module_server.reset()
    return module_server


def chat(server: MockServer, provider: str = "openai", **kwargs: Any) -> ChatLLMFast:
    return ChatLLMFast(
        model="mock-model", provider=provider, base_url=server.url_for(provider), **kwargs
    )


def sent(server: MockServer) -> dict[str, Any]:
    body: dict[str, Any] = server.requests[-1].json
    return body


def test_import_llmfast_imports_no_langchain() -> None:
    code = "import llmfast, sys; print(sorted(m for m in sys.modules if 'langchain' in m))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_parameters_reach_the_wire(server: MockServer) -> None:
    model = chat(server, temperature=0.5, max_tokens=7, stop=["END"], model_kwargs={"seed": 3})
    reply = model.invoke("hello", top_p=0.5, logit_bias={"1": 2})
    body = sent(server)
    assert body["temperature"] == 0.5
    assert body["max_tokens"] == 7
    assert body["seed"] == 3
    assert body["stop"] == ["END"]
    assert body["top_p"] == 0.5
    assert body["logit_bias"] == {"1": 2}  # unknown keywords go in the body
    assert reply.content == "hello"
    assert reply.response_metadata["model_name"] == "mock-model"
    assert reply.response_metadata["finish_reason"] == "stop"
    assert reply.response_metadata["system_fingerprint"] == "fp_mock"
    model.invoke("again", stop=["x", "y"], model="other-model")
    assert sent(server)["stop"] == ["x", "y"]
    assert sent(server)["model"] == "other-model"


def test_anthropic_format_stop_and_system(server: MockServer) -> None:
    model = chat(server, "anthropic", stop=["END"])
    reply = model.invoke([("system", "Be brief."), ("human", "hi there")])
    body = sent(server)
    assert server.requests[-1].path == "/v1/messages"
    assert body["stop_sequences"] == ["END"]
    assert body["system"] == "Be brief."
    assert reply.content == "hi there"
    assert reply.usage_metadata is not None
    assert reply.usage_metadata["input_tokens"] > 0


@pytest.mark.parametrize("provider", ["gemini", "ollama"])
def test_other_formats(server: MockServer, provider: str) -> None:
    model = chat(server, provider)
    assert model.invoke("hello from " + provider).content == "hello from " + provider
    text = "".join(str(c.content) for c in model.stream("streamed words here"))
    assert text == "streamed words here"


async def test_layers_of_a_given_client_apply(server: MockServer) -> None:
    async with llmfast.Client(base_url=server.url, model="mock-model", layers=[Cache()]) as client:
        model = ChatLLMFast(client=client, temperature=0)
        first = await model.ainvoke("cache me")
        second = await model.ainvoke("cache me")
    assert first.content == second.content == "cache me"
    assert server.request_count == 1  # the second answer came from llmfast's cache


async def test_an_async_client_refuses_blocking_calls(server: MockServer) -> None:
    async with llmfast.Client(base_url=server.url, model="mock-model") as client:
        model = ChatLLMFast(client=client)
        with pytest.raises(ConfigurationError, match="SyncClient"):
            await asyncio.to_thread(model.invoke, "hi")
    with pytest.raises(ValidationError, match="not beside client"):
        ChatLLMFast(client=client, base_url=server.url)


async def test_a_sync_client_serves_both(server: MockServer) -> None:
    with llmfast.SyncClient(base_url=server.url, model="mock-model") as client:
        model = ChatLLMFast(client=client)
        assert (await asyncio.to_thread(model.invoke, "blocking")).content == "blocking"
        assert (await model.ainvoke("on a thread")).content == "on a thread"
        chunks = [c async for c in model.astream("streamed on a thread")]
        assert "".join(str(c.content) for c in chunks) == "streamed on a thread"


def test_each_event_loop_gets_a_client_closed_with_it(server: MockServer) -> None:
    model = chat(server)
    for text in ("first loop", "second loop"):
        assert asyncio.run(model.ainvoke(text)).content == text
    made = [client for client, _ in model._clients._loops.values()]
    assert all(client.closed for client in made)  # each closed by its loop's shutdown
    assert server.request_count == 2
    asyncio.run(server.wait_open_connections(0))  # and their connections with them


def test_streaming_usage_and_metadata_once(server: MockServer) -> None:
    chunks = list(chat(server).stream("one two three"))
    assert [c.content for c in chunks[:-1]] == ["one ", "two ", "three"]
    last = chunks[-1]
    assert last.chunk_position == "last"
    assert last.usage_metadata is not None
    assert all(c.usage_metadata is None for c in chunks[:-1])
    full = sum(chunks[1:], chunks[0])
    assert isinstance(full, AIMessageChunk)
    assert full.usage_metadata == last.usage_metadata
    assert full.response_metadata["model_name"] == "mock-model"
    assert full.response_metadata["finish_reason"] == "stop"


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_streamed_tool_call_chunks(server: MockServer, provider: str) -> None:
    server.enqueue(
        Reply.tool_calls(
            [
                {"name": "add", "arguments": {"a": 1, "b": 2}},
                {"name": "mul", "arguments": {"a": 3, "b": 4}},
            ]
        )
    )

    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    def mul(a: int, b: int) -> int:
        """Multiply two numbers."""
        return a * b

    model = chat(server, provider).bind_tools([add, mul], tool_choice="any")
    chunks = list(model.stream("compute"))
    pieces = [p for c in chunks if isinstance(c, AIMessageChunk) for p in c.tool_call_chunks]
    assert len(pieces) > 2  # the arguments arrived in fragments
    assert {p["index"] for p in pieces} == {0, 1}
    full = sum(chunks[1:], chunks[0])
    assert isinstance(full, AIMessageChunk)
    assert [(c["name"], c["args"]) for c in full.tool_calls] == [
        ("add", {"a": 1, "b": 2}),
        ("mul", {"a": 3, "b": 4}),
    ]
    body = sent(server)
    if provider == "openai":
        assert body["tool_choice"] == "required"
        assert body["tools"][0]["function"]["name"] == "add"
    else:
        assert body["tool_choice"] == {"type": "any"}
        assert body["tools"][0]["input_schema"]["required"] == ["a", "b"]


def test_tool_choice_by_name_and_errors(server: MockServer) -> None:
    def lookup(city: str) -> str:
        """Look a city up."""
        return city

    model = chat(server)
    model.bind_tools([lookup], tool_choice="lookup").invoke("where?")
    assert sent(server)["tool_choice"] == {"type": "function", "function": {"name": "lookup"}}
    model.bind_tools([lookup], tool_choice=True).invoke("where?")
    assert sent(server)["tool_choice"]["function"]["name"] == "lookup"
    with pytest.raises(ConfigurationError, match="names no bound tool"):
        model.bind_tools([lookup], tool_choice="missing")
    bad = Reply.tool_calls([{"name": "lookup", "arguments": "{not json"}])
    server.enqueue(bad)
    reply = model.bind_tools([lookup]).invoke("where?")
    assert not reply.tool_calls
    assert reply.invalid_tool_calls[0]["args"] == "{not json"


def test_llmfast_tools_bind_as_they_are(server: MockServer) -> None:
    @llmfast.tool
    def weather(city: str) -> str:
        """The weather in a city."""
        return "sunny"

    chat(server).bind_tools([weather]).invoke("weather?")
    assert sent(server)["tools"][0]["function"]["name"] == "weather"


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_reasoning_is_kept(server: MockServer, provider: str) -> None:
    server.enqueue(
        Reply.text("Four.", reasoning="two and two"), Reply.text("Four.", reasoning="two and two")
    )
    model = chat(server, provider)
    reply = await model.ainvoke("2+2?")
    assert reply.additional_kwargs["reasoning_content"] == "two and two"
    assert reply.content_blocks[0] == {"type": "reasoning", "reasoning": "two and two"}
    chunks = [c async for c in model.astream("2+2?")]
    full = sum(chunks[1:], chunks[0])
    assert full.additional_kwargs["reasoning_content"] == "two and two"
    assert full.content == "Four."
    await model.aclose()


def test_structured_output_methods_on_the_wire(server: MockServer) -> None:
    model = chat(server)
    joke = model.with_structured_output(Joke).invoke("a joke")
    assert isinstance(joke, Joke)
    assert "ls_structured_output_format" not in sent(server)  # LangChain's, not the API's
    format_ = sent(server)["response_format"]
    assert format_["type"] == "json_schema"
    assert format_["json_schema"]["strict"] is True
    joke = model.with_structured_output(Joke, method="function_calling").invoke("a joke")
    assert isinstance(joke, Joke)
    assert sent(server)["tool_choice"]["function"]["name"] == "Joke"
    anthropic = chat(server, "anthropic").with_structured_output(Joke).invoke("a joke")
    assert isinstance(anthropic, Joke)
    assert sent(server)["tool_choice"] == {"type": "tool", "name": "Joke"}


def test_structured_output_include_raw_keeps_the_error(server: MockServer) -> None:
    server.enqueue(Reply.text('{"setup": "only half"}'))
    model = chat(server).with_structured_output(Joke, include_raw=True)
    result = model.invoke("a joke")
    assert isinstance(result["raw"], AIMessage)
    assert result["parsed"] is None
    assert isinstance(result["parsing_error"], OutputParserException)
    assert "punchline" in str(result["parsing_error"])
    server.enqueue(Reply.text('{"setup": "a", "punchline": "b"}'))
    good = model.invoke("a joke")
    assert good["parsed"] == Joke(setup="a", punchline="b")
    assert good["parsing_error"] is None


def test_structured_dict_streams_as_it_grows(server: MockServer) -> None:
    schema = {
        "title": "Pair",
        "type": "object",
        "properties": {"left": {"type": "string"}, "right": {"type": "string"}},
        "required": ["left", "right"],
    }
    server.enqueue(Reply.text('{"left": "one two three", "right": "four five"}', chunk_size=4))
    values = list(chat(server).with_structured_output(schema).stream("pair"))
    assert len(values) > 3
    assert values[-1] == {"left": "one two three", "right": "four five"}
    assert all(values[i] != values[i + 1] for i in range(len(values) - 1))


def test_json_mode_validates(server: MockServer) -> None:
    server.enqueue(Reply.text("not json at all"))
    with pytest.raises(OutputParserException, match="not a valid Joke"):
        chat(server).with_structured_output(Joke, method="json_mode").invoke("joke")
    assert sent(server)["response_format"] == {"type": "json_object"}


def test_images_reach_each_format(server: MockServer) -> None:
    message = HumanMessage(
        [
            {"type": "text", "text": "what is this?"},
            {"type": "image", "base64": "iVBORw0KGgo=", "mime_type": "image/png"},
        ]
    )
    chat(server).invoke([message])
    part = sent(server)["messages"][0]["content"][1]
    assert part == {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    chat(server, "anthropic").invoke([message])
    block = sent(server)["messages"][0]["content"][1]
    assert block["source"] == {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}


def test_tool_round_trip_on_the_wire(server: MockServer) -> None:
    history = [
        HumanMessage("add 1 and 2"),
        AIMessage("", tool_calls=[{"name": "add", "args": {"a": 1, "b": 2}, "id": "c1"}]),
        ToolMessage("3", tool_call_id="c1"),
    ]
    chat(server).invoke(history)
    messages = sent(server)["messages"]
    assert messages[1]["tool_calls"][0]["function"] == {"name": "add", "arguments": '{"a":1,"b":2}'}
    assert messages[2] == {"role": "tool", "content": "3", "tool_call_id": "c1"}


def test_errors_are_llmfast_errors_and_retries_apply(server: MockServer) -> None:
    server.enqueue(Reply.error(429, message="slow down"))
    with pytest.raises(RateLimitError, match="slow down"):
        chat(server, max_retries=0).invoke("hi")
    server.enqueue(Reply.error(503, retry_after=0))
    assert chat(server).invoke("retried").content == "retried"  # default: 2 retries
    assert server.request_count == 3


def test_n_choices_and_streaming_flag(server: MockServer) -> None:
    result = chat(server, n=2).generate([[HumanMessage("twice")]])
    assert [g.text for g in result.generations[0]] == ["twice", "twice"]
    assert chat(server, streaming=True).invoke("streamed anyway").content == "streamed anyway"
    assert sent(server).get("stream") is True


def test_no_secret_in_what_langchain_shows(server: MockServer) -> None:
    url = server.url.replace("http://", "http://user:hunter2@")
    model = ChatLLMFast(model="m", base_url=url, api_key=SecretStr("sk-secret-123"))
    shown = " ".join(
        [
            repr(model),
            str(model),
            json.dumps(model._identifying_params),
            str(model._get_ls_params()),
        ]
    )
    assert "sk-secret-123" not in shown
    assert "hunter2" not in shown
    assert model.api_key is not None
    assert model.api_key.get_secret_value() == "sk-secret-123"


def test_missing_key_is_caught_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ValidationError, match="OPENAI_API_KEY"):
        ChatLLMFast(model="gpt-4o-mini")
    with pytest.raises(ValidationError, match="Extra inputs"):
        ChatLLMFast(model="m", no_such_field=1)  # type: ignore[call-arg]
    named: dict[str, Any] = {"model_name": "m", "api_key": "k"}  # ChatOpenAI's spelling
    assert ChatLLMFast(**named).model == "m"


async def test_embeddings_batches_in_order(server: MockServer) -> None:
    embeddings = LLMFastEmbeddings(model="mock-embed", base_url=server.url, chunk_size=2)
    texts = ["alpha", "beta", "gamma"]
    vectors = await embeddings.aembed_documents(texts)
    assert server.request_count == 2
    assert [json.dumps(r.json["input"]) for r in server.requests] == [
        '["alpha", "beta"]',
        '["gamma"]',
    ]
    single = [await embeddings.aembed_query(t) for t in texts]
    assert single == vectors
    assert await asyncio.to_thread(embeddings.embed_documents, texts) == vectors
    assert await embeddings.aembed_documents([]) == []
    await embeddings.aclose()
    embeddings.close()
