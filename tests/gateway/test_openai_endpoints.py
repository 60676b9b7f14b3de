"""The gateway's OpenAI-compatible endpoints, with the official ``openai`` SDK as the
client and ``llmfast.testing`` servers as the upstreams."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import pytest

from llmfast.gateway import Gateway
from llmfast.testing import MockServer, Reply

from .conftest import TEAM_A_KEY, TEAM_B_KEY, UPSTREAM_KEY, MakeGateway, standard_config


@pytest.fixture
async def gateway(upstream: MockServer, make_gateway: MakeGateway) -> AsyncIterator[Gateway]:
    async with make_gateway(standard_config(upstream)) as gateway:
        yield gateway


def sdk(gateway: Gateway, key: str = TEAM_A_KEY) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0)


async def test_chat_reaches_the_deployment_with_its_model_and_key(
    gateway: Gateway, upstream: MockServer
) -> None:
    async with sdk(gateway) as client:
        reply = await client.chat.completions.create(
            model="fast", messages=[{"role": "user", "content": "hello there gateway"}]
        )
    assert reply.choices[0].message.content == "hello there gateway"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None
    assert reply.usage.completion_tokens == 3
    sent = upstream.requests[-1]
    assert sent.json["model"] == "upstream-model"
    assert sent.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"


async def test_unknown_parameters_travel_to_the_upstream(
    gateway: Gateway, upstream: MockServer
) -> None:
    async with sdk(gateway) as client:
        await client.chat.completions.create(
            model="fast",
            messages=[{"role": "user", "content": "hi"}],
            temperature=0.25,
            extra_body={"top_k": 7, "metadata": {"team": "a"}},
        )
    sent = upstream.requests[-1].json
    assert sent["temperature"] == 0.25
    assert sent["top_k"] == 7
    assert sent["metadata"] == {"team": "a"}


async def test_a_stream_is_forwarded_chunk_by_chunk(gateway: Gateway, upstream: MockServer) -> None:
    upstream.enqueue(Reply.text("one two three four", chunk_size=1))
    async with sdk(gateway) as client:
        stream = await client.chat.completions.create(
            model="fast", messages=[{"role": "user", "content": "count"}], stream=True
        )
        chunks = [chunk async for chunk in stream]
    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert "".join(texts) == "one two three four"
    assert len(texts) >= 4  # forwarded as chunks, not as one piece
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(chunk.usage is None for chunk in chunks)  # not asked for


async def test_stream_usage_only_when_asked(gateway: Gateway) -> None:
    async with sdk(gateway) as client:
        stream = await client.chat.completions.create(
            model="fast",
            messages=[{"role": "user", "content": "a b c"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 3


async def test_tool_calls_streamed_and_not(gateway: Gateway, upstream: MockServer) -> None:
    call = {"name": "get_weather", "arguments": {"city": "Paris"}, "id": "call_1"}
    tools: list[Any] = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    upstream.enqueue(Reply.tool_calls([call]), Reply.tool_calls([call]))
    async with sdk(gateway) as client:
        reply = await client.chat.completions.create(
            model="fast", messages=[{"role": "user", "content": "weather?"}], tools=tools
        )
        stream = await client.chat.completions.create(
            model="fast",
            messages=[{"role": "user", "content": "weather?"}],
            tools=tools,
            stream=True,
        )
        deltas = [c async for c in stream]
    tool_call: Any
    (tool_call,) = reply.choices[0].message.tool_calls or []
    assert tool_call.type == "function"
    assert tool_call.id == "call_1"
    assert tool_call.function.name == "get_weather"
    assert tool_call.function.arguments == '{"city":"Paris"}'
    assert upstream.requests[0].json["tools"] == tools
    fragments = [
        t.function.arguments or ""
        for c in deltas
        if c.choices
        for t in c.choices[0].delta.tool_calls or []
        if t.function is not None
    ]
    assert "".join(fragments) == '{"city":"Paris"}'
    assert deltas[-1].choices[0].finish_reason == "tool_calls"


async def test_embeddings_and_models(gateway: Gateway) -> None:
    async with sdk(gateway) as client:
        result = await client.embeddings.create(model="fast", input=["alpha", "beta"])
        listed = [m.id async for m in client.models.list()]
    async with sdk(gateway, TEAM_B_KEY) as client:
        listed_b = [m.id async for m in client.models.list()]
    assert [item.index for item in result.data] == [0, 1]
    assert len(result.data[0].embedding) > 0
    assert listed == ["fast", "other"]
    assert listed_b == ["other"]


@pytest.mark.parametrize("key", ["", "vk-wrong", TEAM_A_KEY[:-1]])
async def test_a_request_without_a_valid_key_gets_401(
    gateway: Gateway, upstream: MockServer, key: str
) -> None:
    async with sdk(gateway, key or "x") as client:
        with pytest.raises(openai.AuthenticationError) as caught:
            await client.chat.completions.create(
                model="fast", messages=[{"role": "user", "content": "hi"}]
            )
    assert caught.value.status_code == 401
    assert upstream.request_count == 0


async def test_a_key_may_use_only_its_models(gateway: Gateway, upstream: MockServer) -> None:
    async with sdk(gateway, TEAM_B_KEY) as client:
        with pytest.raises(openai.NotFoundError) as caught:
            await client.chat.completions.create(
                model="fast", messages=[{"role": "user", "content": "hi"}]
            )
        ok = await client.chat.completions.create(
            model="other", messages=[{"role": "user", "content": "hi"}]
        )
        with pytest.raises(openai.NotFoundError):
            await client.chat.completions.create(
                model="nope", messages=[{"role": "user", "content": "hi"}]
            )
    assert "fast" in caught.value.message
    assert ok.choices[0].message.content == "hi"
    assert [r.json["model"] for r in upstream.requests] == ["other-upstream-model"]


async def raw_post(
    gateway: Gateway, body: bytes, key: str = TEAM_A_KEY
) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(gateway.url + "/v1/chat/completions", data=body, headers=headers) as response,
    ):
        return response.status, await response.json()


@pytest.mark.parametrize(
    ("body", "status", "mentions"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (b'{"model": "fast"}', 400, "messages"),
        (b'{"model": "fast", "messages": []}', 400, "at least one message"),
        (
            b'{"model": "fast", "messages": [{"role": "user", "content": "x"}], '
            b'"temperature": "hot"}',
            400,
            "temperature",
        ),
        (
            b'{"model": "fast", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}',
            400,
            "stream",
        ),
        (
            b'{"model": "fast", "messages": [{"role": "user", "content": "'
            + b"x" * 200_000
            + b'"}]}',
            413,
            "100000 bytes",
        ),
        (b"[" * 100_000, 400, "not valid JSON"),
    ],
)
async def test_bad_input_gets_a_4xx_in_openais_shape(
    gateway: Gateway, upstream: MockServer, body: bytes, status: int, mentions: str
) -> None:
    got_status, answer = await raw_post(gateway, body)
    assert got_status == status
    assert mentions in answer["error"]["message"]
    assert set(answer["error"]) == {"message", "type", "param", "code"}
    assert upstream.request_count == 0


async def test_an_upstream_429_keeps_its_status_and_retry_after(
    gateway: Gateway, upstream: MockServer
) -> None:
    upstream.enqueue(Reply.error(429, retry_after=7))
    async with sdk(gateway) as client:
        with pytest.raises(openai.RateLimitError) as caught:
            await client.chat.completions.create(
                model="fast", messages=[{"role": "user", "content": "hi"}]
            )
    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "7"


async def test_upstream_keys_never_reach_the_caller(gateway: Gateway, upstream: MockServer) -> None:
    upstream.enqueue(
        Reply.error(400, message=f"Incorrect API key provided: {UPSTREAM_KEY}"),
        Reply.error(401, message=f"Incorrect API key provided: {UPSTREAM_KEY}"),
    )
    async with sdk(gateway) as client:
        with pytest.raises(openai.BadRequestError) as bad:
            await client.chat.completions.create(
                model="fast", messages=[{"role": "user", "content": "hi"}]
            )
        with pytest.raises(openai.InternalServerError) as refused:
            await client.chat.completions.create(
                model="fast", messages=[{"role": "user", "content": "hi"}]
            )
    assert UPSTREAM_KEY not in str(bad.value.body)
    assert "***" in bad.value.message
    assert refused.value.status_code == 502  # the gateway's key was refused, not the caller's
    assert UPSTREAM_KEY not in str(refused.value.body)


async def test_failover_to_the_next_deployment(
    upstream: MockServer, second_upstream: MockServer, make_gateway: MakeGateway
) -> None:
    config = f"""
