"""The gateway's Anthropic-compatible ``/v1/messages``, with the official ``anthropic``
SDK as the client: to an OpenAI-compatible upstream and back the other way."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic
import openai
import pytest

from llmfast.gateway import Gateway
from llmfast.testing import MockServer, Reply

from .conftest import TEAM_A_KEY, TEAM_B_KEY, MakeGateway, standard_config


@pytest.fixture
async def gateway(upstream: MockServer, make_gateway: MakeGateway) -> AsyncIterator[Gateway]:
    async with make_gateway(standard_config(upstream)) as gateway:
        yield gateway


def text_of(message: Any) -> str:
    return "".join(block.text for block in message.content if block.type == "text")


def tool_uses(message: Any) -> list[Any]:
    return [block for block in message.content if block.type == "tool_use"]


def sdk(gateway: Gateway, key: str = TEAM_A_KEY) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=gateway.url, api_key=key, max_retries=0)


async def test_a_message_to_an_openai_upstream(gateway: Gateway, upstream: MockServer) -> None:
    async with sdk(gateway) as client:
        message = await client.messages.create(
            model="fast",
            max_tokens=64,
            system="Be brief.",
            messages=[{"role": "user", "content": "hello from anthropic"}],
            stop_sequences=["END"],
        )
    assert [block.type for block in message.content] == ["text"]
    assert text_of(message) == "hello from anthropic"
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == 3
    sent = upstream.requests[-1].json
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    assert sent["max_tokens"] == 64
    assert sent["stop"] == ["END"]
    assert sent["model"] == "upstream-model"


async def test_an_anthropic_sdk_stream_yields_the_exact_text_and_usage(
    gateway: Gateway, upstream: MockServer
) -> None:
    text = "one two three four five six"
    prompt: Any = [{"role": "user", "content": "count to six please"}]
    upstream.enqueue(Reply.text(text), Reply.text(text, chunk_size=1))
    async with openai.AsyncOpenAI(
        base_url=gateway.url + "/v1", api_key=TEAM_A_KEY, max_retries=0
    ) as reference:
        plain = await reference.chat.completions.create(model="fast", messages=prompt)
    async with (
        sdk(gateway) as client,
        client.messages.stream(
            model="fast",
            max_tokens=64,
            messages=prompt,
        ) as stream,
    ):
        deltas = [delta async for delta in stream.text_stream]
        final = await stream.get_final_message()
    assert "".join(deltas) == text
    assert len(deltas) >= 6
    assert text_of(final) == text
    assert plain.usage is not None
    assert final.usage.input_tokens == plain.usage.prompt_tokens
    assert final.usage.output_tokens == plain.usage.completion_tokens == 6
    assert final.stop_reason == "end_turn"


async def test_tool_use_round_trips(gateway: Gateway, upstream: MockServer) -> None:
    tools: Any = [
        {
            "name": "get_weather",
            "description": "The weather in a city.",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ]
    call = {"name": "get_weather", "arguments": {"city": "Oslo"}, "id": "call_9"}
    upstream.enqueue(Reply.tool_calls([call]), Reply.tool_calls([call]), Reply.text("Cold."))
    question: Any = {"role": "user", "content": "Weather in Oslo?"}
    async with sdk(gateway) as client:
        first = await client.messages.create(
            model="fast",
            max_tokens=64,
            tools=tools,
            messages=[question],
            tool_choice={"type": "tool", "name": "get_weather"},
        )
        async with client.messages.stream(
            model="fast",
            max_tokens=64,
            tools=tools,
            messages=[question],
        ) as stream:
            streamed = await stream.get_final_message()
        (use,) = tool_uses(first)
        answer = await client.messages.create(
            model="fast",
            max_tokens=64,
            tools=tools,
            messages=[
                question,
                {"role": "assistant", "content": first.content},
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "-3 C"}],
                },
            ],
        )
    assert (use.id, use.name, use.input) == ("call_9", "get_weather", {"city": "Oslo"})
    assert first.stop_reason == "tool_use"
    (streamed_use,) = tool_uses(streamed)
    assert streamed_use.input == {"city": "Oslo"}
    assert streamed.stop_reason == "tool_use"
    assert text_of(answer) == "Cold."
    first_sent, _, last_sent = (r.json for r in upstream.requests)
    assert first_sent["tools"][0]["function"]["parameters"] == tools[0]["input_schema"]
    assert first_sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert last_sent["messages"][1]["tool_calls"][0]["id"] == "call_9"
    assert last_sent["messages"][2] == {"role": "tool", "tool_call_id": "call_9", "content": "-3 C"}


async def test_errors_come_in_anthropics_shape(gateway: Gateway, upstream: MockServer) -> None:
    upstream.enqueue(Reply.error(429, retry_after=3))
    hello: Any = [{"role": "user", "content": "hi"}]
    async with sdk(gateway, "wrong") as client:
        with pytest.raises(anthropic.AuthenticationError):
            await client.messages.create(model="fast", max_tokens=8, messages=hello)
    async with sdk(gateway, TEAM_B_KEY) as client:
        with pytest.raises(anthropic.NotFoundError) as missing:
            await client.messages.create(model="fast", max_tokens=8, messages=hello)
    async with sdk(gateway) as client:
        with pytest.raises(anthropic.RateLimitError) as limited:
            await client.messages.create(model="fast", max_tokens=8, messages=hello)
    headers = {"x-api-key": TEAM_A_KEY, "anthropic-version": "2023-06-01"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            gateway.url + "/v1/messages", json={"model": "fast", "messages": hello}, headers=headers
        ) as response,
    ):
        bad = await response.json()
    assert missing.value.status_code == 404
    assert isinstance(missing.value.body, dict)
    assert missing.value.body["error"]["type"] == "not_found_error"
    assert "fast" in missing.value.body["error"]["message"]
    assert limited.value.response.headers["retry-after"] == "3"
    assert response.status == 400
    assert bad["type"] == "error"
    assert bad["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in bad["error"]["message"]


async def test_an_openai_sdk_client_reaches_an_anthropic_deployment(
    upstream: MockServer, make_gateway: MakeGateway
) -> None:
    config = f"""
[server]
listen = "127.0.0.1:0"
[models.claude]
[[models.claude.deployments]]
provider = "anthropic"
base_url = "{upstream.url_for("anthropic")}"
api_key_env = "UPSTREAM_KEY"
model = "claude-upstream"
"""
    upstream.enqueue(Reply.text("bonjour le monde", chunk_size=1))
    async with (
        make_gateway(config) as gateway,
        openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key="open", max_retries=0) as client,
    ):
        stream = await client.chat.completions.create(
            model="claude",
            messages=[{"role": "user", "content": "say it"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [c async for c in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "bonjour le monde"
    )
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 3
    assert upstream.requests[-1].path == "/v1/messages"
    assert upstream.requests[-1].json["model"] == "claude-upstream"
