"""Real provider stream bodies (``shared/conformance/streams``) accumulate to the
provider's documented result.

Each OpenAI chat, Anthropic, Ollama and Gemini transcript is checked twice: I/O-free
(the backend's stream parser fed the body in reads of several sizes, then
``ChatAccumulator``) and end to end, replayed byte for byte by the local test server on
the provider's route in small writes and read by ``client.stream``. The Ollama
``/api/generate`` transcripts go through the same NDJSON parser (its lines carry
``response`` instead of ``message``) and are replayed on ``/api/chat``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import msgspec
import pytest

import llmfast
from llmfast import ChatAccumulator, ChatCompletion, ChatCompletionChunk, Client, SSEDecoder
from llmfast.backends import _anthropic_wire as anthropic_wire
from llmfast.backends import _gemini_wire as gemini_wire
from llmfast.backends import _ollama_wire as ollama_wire
from llmfast.backends._anthropic_wire import AnthropicStreamParser
from llmfast.backends._gemini_wire import GeminiStreamParser
from llmfast.backends._http import StreamParser
from llmfast.backends._ollama_wire import OllamaStreamParser
from llmfast.backends._openai_raw import RawChatStreamParser
from llmfast.backends.anthropic import AnthropicBackend
from llmfast.backends.base import Backend
from llmfast.backends.gemini import GeminiBackend
from llmfast.backends.ollama import OllamaBackend
from llmfast.backends.openai import _ChatStreamParser
from llmfast.errors import LLMFastError
from llmfast.testing import MockServer, Reply
from tests.conformance import conformance_dir, stream_cases

CASES = stream_cases()
OPENAI_CHAT = [name for name in CASES if name.startswith("openai_chat_")]
PROVIDER_CASES = [n for n in CASES if n.startswith(("anthropic_", "ollama_", "gemini_"))]
# The Responses API transcripts run in tests/backends/test_responses_conformance.py.
RESPONSES_CASES = [n for n in CASES if n.startswith("openai_responses_")]
# Backends still to come; each of these transcripts is run as soon as its backend exists.
NOT_YET: dict[str, str] = {}

pytestmark = pytest.mark.skipif(conformance_dir() is None, reason="../shared/conformance absent")

_decode_chunk = msgspec.json.Decoder(ChatCompletionChunk).decode


def _load(name: str) -> tuple[bytes, dict[str, Any]]:
    folder = conformance_dir()
    assert folder is not None
    body = (folder / "streams" / f"{name}.txt").read_bytes()
    expected = json.loads((folder / "streams" / f"{name}.expected.json").read_text("utf-8"))
    return body, expected


def _accumulate_offline(body: bytes, read_size: int) -> ChatCompletion:
    decoder = SSEDecoder()
    accumulator = ChatAccumulator()
    done = False
    for start in range(0, len(body), read_size):
        for event in decoder.feed(body[start : start + read_size]):
            if event.data == "[DONE]":
                done = True
            elif not done:
                accumulator.add(_decode_chunk(event.data))
    decoder.close()
    assert done, "the transcript ends with [DONE]"
    return accumulator.result()


def _tool_calls(message_tool_calls: Any) -> list[dict[str, Any]]:
    out = []
    for call in message_tool_calls or []:
        raw = call.function.arguments
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        out.append(
            {"id": call.id, "name": call.function.name, "arguments": parsed, "arguments_raw": raw}
        )
    return out


def _check(result: ChatCompletion, expected: dict[str, Any]) -> None:
    # The SDK-derived expectation keeps the first chunk's id and model even when they
    # are "" (an Azure prompt-filter chunk); llmfast keeps the first non-empty ones.
    for field in ("id", "model"):
        if expected[field]:
            assert getattr(result, field) == expected[field]
        else:
            assert getattr(result, field), f"the real {field} was kept"
    assert result.text == expected["text"]
    assert result.message.refusal == expected["refusal"]
    assert _tool_calls(result.message.tool_calls) == expected["tool_calls"]
    assert result.finish_reason == expected["finish_reason"]
    usage = msgspec.to_builtins(result.usage) if result.usage else None
    assert usage == expected["usage"]
    assert len(result.choices) == len(expected["choices"])
    for choice, want in zip(result.choices, expected["choices"], strict=True):
        assert choice.index == want["index"]
        assert choice.message.content == want["text"]
        assert choice.message.refusal == want["refusal"]
        assert _tool_calls(choice.message.tool_calls) == want["tool_calls"]
        assert choice.finish_reason == want["finish_reason"]
        if want.get("logprobs") is not None:
            assert choice.logprobs is not None
            got = [{"token": t.token, "logprob": t.logprob} for t in choice.logprobs.content or []]
            assert got == [
                {"token": t["token"], "logprob": t["logprob"]} for t in want["logprobs"]["content"]
            ]


def test_transcripts_are_present() -> None:
    assert len(OPENAI_CHAT) >= 9, CASES


@pytest.mark.parametrize("name", OPENAI_CHAT)
@pytest.mark.parametrize("read_size", [1, 7, 64, 1 << 20])
def test_openai_chat_offline(name: str, read_size: int) -> None:
    body, expected = _load(name)
    _check(_accumulate_offline(body, read_size), expected)


@pytest.mark.parametrize("name", OPENAI_CHAT)
async def test_openai_chat_over_http(name: str) -> None:
    body, expected = _load(name)
    async with (
        MockServer(default=Reply.raw(body, write_size=97)) as server,
        Client(base_url=server.url, model="m") as client,
    ):
        async with client.stream("replay") as stream:
            async for _ in stream:
                pass
        _check(stream.completion, expected)


def _raw_reads(body: bytes, read_size: int) -> tuple[list[bytes], list[ChatCompletionChunk], int]:
    """``body`` through the gateway's fast path (``RawChatStreamParser``) in reads of
    ``read_size``: the payloads kept, the chunks they type to, how many were notable."""
    parser = RawChatStreamParser()
    payloads: list[bytes] = []
    chunks: list[ChatCompletionChunk] = []
    notable = 0
    for start in range(0, len(body), read_size):
        events = parser.feed(body[start : start + read_size])
        payloads += events.payloads
        chunks += list(events)
        notable += len(events.notable)
    parser.close()
    return payloads, chunks, notable


@pytest.mark.parametrize("name", OPENAI_CHAT)
@pytest.mark.parametrize("read_size", [7, 64, 1 << 20])
def test_openai_chat_read_raw(name: str, read_size: int) -> None:
    """The fast path keeps each event's payload as it came, and they type to the typed
    parser's chunks."""
    body, _ = _load(name)
    typed = _ChatStreamParser()
    expected = typed.feed(body) + typed.close()
    payloads, chunks, _ = _raw_reads(body, read_size)
    assert chunks == expected
    data = [e.data.encode() for e in SSEDecoder().feed(body)]
    assert payloads == data[: data.index(b"[DONE]")]


