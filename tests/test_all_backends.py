"""One set of tests, parametrized over all four backends: the same code runs on each.

Chat, streaming and tool calls accumulate to the same result whatever the wire format,
and the retry, rate-limit, cache and coalescing layers work unchanged on every backend.
"""

from __future__ import annotations

import asyncio
import json
import time

import msgspec
import pytest

import llmfast
from llmfast import Client
from llmfast.layers import Cache, Coalesce, MemoryStore, RateLimit, Retry
from llmfast.testing import MockServer, Reply
from tests.fakeclock import FakeClock

PROVIDERS = ["openai", "anthropic", "ollama", "gemini"]
CALLS = [
    {"name": "get_weather", "arguments": {"city": "Oslo", "units": "c"}},
    {"name": "get_time", "arguments": {"zone": "CET"}},
]


def client_for(
    server: MockServer, provider: str, layers: list[llmfast.Layer] | None = None
) -> Client:
    key = None if provider == "ollama" else "test-key"  # Ollama has no API keys
    backend = llmfast.backend_for(
        provider, base_url=server.url_for(provider), api_key=key, model="m"
    )
    return Client(backend, layers=layers or [])


async def streamed(client: Client, prompt: str, **params: object) -> llmfast.ChatCompletion:
    stream: llmfast.ChatStream = client.stream(prompt, **params)  # type: ignore[call-overload]
    async with stream:
        return await stream.collect()


def calls_of(completion: llmfast.ChatCompletion) -> list[tuple[str, object]]:
    return [(c.function.name, json.loads(c.function.arguments)) for c in completion.tool_calls]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_chat_stream_and_tools(server: MockServer, provider: str) -> None:
    server.enqueue(
        Reply.text("Hello from every backend."),
        Reply.text("Hello from every backend."),
        Reply.tool_calls(CALLS),
        Reply.tool_calls(CALLS),
    )
    async with client_for(server, provider) as client:
        plain = await client.chat("hi")
        stream = await streamed(client, "hi")
        tools_plain = await client.chat(
            "weather?",
            tools=[
                {
                    "type": "function",
                    "function": {"name": "get_weather", "parameters": {"type": "object"}},
                }
            ],
        )
        tools_stream = await streamed(
            client,
            "weather?",
            tools=[
                {
                    "type": "function",
                    "function": {"name": "get_weather", "parameters": {"type": "object"}},
                }
            ],
        )
    for completion in (plain, stream):
        assert completion.text == "Hello from every backend."
        assert completion.finish_reason == "stop"
        assert completion.usage is not None
        assert completion.usage.completion_tokens > 0
    expected = [(c["name"], c["arguments"]) for c in CALLS]
    for completion in (tools_plain, tools_stream):
        assert calls_of(completion) == expected
        assert completion.finish_reason == "tool_calls"
        assert len({c.id for c in completion.tool_calls}) == 2


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_an_in_stream_error_keeps_what_arrived(server: MockServer, provider: str) -> None:
    server.enqueue(Reply.stream_error({"message": "boom", "type": "api_error"}, after_chunks=4))
    async with client_for(server, provider) as client:
        with pytest.raises(llmfast.LLMFastError) as caught:
            await streamed(client, "one two three four five six")
        assert client._pool.connections_in_use() == 0
    error = caught.value
    if isinstance(error, llmfast.StreamInterruptedError):
        assert isinstance(error.__cause__, llmfast.StreamEventError)
        assert "one two three four five six".startswith(error.partial_text)
    else:
        assert isinstance(error, llmfast.StreamEventError)


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_retry_works_on_every_backend(
    server: MockServer, provider: str, stream: bool
) -> None:
    clock = FakeClock()
    server.enqueue(Reply.error(503), Reply.reset())
    async with client_for(server, provider, [Retry(sleep=clock.sleep, clock=clock)]) as c:
        result = await streamed(c, "a b c") if stream else await c.chat("a b c")
    assert result.text == "a b c"
    assert len(clock.sleeps) == 2
    assert server.request_count == 3


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_cache_works_on_every_backend(
    server: MockServer, provider: str, stream: bool
) -> None:
    async with client_for(server, provider, [Cache(store=MemoryStore())]) as client:
        if stream:
            async with client.stream("cache me", temperature=0) as first:
                await first.collect()
            async with client.stream("cache me", temperature=0) as second:
                await second.collect()
            assert [msgspec.to_builtins(c) for c in second.chunks] == [
                msgspec.to_builtins(c) for c in first.chunks
            ]
        else:
            one = await client.chat("cache me", temperature=0)
            two = await client.chat("cache me", temperature=0)
            assert one == two
    assert server.request_count == 1


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_coalescing_works_on_every_backend(server: MockServer, provider: str) -> None:
    server.default = Reply.text("shared answer", delay=0.05)
    async with client_for(server, provider, [Coalesce()]) as client:
        results = await asyncio.gather(
            *(client.chat("same question", temperature=0) for _ in range(10))
        )
    assert {r.text for r in results} == {"shared answer"}
    assert server.request_count == 1


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_rate_limit_works_on_every_backend(server: MockServer, provider: str) -> None:
    clock = FakeClock()
    limit = RateLimit(rpm=2, period=10, clock=clock, sleep=clock.sleep)
    async with client_for(server, provider, [limit]) as client:
        for i in range(3):
            await client.chat(f"call {i}")
    assert server.request_count == 3
    assert sum(clock.sleeps) == pytest.approx(10, abs=0.01)  # the third waited a window


def _reset_headers(provider: str) -> dict[str, str]:
    if provider == "openai":
        return {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "2s"}
    reset = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 4))
    return {
        "anthropic-ratelimit-requests-remaining": "0",
        "anthropic-ratelimit-requests-reset": reset,
    }


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_the_rate_limiter_reads_each_providers_own_headers(
    server: MockServer, provider: str
) -> None:
    clock = FakeClock()
    server.enqueue(Reply.text("first", headers=_reset_headers(provider)))
    limit = RateLimit(rpm=1000, clock=clock, sleep=clock.sleep)
    async with client_for(server, provider, [limit]) as client:
        await client.chat("first")
        await client.chat("second")  # held until the window the headers named resets
    assert 1.0 <= sum(clock.sleeps) <= 4.5
