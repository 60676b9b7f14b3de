"""The Client end to end over real HTTP on loopback against ``llmfast.testing``."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterator

import pytest

import llmfast
from llmfast import (
    ChatRequest,
    Client,
    ClientClosedError,
    ConfigurationError,
    Request,
    Response,
    StreamConsumedError,
    Transport,
    TransportLayer,
    UserMessage,
)
from llmfast.testing import MockServer, Reply

SECRET = "sk-test-SECRET-do-not-leak"


@pytest.fixture
async def client(server: MockServer) -> AsyncIterator[Client]:
    async with Client(base_url=server.url, api_key=SECRET, model="mock-model") as client:
        yield client


async def test_chat_returns_the_completion_and_sends_the_request(
    server: MockServer, client: Client
) -> None:
    reply = await client.chat("hello there", temperature=0.0, seed=7, max_tokens=20)
    assert reply.text == "hello there"
    assert reply.finish_reason == "stop"
    assert reply.usage is not None
    assert reply.usage.total_tokens > 0
    (recorded,) = server.requests
    assert recorded.path == "/v1/chat/completions"
    assert recorded.headers["authorization"] == f"Bearer {SECRET}"
    assert recorded.headers["content-type"] == "application/json"
    assert recorded.json == {
        "model": "mock-model",
        "messages": [{"role": "user", "content": "hello there"}],
        "temperature": 0.0,
        "max_tokens": 20,
        "seed": 7,
    }


async def test_messages_may_be_typed_or_plain_dicts(server: MockServer, client: Client) -> None:
    messages: list[llmfast.MessageLike] = [
        llmfast.SystemMessage("be brief"),
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "data:,"}},
            ],
        },
        llmfast.AssistantMessage(content="a picture"),
        UserMessage(
            [
                llmfast.TextPart("and now?"),
                llmfast.ImagePart(llmfast.ImageURL("https://x/y.png", detail="low")),
            ]
        ),
    ]
    reply = await client.chat(messages, model="other-model")
    assert reply.text == "and now?"
    sent = server.requests[0].json
    assert sent["model"] == "other-model"
    assert sent["messages"] == [
        {"role": "system", "content": "be brief"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "data:,"}},
            ],
        },
        {"role": "assistant", "content": "a picture"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "and now?"},
                {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}},
            ],
        },
    ]


async def test_a_whole_chat_request_may_be_passed(server: MockServer, client: Client) -> None:
    request = ChatRequest(model="m2", messages=[UserMessage("hi")], n=2, stop=["\n"])
    reply = await client.chat(request)
    assert [c.message.content for c in reply.choices] == ["hi", "hi"]
    assert server.requests[0].json["stop"] == ["\n"]
    with pytest.raises(ConfigurationError, match="not both"):
        await client.chat(request, temperature=1.0)


async def test_extra_body_is_merged_into_the_top_level(server: MockServer, client: Client) -> None:
    await client.chat("x", extra_body={"top_k": 5, "repetition_penalty": 1.1})
    sent = server.requests[0].json
    assert sent["top_k"] == 5
    assert sent["repetition_penalty"] == 1.1
    assert "extra_body" not in sent
    with pytest.raises(ConfigurationError, match="temperature"):
        await client.chat("x", temperature=0.5, extra_body={"temperature": 1})
    assert server.request_count == 1


async def test_unknown_parameter_is_a_configuration_error(client: Client) -> None:
    with pytest.raises(ConfigurationError, match="temprature"):
        await client.chat("x", temprature=0.1)  # type: ignore[call-overload]


async def test_tools_as_dicts_and_tool_calls_come_back(server: MockServer, client: Client) -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    server.enqueue(
        Reply.tool_calls(
            [
                {"name": "get_weather", "arguments": {"city": "Oslo"}},
                {"name": "get_time", "arguments": {"tz": "CET"}},
            ]
        )
    )
    reply = await client.chat("weather?", tools=[tool], tool_choice="auto")
    assert [c.function.name for c in reply.tool_calls] == ["get_weather", "get_time"]
    assert json.loads(reply.tool_calls[0].function.arguments) == {"city": "Oslo"}
    assert reply.finish_reason == "tool_calls"
    assert server.requests[0].json["tools"] == [tool]


async def test_stream_gives_text_deltas_and_the_final_completion(
    server: MockServer, client: Client
) -> None:
    server.enqueue(Reply.text("one two three four"))
    async with client.stream("count") as stream:
        deltas = [text async for text in stream.text_deltas()]
    assert deltas == ["one ", "two ", "three ", "four"]
    completion = stream.completion
    assert completion.text == "one two three four"
    assert completion.finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 4
    sent = server.requests[0].json
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}


async def test_stream_yields_typed_chunks_once(client: Client) -> None:
    async with client.stream("a b") as stream:
        with pytest.raises(StreamConsumedError):
            _ = stream.completion
        chunks = [chunk async for chunk in stream]
        with pytest.raises(StreamConsumedError):
            async for _ in stream:
                pass
    assert all(isinstance(c, llmfast.ChatCompletionChunk) for c in chunks)
    assert "".join(c.text for c in chunks) == "a b"
    assert stream.chunks == chunks
    assert await stream.collect() is stream.completion


async def test_stream_collect_without_iterating(server: MockServer, client: Client) -> None:
    server.enqueue(
        Reply.tool_calls(
            [{"name": "f", "arguments": {"a": [1, 2, 3]}}, {"name": "g", "arguments": "{}"}]
        )
    )
    async with client.stream("go") as stream:
        completion = await stream.collect()
    assert [(c.function.name, json.loads(c.function.arguments)) for c in completion.tool_calls] == [
        ("f", {"a": [1, 2, 3]}),
        ("g", {}),
    ]


async def test_stream_with_several_choices(client: Client) -> None:
    async with client.stream("x y z", n=3) as stream:
        completion = await stream.collect()
    assert [c.index for c in completion.choices] == [0, 1, 2]
    assert all(c.message.content == "x y z" for c in completion.choices)


async def test_embeddings(server: MockServer, client: Client) -> None:
    result = await client.embed(["alpha", "beta", "alpha"], model="embed-1", dimensions=5)
    vectors = result.vectors
    assert len(vectors) == 3
    assert all(len(v) == 5 for v in vectors)
    assert vectors[0] == vectors[2] != vectors[1]
    assert server.requests[0].json == {
        "model": "embed-1",
        "input": ["alpha", "beta", "alpha"],
        "dimensions": 5,
    }
    single = await client.embed("alpha", model="embed-1", dimensions=5)
    assert single.vectors == [vectors[0]]


async def test_base64_embeddings_are_decoded(server: MockServer, client: Client) -> None:
    floats = await client.embed("alpha", model="e", dimensions=4)
    packed = await client.embed("alpha", model="e", dimensions=4, encoding_format="base64")
    assert server.requests[1].json["encoding_format"] == "base64"
    assert packed.vectors == [pytest.approx(v, rel=1e-6) for v in floats.vectors]


async def test_secrets_never_show(server: MockServer) -> None:
    server.enqueue(Reply.error(401, message="Incorrect API key provided"))
    client = Client(base_url=server.url, api_key=SECRET, model="m")
    try:
        assert SECRET not in repr(client)
        assert SECRET not in repr(client.backend)
        with pytest.raises(llmfast.AuthenticationError) as caught:
            await client.chat("hi")
        text = f"{caught.value!s} {caught.value!r} {caught.value.body!r} {caught.value.headers!r}"
        assert SECRET not in text
    finally:
        await client.aclose()
    assert SECRET not in repr(client)


async def test_repr_shows_the_chain_outermost_first(server: MockServer) -> None:
    order: list[str] = []

    class Tag(TransportLayer):
        def __init__(self, inner: Transport, *, name: str) -> None:
            super().__init__(inner)
            self.name = name

        async def send(self, request: Request, /) -> Response:
            order.append(self.name)
            return await self.inner.send(request)

        def describe(self) -> str:
            return f"Tag({self.name})"

    layers = [functools.partial(Tag, name="outer"), functools.partial(Tag, name="inner")]
    async with Client(base_url=server.url, model="m", layers=layers) as client:
        await client.chat("hi")
        assert order == ["outer", "inner"]
        assert repr(client) == (
            f"<Client Tag(outer) → Tag(inner) → OpenAIBackend('{server.url}', model='m')>"
        )


async def test_closed_client_raises_clearly(server: MockServer) -> None:
    client = Client(base_url=server.url, model="m")
    await client.chat("warm")
    await client.aclose()
    await client.aclose()  # idempotent
    assert client.closed
    with pytest.raises(ClientClosedError):
        await client.chat("hi")
    with pytest.raises(ClientClosedError):
        client.stream("hi")
    with pytest.raises(ClientClosedError):
        await client.embed("hi")
    with pytest.raises(ClientClosedError):
        await client.warmup(1)
    assert server.request_count == 1


async def test_closing_releases_every_connection(server: MockServer) -> None:
    client = Client(base_url=server.url, model="m")
    await asyncio.gather(*(client.chat(f"n{i}") for i in range(5)))
    pool = client._pool
    assert pool.open_connections() >= 1
    await client.aclose()
    assert pool.open_connections() == 0


async def test_warmup_opens_connections_ahead_of_the_first_call(server: MockServer) -> None:
    async with Client(base_url=server.url, model="m") as client:
        opened = await client.warmup(4)
        assert opened == 4
        assert server.connection_count == 4
        assert [r.path for r in server.requests] == ["/v1/models"] * 4
        await asyncio.gather(*(client.chat(f"n{i}") for i in range(4)))
        assert server.connection_count == 4  # the calls reused the warm connections


async def test_sequential_calls_reuse_one_connection(server: MockServer, client: Client) -> None:
    for i in range(5):
        await client.chat(f"n{i}")
    async with client.stream("s t") as stream:
        await stream.collect()
    await client.chat("after the stream")
    assert server.connection_count == 1


async def test_environment_defaults(server: MockServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("LLMFAST_BASE_URL", server.url)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:1/never-used")
    monkeypatch.setenv("LLMFAST_MODEL", "env-model")
    async with Client() as client:
        await client.chat("hi")
    assert server.requests[0].headers["authorization"] == f"Bearer {SECRET}"
    assert server.requests[0].json["model"] == "env-model"


async def test_missing_model_is_a_configuration_error(
    server: MockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LLMFAST_MODEL", raising=False)
    async with Client(base_url=server.url) as client:
        with pytest.raises(ConfigurationError, match="no model"):
            await client.chat("hi")
    assert server.request_count == 0


def test_bad_base_url_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match="http"):
        Client(base_url="localhost:8000/v1")


async def test_per_call_headers(server: MockServer, client: Client) -> None:
    await client.chat("hi", headers={"X-Trace": "abc"})
    await client.chat("hi")
    assert server.requests[0].headers["x-trace"] == "abc"
    assert "x-trace" not in server.requests[1].headers
    assert server.requests[1].headers["authorization"] == f"Bearer {SECRET}"


async def test_client_headers_and_backend_object(server: MockServer) -> None:
    backend = llmfast.OpenAIBackend(
        server.url, api_key="k", model="b-model", headers={"X-App": "demo"}, organization="org-1"
    )
    async with Client(backend) as client:
        assert client.model == "b-model"
        await client.chat("hi")
    headers = server.requests[0].headers
    assert headers["x-app"] == "demo"
    assert headers["openai-organization"] == "org-1"
    assert headers["user-agent"].startswith("llmfast/")


async def test_layers_report_events_to_the_clients_hook(server: MockServer) -> None:
    seen: list[llmfast.Event] = []

    class Reporting(TransportLayer):
        async def send(self, request: Request, /) -> Response:
            llmfast.emit(request, "custom", 0.5, note="hello")
            return await self.inner.send(request)

    async with Client(
        base_url=server.url, model="m", layers=[Reporting], on_event=seen.append
    ) as client:
        await client.chat("one")
        async with client.stream("two") as stream:
            await stream.collect()
        await client.embed("three")
    custom = [e for e in seen if e.name == "custom"]
    assert [(e.name, e.elapsed, dict(e.data)) for e in custom] == [
        ("custom", 0.5, {"note": "hello"})
    ] * 3
    assert [e.request.kind for e in custom] == ["chat", "chat", "embed"]
    assert custom[1].request.stream


async def test_no_hook_means_no_events(server: MockServer) -> None:
    body = ChatRequest(model="m", messages=[{"role": "user", "content": "x"}])
    request = Request(body)
    llmfast.emit(request, "ignored")  # no hook: nothing happens, nothing raises
    async with Client(base_url=server.url, model="m") as client:
        response = await client.send(request)
        assert (await response.collect()).text == "x"


async def test_per_call_cache_switch(server: MockServer) -> None:
    from llmfast.layers import Cache, MemoryStore

    async with Client(
        base_url=server.url, model="m", layers=[Cache(store=MemoryStore())]
    ) as client:
        await client.chat("same", temperature=0)
        await client.chat("same", temperature=0)  # a hit
        await client.chat("same", temperature=0, cache="bypass")
        await client.chat("same", temperature=0, cache="refresh")
        await client.chat("same", temperature=0)  # a hit of the refreshed entry
        async with client.stream("same", temperature=0, cache="bypass") as stream:
            await stream.collect()
        await client.embed("vector", cache="bypass")
    assert server.request_count == 5


async def test_router_cache_identity_names_routes_and_models(server: MockServer) -> None:
    from llmfast.layers import backend_identity

    one = llmfast.Router([llmfast.Route(llmfast.OpenAIBackend(server.url), model="a")])
    two = llmfast.Router([llmfast.Route(llmfast.OpenAIBackend(server.url), model="b")])
    assert backend_identity(one) != backend_identity(two)
    assert server.url in backend_identity(one)


async def test_calls_report_done_with_their_timing(server: MockServer) -> None:
    seen: list[llmfast.Event] = []
    # No layers: the events of the client's own calls, one attempt each.
    async with Client(base_url=server.url, model="m", on_event=seen.append, layers=[]) as client:
        await client.chat("one two")
        server.enqueue(Reply.text("a b c", token_delay=0.01))
        async with client.stream("x") as stream:
            await stream.collect()
        async with client.stream("early") as stream:
            async for _ in stream:
                break
        server.enqueue(Reply.error(500))
        with pytest.raises(llmfast.ServerError):
            await client.chat("fails")
        await client.embed("vec")
    done = [e for e in seen if e.name == "done"]
    assert [(e.data["kind"], e.data["stream"], e.data["outcome"]) for e in done] == [
        ("chat", False, "ok"),
        ("chat", True, "ok"),
        ("chat", True, "closed"),
        ("chat", False, "ServerError"),
        ("embed", False, "ok"),
    ]
    assert done[0].data["completion_tokens"] == 2
    assert done[1].data["chunks"] == 6  # role, three words, finish, usage
    assert done[1].data["max_gap"] >= 0.01
    assert done[1].elapsed is not None
    assert done[1].elapsed >= 0.02
    (first, _) = [e for e in seen if e.name == "first_chunk"]
    assert first.elapsed is not None
    assert 0 < first.elapsed <= done[1].elapsed


async def test_a_stream_that_fails_to_start_reports_done(server: MockServer) -> None:
    seen: list[llmfast.Event] = []
    server.enqueue(Reply.error(429))
    async with Client(base_url=server.url, model="m", on_event=seen.append, layers=[]) as client:
        with pytest.raises(llmfast.RateLimitError):
            async with client.stream("x"):
                pass
    assert [(e.name, e.data["outcome"]) for e in seen] == [("done", "RateLimitError")]


async def test_a_list_of_mixed_typed_messages_needs_no_annotation(
    server: MockServer, client: Client
) -> None:
    # mypy (run over the tests in CI) infers list[BaseMessage] here, which calls accept.
    messages = [llmfast.SystemMessage("be brief"), llmfast.UserMessage("hi")]
    assert (await client.chat(messages)).text == "hi"