_NOTABLE = {  # the events that are not a text delta or a tool call's arguments fragment
    "openai_chat_text": 3,  # role, finish, usage
    "openai_chat_usage_last_chunk": 3,  # the same, each event padded ("obfuscation")
    # Azure's prompt filter results, role, finish, usage (its role's keys come in
    # another order, so its first text is decoded too, for the template; the padding
    # sits amid the fields)
    "openai_chat_azure_content_filter": 4,
    "openai_chat_tool_call": 3,  # the call's start (with the role), finish, usage
    "openai_chat_parallel_tool_calls": 5,  # the role, the two calls' starts, finish, usage
}


@pytest.mark.parametrize("name", [n for n in _NOTABLE if n in CASES])
def test_openai_text_and_tool_streams_are_forwarded_undecoded(name: str) -> None:
    """Every text delta, and every tool call's arguments fragment, is left as bytes
    (but the first of a run, where the role event gives no template): the template
    fits OpenAI's and Azure's events, padding and all."""
    body, _ = _load(name)
    payloads, _, notable = _raw_reads(body, 1 << 20)
    assert notable == _NOTABLE[name]
    assert len(payloads) > notable


@pytest.mark.parametrize(
    "name",
    [
        n
        for n in CASES
        if not n.startswith("openai_chat_") and n not in PROVIDER_CASES + RESPONSES_CASES
    ],
)
def test_other_providers(name: str) -> None:
    reason = next((why for prefix, why in NOT_YET.items() if name.startswith(prefix)), None)
    if reason is not None:
        pytest.skip(reason)
    pytest.fail(f"no test is wired up for transcript {name}")