[server]
listen = "127.0.0.1:0"
[models.fast]
retry = 1
[[models.fast.deployments]]
base_url = "{upstream.url}"
api_key_env = "UPSTREAM_KEY"
model = "primary"
[[models.fast.deployments]]
base_url = "{second_upstream.url}"
api_key_env = "UPSTREAM_KEY"
model = "secondary"
priority = 1
"""
    upstream.enqueue(Reply.error(503))
    async with make_gateway(config) as gateway, sdk(gateway, "anything") as client:
        reply = await client.chat.completions.create(
            model="fast", messages=[{"role": "user", "content": "still here"}]
        )
    assert reply.choices[0].message.content == "still here"
    assert upstream.request_count == 1
    assert [r.json["model"] for r in second_upstream.requests] == ["secondary"]


async def test_a_tenant_over_its_rpm_gets_429_before_the_upstream(
    upstream: MockServer, make_gateway: MakeGateway
) -> None:
    config = standard_config(upstream).replace(
        'key_env = "TEAM_A_KEY"', 'key_env = "TEAM_A_KEY"\nrpm = 2'
    )
    async with make_gateway(config) as gateway, sdk(gateway) as client:
        for _ in range(2):
            await client.chat.completions.create(
                model="fast", messages=[{"role": "user", "content": "hi"}]
            )
        with pytest.raises(openai.RateLimitError) as caught:
            await client.chat.completions.create(
                model="fast", messages=[{"role": "user", "content": "hi"}]
            )
        async with sdk(gateway, TEAM_B_KEY) as other:  # another tenant is not held back
            await other.chat.completions.create(
                model="other", messages=[{"role": "user", "content": "hi"}]
            )
    assert caught.value.response.headers.get("retry-after")
    assert upstream.request_count == 3


async def test_a_disconnecting_client_cancels_its_upstream_call(
    gateway: Gateway, upstream: MockServer
) -> None:
    upstream.enqueue(Reply.text("word " * 400, chunk_size=1, token_delay=0.01))
    headers = {"Authorization": f"Bearer {TEAM_A_KEY}"}
    body = {"model": "fast", "stream": True, "messages": [{"role": "user", "content": "go"}]}
    async with aiohttp.ClientSession() as session:
        response = await session.post(
            gateway.url + "/v1/chat/completions", json=body, headers=headers
        )
        await response.content.readline()  # the first chunk is through
        assert upstream.open_connections == 1
        response.close()  # the caller goes away mid-stream
    await upstream.wait_open_connections(0, timeout=5)


async def test_health(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as session, session.get(gateway.url + "/health") as r:
        assert r.status == 200
        health = await r.json()
    assert health == {"status": "ok", "models": {"fast": True, "other": True}, "pid": os.getpid()}


async def test_closing_drains_50_streams_in_flight(
    upstream: MockServer, make_gateway: MakeGateway
) -> None:
    for _ in range(50):
        upstream.enqueue(Reply.text("a b c d e f g h", chunk_size=1, token_delay=0.02))
    async with make_gateway(standard_config(upstream)) as gateway, sdk(gateway) as client:

        async def one() -> str:
            stream = await client.chat.completions.create(
                model="fast", messages=[{"role": "user", "content": "x"}], stream=True
            )
            return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

        calls = [asyncio.create_task(one()) for _ in range(50)]
        await upstream.wait_for_requests(50, timeout=10)
        await gateway.aclose()  # stops listening, lets the 50 finish
        texts = await asyncio.gather(*calls)
        with pytest.raises(openai.APIConnectionError):
            await client.chat.completions.create(
                model="fast", messages=[{"role": "user", "content": "late"}]
            )
    assert texts == ["a b c d e f g h"] * 50


async def test_metrics_count_requests_tokens_and_layers(
    upstream: MockServer, make_gateway: MakeGateway
) -> None:
    config = standard_config(upstream, model_extra="cache = true")
    async with make_gateway(config) as gateway, sdk(gateway) as client:
        for _ in range(2):  # the second is a cache hit
            await client.chat.completions.create(
                model="fast", temperature=0, messages=[{"role": "user", "content": "a b"}]
            )
        stream = await client.chat.completions.create(
            model="fast", messages=[{"role": "user", "content": "c d e"}], stream=True
        )
        _ = [chunk async for chunk in stream]
        async with sdk(gateway, "wrong") as stranger:
            with pytest.raises(openai.AuthenticationError):
                await stranger.models.list()
        async with (
            aiohttp.ClientSession() as session,
            session.get(gateway.url + "/metrics") as response,
        ):
            assert response.status == 200
            text = await response.text()
    lines = set(text.splitlines())
    labels = 'endpoint="chat_completions",model="fast",status="200",tenant="team-a"'
    assert f"llmfast_gateway_requests_total{{{labels}}} 3.0" in lines
    assert (
        'llmfast_gateway_requests_total{endpoint="models",model="-",status="401",tenant="-"} 1.0'
        in lines
    )
    assert (
        'llmfast_gateway_layer_events_total{event="cache_hit",model="fast",tenant="team-a"} 1.0'
        in lines
    )
    errors = 'llmfast_gateway_errors_total{code="invalid_api_key",model="-",tenant="-"} 1.0'
    assert errors in lines
    tokens = 'llmfast_gateway_tokens_total{direction="output",model="fast",tenant="team-a"}'
    assert f"{tokens} 5.0" in lines  # 2 + 3: the cache hit cost nothing upstream
    assert 'llmfast_gateway_first_chunk_seconds_count{model="fast",tenant="team-a"} 1.0' in lines
    assert UPSTREAM_KEY not in text
    assert TEAM_A_KEY not in text
