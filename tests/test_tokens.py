"""Token counting: ``client.count_tokens`` over real HTTP to MockServer's count
endpoints, tiktoken (with an encoding the test makes), estimates, and the rate
limiter's estimator on the same machinery."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import llmfast
from llmfast import Client, SyncClient, TokenCount
from llmfast.backends._count import anthropic_count, count_body, gemini_count
from llmfast.backends.anthropic import AnthropicBackend
from llmfast.backends.gemini import GeminiBackend
from llmfast.backends.openai import OpenAIBackend
from llmfast.errors import ConfigurationError, DecodeError, NotFoundError
from llmfast.layers import Cache
from llmfast.limits import CharEstimator, TiktokenEstimator
from llmfast.testing import MockServer
from llmfast.tokens import (
    REPLY_PRIMING,
    encoder,
    estimate_text,
    forget_encoders,
    prompt_tokens,
    tiktoken_encoding,
)
from llmfast.types import ChatRequest, FunctionDefinition, SystemMessage, Tool, UserMessage

PROMPT: list[Any] = [SystemMessage("You are a scientist"), UserMessage("Hello, world")]
TOOLS = [Tool(FunctionDefinition("lookup", "Look a word up", {"type": "object"}))]


def _anthropic(server: MockServer, **options: Any) -> Client:
    backend = AnthropicBackend(server.url_for("anthropic"), api_key="sk-ant-secret", **options)
    return Client(backend, model="claude-sonnet-4-5", layers=[])


# -- exact: the providers' endpoints -------------------------------------------------------


async def test_anthropic_counts_with_its_endpoint(server: MockServer) -> None:
    async with _anthropic(server) as client:
        count = await client.count_tokens(PROMPT, tools=TOOLS, max_tokens=50, temperature=0.5)
        reply = await client.chat(PROMPT)
    assert count == TokenCount(tokens=6, method="exact", model="claude-sonnet-4-5")
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == count.tokens
    sent = server.requests[0]
    assert sent.path == "/v1/messages/count_tokens"
    assert sent.headers["x-api-key"] == "sk-ant-secret"
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.json == {  # what count_tokens accepts: no max_tokens, no sampling
        "model": "claude-sonnet-4-5",
        "messages": [{"role": "user", "content": "Hello, world"}],
        "system": "You are a scientist",
        "tools": [
            {"name": "lookup", "description": "Look a word up", "input_schema": {"type": "object"}}
        ],
    }


async def test_gemini_counts_with_count_tokens(server: MockServer) -> None:
    backend = GeminiBackend(server.url_for("gemini"), api_key="g-secret")
    async with Client(backend, model="gemini-2.5-flash", layers=[]) as client:
        count = await client.count_tokens(PROMPT, temperature=0)
        reply = await client.chat(PROMPT)
    assert count == TokenCount(6, "exact", "gemini-2.5-flash")
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == count.tokens
    sent = server.requests[0]
    assert sent.path == "/v1beta/models/gemini-2.5-flash:countTokens"
    assert sent.headers["x-goog-api-key"] == "g-secret"
    assert sent.json == {
        "generateContentRequest": {
            "model": "models/gemini-2.5-flash",
            "contents": [{"role": "user", "parts": [{"text": "Hello, world"}]}],
            "systemInstruction": {"parts": [{"text": "You are a scientist"}]},
            "generationConfig": {"temperature": 0},
        }
    }


async def test_a_count_is_not_a_chat_for_the_layers(server: MockServer) -> None:
    cache = Cache(cacheable=lambda request: True)
    backend = AnthropicBackend(server.url_for("anthropic"), api_key="k")
    async with Client(backend, model="claude-x", layers=[cache]) as client:
        for _ in range(2):
            assert (await client.count_tokens("hi")).method == "exact"
    assert server.request_count == 2  # straight to the backend: nothing cached


async def test_count_errors_are_mapped(server: MockServer) -> None:
    backend = AnthropicBackend(server.url + "/nowhere", api_key="k")
    async with Client(backend, model="claude-x", layers=[]) as client:
        with pytest.raises(NotFoundError):
            await client.count_tokens("hi")
    backend = AnthropicBackend(server.url_for("anthropic"), api_key="k")
    async with Client(backend, model="claude-x", layers=[]) as client:
        with pytest.raises(ConfigurationError, match="no messages"):
            await client.count_tokens([])
    await client.aclose()
    with pytest.raises(llmfast.ClientClosedError):
        await client.count_tokens("hi")


def test_recorded_count_payloads() -> None:
    # Anthropic's API reference, "Count tokens in a Message" (platform.claude.com/docs/
    # en/api/messages/count_tokens): this request, answered {"input_tokens": 2095}.
    recorded_request = {
        "model": "claude-opus-4-6",
        "messages": [{"role": "user", "content": "Hello, world"}],
    }
    body = ChatRequest(model="claude-opus-4-6", messages=[UserMessage("Hello, world")])
    assert count_body(AnthropicBackend(api_key="k").wire_body(body)) == recorded_request
    assert anthropic_count(b'{\n  "input_tokens": 2095\n}') == 2095
    # Gemini's API reference, models.countTokens (ai.google.dev/api/tokens): "The quick
    # brown fox jumps over the lazy dog." counts 10; the CountTokensResponse with its
    # promptTokensDetails.
    recorded_answer = (
        b'{"totalTokens": 10, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 10}]}'
    )
    assert gemini_count(recorded_answer) == 10
    assert gemini_count(b"{}") == 0  # proto3 JSON leaves a zero out
    for bad in (b'{"input_tokens": -1}', b'{"input_tokens": "12"}', b"<html>", b"{}"):
        with pytest.raises(DecodeError):
            anthropic_count(bad)


# -- local counts --------------------------------------------------------------------------


async def test_estimate_when_there_is_no_endpoint(server: MockServer) -> None:
    backend = llmfast.OllamaBackend(server.root_url)
    async with Client(backend, model="llama3.2", layers=[]) as client:
        count = await client.count_tokens(PROMPT)
        with pytest.raises(ConfigurationError, match="no token-counting endpoint"):
            await client.count_tokens(PROMPT, method="exact")
    expected = 2 * 4 + estimate_text("You are a scientist") + estimate_text("Hello, world")
    assert count == TokenCount(expected + REPLY_PRIMING, "estimate", "llama3.2")
    assert server.request_count == 0


async def test_estimate_on_request_sends_nothing(server: MockServer) -> None:
    async with _anthropic(server) as client:
        count = await client.count_tokens(PROMPT, method="estimate")
        with pytest.raises(ConfigurationError, match="unknown counting method"):
            await client.count_tokens(PROMPT, method="words")  # type: ignore[arg-type]
    assert count.method == "estimate"
    assert server.request_count == 0


@pytest.fixture
def tiny_o200k(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A small BPE encoding the test makes, registered in tiktoken under the name of
    OpenAI's (whose download this machine may not reach): every byte is a token, and
    "hello" is one (he + ll → hell, + o)."""
    tiktoken = pytest.importorskip("tiktoken")
    ranks = {bytes([i]): i for i in range(256)}
    ranks.update({b"he": 256, b"ll": 257, b"hell": 258, b"hello": 259})
    encoding = tiktoken.Encoding(
        name="o200k_base", pat_str=r"\S+|\s+", mergeable_ranks=ranks, special_tokens={}
    )
    monkeypatch.setitem(tiktoken.registry.ENCODINGS, "o200k_base", encoding)
    forget_encoders()
    yield
    forget_encoders()