def test_conformance_folder_is_outside_the_project() -> None:
    folder = conformance_dir()
    assert folder is not None
    assert Path(__file__).resolve().parents[1] not in folder.resolve().parents


# -- Anthropic, Ollama and Gemini ---------------------------------------------------------


def _anthropic_usage(usage: dict[str, Any] | None) -> dict[str, Any] | None:
    if usage is None:
        return None
    read = usage.get("cache_read_input_tokens")
    created = usage.get("cache_creation_input_tokens")
    prompt = usage["input_tokens"] + (read or 0) + (created or 0)
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": usage["output_tokens"],
        "total_tokens": prompt + usage["output_tokens"],
    }
    if read is not None or created is not None:
        details = {"cached_tokens": read or 0, "cache_creation_tokens": created or 0}
        if "cache_creation" in usage:
            details["cache_creation"] = usage["cache_creation"]
        out["prompt_tokens_details"] = details
    for key in ("server_tool_use", "service_tier"):  # kept as sent
        if usage.get(key) is not None:
            out.setdefault("prompt_tokens_details", {})[key] = usage[key]
    return out


def _ollama_usage(usage: dict[str, Any] | None) -> dict[str, Any] | None:
    if usage is None:
        return None
    prompt, output = usage["prompt_eval_count"], usage["eval_count"]
    return {"prompt_tokens": prompt, "completion_tokens": output, "total_tokens": prompt + output}


def _gemini_usage(usage: dict[str, Any] | None) -> dict[str, Any] | None:
    if usage is None:
        return None
    thoughts = usage.get("thoughtsTokenCount")
    out: dict[str, Any] = {
        "prompt_tokens": usage["promptTokenCount"],
        "completion_tokens": usage["candidatesTokenCount"] + (thoughts or 0),
        "total_tokens": usage["totalTokenCount"],
    }
    if thoughts is not None:
        out["completion_tokens_details"] = {"reasoning_tokens": thoughts}
    return out


class _Provider(NamedTuple):
    parser: Callable[[], StreamParser]
    backend: Callable[[MockServer], Backend]
    content_type: str
    finish_reasons: Mapping[str, str]
    usage: Callable[[dict[str, Any] | None], dict[str, Any] | None]


PROVIDERS = {
    "anthropic": _Provider(
        AnthropicStreamParser,
        lambda server: AnthropicBackend(server.url_for("anthropic"), api_key="k", model="m"),
        "text/event-stream",
        anthropic_wire.FINISH_REASONS,
        _anthropic_usage,
    ),
    "ollama": _Provider(
        OllamaStreamParser,
        lambda server: OllamaBackend(server.url_for("ollama"), model="m"),
        "application/x-ndjson",
        ollama_wire.FINISH_REASONS,
        _ollama_usage,
    ),
    "gemini": _Provider(
        GeminiStreamParser,
        lambda server: GeminiBackend(server.url_for("gemini"), api_key="k", model="m"),
        "text/event-stream",
        gemini_wire.FINISH_REASONS,
        _gemini_usage,
    ),
}


def _provider(name: str) -> _Provider:
    return PROVIDERS[name.split("_", 1)[0]]


def _parse_offline(
    name: str, body: bytes, read_size: int
) -> tuple[list[ChatCompletionChunk], LLMFastError | None]:
    """Feed the body in reads of ``read_size`` bytes, as the backend does."""
    parser = _provider(name).parser()
    chunks: list[ChatCompletionChunk] = []
    try:
        for start in range(0, len(body), read_size):
            chunks += parser.feed(body[start : start + read_size])
            if parser.failure is not None:
                raise parser.failure
            if parser.done:
                break
        chunks += parser.close()
        if parser.failure is not None:
            raise parser.failure
    except LLMFastError as exc:
        return chunks, exc
    return chunks, None


