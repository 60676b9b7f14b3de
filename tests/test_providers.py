"""Choosing a backend by name, and one test body run against all four wire formats."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import llmfast
from llmfast import Client
from llmfast.backends.anthropic import AnthropicBackend
from llmfast.backends.gemini import GeminiBackend
from llmfast.backends.ollama import OllamaBackend
from llmfast.backends.openai_responses import OpenAIResponsesBackend
from llmfast.layers import Retry
from llmfast.providers import PROVIDERS, backend_for, parse_provider
from llmfast.testing import MockServer, Reply
from tests.streams import read_stream

KEY = "sk-provider-secret-123"
CALLS = [
    {"name": "get_weather", "arguments": {"city": "Paris"}},
    {"name": "get_time", "arguments": {"zone": "CET", "format": "24h"}},
]
_ENV = (
    "LLMFAST_PROVIDER",
    "LLMFAST_BASE_URL",
    "OPENAI_BASE_URL",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "OLLAMA_HOST",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)


# -- backend_for ---------------------------------------------------------------------------


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """A key for every provider (without one, backend_for refuses: test_credentials.py)."""
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY"):
        monkeypatch.setenv(name, "k")


@pytest.mark.parametrize(
    ("spec", "kind", "model"),
    [
        ("openai", llmfast.OpenAIBackend, None),
        ("OpenAI:gpt-4o-mini", llmfast.OpenAIBackend, "gpt-4o-mini"),
        ("openai-responses:gpt-5", OpenAIResponsesBackend, "gpt-5"),
        ("anthropic:claude-3-5-haiku-latest", AnthropicBackend, "claude-3-5-haiku-latest"),
        ("ollama:llama3.2:1b", OllamaBackend, "llama3.2:1b"),
        ("gemini", GeminiBackend, None),
        ("google:gemini-2.0-flash", GeminiBackend, "gemini-2.0-flash"),
    ],
)
def test_provider_strings(spec: str, kind: type[Any], model: str | None, keys: None) -> None:
    backend = backend_for(spec)
    assert type(backend) is kind
    assert backend.model == model


def test_default_base_urls(keys: None) -> None:
    urls = {name: backend_for(name).base_url for name in PROVIDERS}  # type: ignore[attr-defined]
    assert urls == {
        "openai": "https://api.openai.com/v1",
        "openai-responses": "https://api.openai.com/v1",
        "anthropic": "https://api.anthropic.com/v1",
        "ollama": "http://localhost:11434",
        "gemini": "https://generativelanguage.googleapis.com/v1beta",
    }


def test_keys_and_urls_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "a-key")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "https://proxy.test/anthropic/v1")
    monkeypatch.setenv("GOOGLE_API_KEY", "g-key")
    monkeypatch.setenv("OPENAI_API_KEY", "o-key")
    monkeypatch.setenv("OLLAMA_HOST", "ollama.lan:11434")
    anthropic = backend_for("anthropic")
    assert anthropic.auth_headers()["x-api-key"] == "a-key"  # type: ignore[attr-defined]
    assert anthropic.base_url == "https://proxy.test/anthropic/v1"  # type: ignore[attr-defined]
    gemini = backend_for("gemini")
    assert gemini.auth_headers() == {"x-goog-api-key": "g-key"}  # type: ignore[attr-defined]
    monkeypatch.setenv("GEMINI_API_KEY", "gem-key")
    gemini = backend_for("gemini")
    assert gemini.auth_headers() == {"x-goog-api-key": "gem-key"}  # type: ignore[attr-defined]
    openai = backend_for("openai")
    assert openai.auth_headers() == {"Authorization": "Bearer o-key"}  # type: ignore[attr-defined]
    assert backend_for("ollama").base_url == "http://ollama.lan:11434"  # type: ignore[attr-defined]
    explicit = backend_for("anthropic", api_key="given", base_url="http://127.0.0.1:1/v1")
    assert explicit.auth_headers()["x-api-key"] == "given"  # type: ignore[attr-defined]
    monkeypatch.setenv("LLMFAST_PROVIDER", "ollama:qwen3")
    assert type(backend_for()) is OllamaBackend
    assert backend_for().model == "qwen3"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: backend_for("mistral"), "unknown provider 'mistral'"),
        (lambda: backend_for("anthropic:"), "no model after the colon"),
        (lambda: backend_for("ollama:a", model="b"), "two models"),
        (lambda: backend_for("gemini", base_url="ftp://x"), "must start with http"),
        (lambda: backend_for("ollama", api_key="k"), "ollama takes no api_key"),
    ],
)
def test_bad_provider_settings(call: Any, message: str) -> None:
    with pytest.raises(llmfast.ConfigurationError, match=message):
        call()


def test_parse_provider() -> None:
    assert parse_provider("ollama:llama3.2:1b") == ("ollama", "llama3.2:1b")
    assert parse_provider(" Anthropic ") == ("anthropic", None)
    assert backend_for("ollama:m", model="m").model == "m"


# -- one test body, four wire formats --------------------------------------------------------


@pytest.fixture(params=PROVIDERS)
def provider(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


def _backend(provider: str, server: MockServer) -> llmfast.Backend:
    key = None if provider == "ollama" else KEY
    return backend_for(provider, base_url=server.url_for(provider), api_key=key, model="m")


@pytest.fixture
async def client(provider: str, server: MockServer) -> AsyncIterator[Client]:
    # The backend alone (no default retries): each test sees what one response maps to.
    async with Client(_backend(provider, server), layers=[]) as client:
        yield client


async def test_chat_and_stream(server: MockServer, client: Client) -> None:
    server.enqueue(Reply.text("Hello brave new world"), Reply.text("Hello brave new world"))
    whole = await client.chat("Say hello to three words")
    stream = await read_stream(client, "Say hello to three words")
    deltas = [chunk.text for chunk in stream.chunks if chunk.text]
    assert deltas == ["Hello ", "brave ", "new ", "world"]
    for result in (whole, stream.completion):
        assert result.text == "Hello brave new world"
        assert result.finish_reason == "stop"
        assert result.message.role == "assistant"
        assert result.tool_calls == []
        assert result.usage is not None
        assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (5, 4)
        assert result.usage.total_tokens == 9


async def test_parallel_tool_calls_and_results(server: MockServer, client: Client) -> None:
    tools = [{"type": "function", "function": {"name": c["name"]}} for c in CALLS]
    server.enqueue(Reply.tool_calls(CALLS), Reply.tool_calls(CALLS))
    whole = await client.chat("weather and time?", tools=tools)
    stream = await read_stream(client, "weather and time?", tools=tools)
    for result in (whole, stream.completion):
        assert result.finish_reason == "tool_calls"
        assert [c.function.name for c in result.tool_calls] == ["get_weather", "get_time"]
        assert [json.loads(c.function.arguments) for c in result.tool_calls] == [
            c["arguments"] for c in CALLS
        ]
        ids = [c.id for c in result.tool_calls]
        assert all(ids)
        assert len(set(ids)) == 2
    messages: list[llmfast.MessageLike] = [
        llmfast.UserMessage(content="weather and time?"),
        llmfast.AssistantMessage(tool_calls=whole.tool_calls),
        *(
            llmfast.ToolMessage(content=f"result {k}", tool_call_id=call.id)
            for k, call in enumerate(whole.tool_calls)
        ),
    ]
    server.enqueue(Reply.text("Sunny, 9am."))
    assert (await client.chat(messages, tools=tools)).text == "Sunny, 9am."


async def test_error_event_before_any_content(server: MockServer, client: Client) -> None:
    server.enqueue(Reply.stream_error({"message": "boom"}, after_chunks=0))
    with pytest.raises(llmfast.StreamEventError, match="boom"):
        await read_stream(client)
    assert client._pool.connections_in_use() == 0


async def test_error_event_after_content(server: MockServer, client: Client) -> None:
    server.enqueue(Reply.stream_error({"message": "boom"}, after_chunks=6))
    with pytest.raises(llmfast.StreamInterruptedError) as caught:
        await read_stream(client, "one two three four five six seven eight")
    assert isinstance(caught.value.__cause__, llmfast.StreamEventError)
    partial = caught.value.partial_text
    assert partial
    assert "one two three four five six seven eight".startswith(partial)


async def test_status_errors_and_keys(server: MockServer, client: Client) -> None:
    server.enqueue(Reply.error(429, message="slow down", retry_after=2))
    with pytest.raises(llmfast.RateLimitError) as caught:
        await client.chat("hi")
    assert caught.value.retry_after == 2.0
    assert caught.value.message == "slow down"
    assert KEY not in str(caught.value)
    assert KEY not in repr(client)
    assert KEY not in repr(client.backend)


async def test_faults_map_to_the_same_errors(server: MockServer, client: Client) -> None:
    server.enqueue(Reply.reset(), Reply.malformed(), Reply.truncated(), Reply.stall())
    with pytest.raises(llmfast.ReadError):
        await client.chat("hi")
    with pytest.raises(llmfast.DecodeError):
        await client.chat("hi")
    with pytest.raises(llmfast.DecodeError):
        await client.chat("hi")
    with pytest.raises(llmfast.Timeout):
        await client.chat("hi", timeout=0.1)
    assert (await client.chat("still fine")).text == "still fine"
    assert client._pool.connections_in_use() == 0


async def test_warmup(provider: str, server: MockServer, client: Client) -> None:
    assert await client.warmup(2) == 2
    assert all(r.method == "GET" for r in server.requests)


async def test_retry_layer_works_unchanged(provider: str, server: MockServer) -> None:
    retry = Retry(max_attempts=3, sleep=_no_sleep, jitter=False)
    async with Client(_backend(provider, server), layers=[retry]) as client:
        server.enqueue(Reply.error(503), Reply.text("after a 503"))
        assert (await client.chat("hi")).text == "after a 503"
        server.enqueue(Reply.error(529, type="overloaded_error"), Reply.text("streamed"))
        stream = await read_stream(client)
        assert stream.completion.text == "streamed"
        assert server.request_count == 4
        server.enqueue(Reply.error(400))
        with pytest.raises(llmfast.BadRequestError):
            await client.chat("hi")
        assert server.request_count == 5


async def _no_sleep(seconds: float) -> None:
    return None


# -- the documented custom backend ---------------------------------------------------------


def _load_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The runnable example of docs/backends/custom.md, imported as a module."""
    doc = (Path(__file__).resolve().parents[1] / "docs" / "backends" / "custom.md").read_text()
    match = re.search(r"## A runnable example.*?```python\n(.*?)```", doc, re.S)
    assert match is not None
    path = tmp_path / "custom_backend_example.py"
    path.write_text(match.group(1))
    spec = importlib.util.spec_from_file_location("custom_backend_example", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "custom_backend_example", module)
    spec.loader.exec_module(module)
    return module


async def test_the_custom_backend_example_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    module = _load_example(tmp_path, monkeypatch)
    assert isinstance(module.TinyOllama("http://127.0.0.1:1"), llmfast.Backend)
    await module.main()
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Hello from a custom backend Usage(prompt_tokens=2")
    assert out[1:] == ["stream |these |five |words |please|", "stream these five words please"]