async def test_tiktoken_for_openai_models(server: MockServer, tiny_o200k: None) -> None:
    backend = OpenAIBackend(server.url, api_key="k")
    async with Client(backend, layers=[]) as client:
        count = await client.count_tokens(
            [SystemMessage("hello"), UserMessage("hello world")], model="gpt-4o-mini"
        )
        other = await client.count_tokens("hello", model="llama-3-8b")  # unknown to tiktoken
        forced = await client.count_tokens("hello", model="llama-3-8b", method="tiktoken")
    # 4 per message, "hello" 1, "hello world" 1 + 1 + 5, and the reply priming
    assert count == TokenCount(4 + 1 + 4 + 7 + REPLY_PRIMING, "tiktoken", "gpt-4o-mini")
    assert other.method == "estimate"
    assert forced == TokenCount(4 + 1 + REPLY_PRIMING, "tiktoken", "llama-3-8b")
    assert server.request_count == 0


def test_the_rate_limiter_estimator_shares_the_loaded_encoding(tiny_o200k: None) -> None:
    assert tiktoken_encoding("gpt-4.1") == "o200k_base"
    assert encoder("o200k_base") is not None
    estimator = TiktokenEstimator(completion_tokens=10)
    assert estimator.count("hello world") == 7  # at once: no second load, no thread
    body = ChatRequest(model="gpt-4o", messages=[UserMessage("hello")], max_tokens=3)
    assert estimator(body) == 4 + 1 + 3


def test_the_estimator_walks_the_prompt_like_count_tokens() -> None:
    body = ChatRequest(
        model="m",
        messages=[
            {
                "role": "user",
                "content": [{"type": "text", "text": "abcdefgh"}, {"type": "image_url"}],
            },
            UserMessage("abcd", name="ann"),
        ],
        tools=TOOLS,
        n=2,
    )
    estimate = CharEstimator(completion_tokens=5)
    assert estimate(body) == prompt_tokens(body, estimate_text) + 2 * 5
    tools_json = (
        '[{"function":{"name":"lookup","description":"Look a word up",'
        '"parameters":{"type":"object"}}}]'
    )
    assert prompt_tokens(body, estimate_text) == (
        4 + 2 + 85 + 4 + 1 + (1 + 1) + estimate_text(tools_json)
    )


def test_sync_client_counts(llm_server: MockServer) -> None:
    with SyncClient(
        provider="anthropic", base_url=llm_server.url_for("anthropic"), api_key="k"
    ) as client:
        count = client.count_tokens("one two three", model="claude-x")
    assert count == TokenCount(3, "exact", "claude-x")