def _check_provider(
    name: str,
    chunks: list[ChatCompletionChunk],
    error: BaseException | None,
    expected: dict[str, Any],
) -> None:
    provider = _provider(name)
    accumulator = ChatAccumulator()
    for chunk in chunks:
        accumulator.add(chunk)
    result = accumulator.result()
    if expected["error"] is None:
        assert error is None, error
    else:
        assert isinstance(error, llmfast.StreamEventError), error
        want = expected["error"]
        if name.startswith("ollama_"):
            assert error.error == {"message": want["error"]}
            assert error.status is None
        else:
            assert error.error == want
            assert error.status == 529  # overloaded: retryable before any content
    assert (result.id or None) == expected["id"]
    assert (result.model or None) == expected["model"]
    if not result.choices:
        assert expected["text"] is None
        assert expected["finish_reason"] is None
        assert expected["usage"] is None
        return
    assert result.text == expected["text"]
    assert result.message.reasoning_content == expected["reasoning"]
    assert result.message.refusal == expected["refusal"]
    calls = [
        {
            "id": call.id if want["id"] is not None else f"call_{k}",
            "name": call.function.name,
            "arguments": _json_or_none(call.function.arguments),
        }
        for k, (call, want) in enumerate(
            zip(result.tool_calls, expected["tool_calls"], strict=True)
        )
    ]
    assert calls == [
        {"id": want["id"] or f"call_{k}", "name": want["name"], "arguments": want["arguments"]}
        for k, want in enumerate(expected["tool_calls"])
    ]
    for call, want in zip(result.tool_calls, expected["tool_calls"], strict=True):
        if want["arguments_raw"] is not None:  # the provider streamed a string
            assert call.function.arguments == want["arguments_raw"]
    original = expected["finish_reason"]
    if original is None:
        assert result.finish_reason is None
    else:
        mapped = provider.finish_reasons.get(original, original)
        if expected["tool_calls"] and mapped == "stop":
            mapped = "tool_calls"
        assert result.finish_reason == mapped
        kept = [
            choice.provider_finish_reason
            for chunk in chunks
            for choice in chunk.choices
            if choice.finish_reason is not None
        ]
        assert kept == [original]
        assert result.choices[0].provider_finish_reason == original
    usage = msgspec.to_builtins(result.usage) if result.usage is not None else None
    assert usage == provider.usage(expected["usage"])
    signatures = [
        getattr(choice.delta, "reasoning_signature", None)
        for chunk in chunks
        for choice in chunk.choices
    ]
    if "thinking_signature" in expected:
        assert expected["thinking_signature"] in signatures


def _json_or_none(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def test_provider_transcripts_are_present() -> None:
    prefixes = {name.split("_", 1)[0] for name in PROVIDER_CASES}
    assert prefixes == {"anthropic", "ollama", "gemini"}, CASES
    assert len(PROVIDER_CASES) >= 11


@pytest.mark.parametrize("name", PROVIDER_CASES)
@pytest.mark.parametrize("read_size", [1, 7, 64, 1 << 20])
def test_provider_offline(name: str, read_size: int) -> None:
    body, expected = _load(name)
    chunks, error = _parse_offline(name, body, read_size)
    _check_provider(name, chunks, error, expected)


@pytest.mark.parametrize("name", PROVIDER_CASES)
async def test_provider_over_http(name: str) -> None:
    body, expected = _load(name)
    provider = _provider(name)
    reply = Reply.raw(body, write_size=97, content_type=provider.content_type)
    # No retries: the recorded stream's own outcome, once (an overloaded event would retry).
    async with (
        MockServer(default=reply) as server,
        Client(provider.backend(server), layers=[]) as client,
    ):
        stream = client.stream("replay")
        error = await _read_all(stream)
        assert client._pool.connections_in_use() == 0
    if isinstance(error, llmfast.StreamInterruptedError):
        assert error.chunks == stream.chunks
        error = error.__cause__
    elif error is not None:
        assert stream.chunks == []  # nothing reached the caller: the call may be retried
    _check_provider(name, stream.chunks, error, expected)


async def _read_all(stream: llmfast.ChatStream) -> BaseException | None:
    """Read the stream to its end; return the llmfast error that ended it, if any."""
    try:
        async with stream:
            async for _ in stream:
                pass
    except LLMFastError as exc:
        return exc
    return None
