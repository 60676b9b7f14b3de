"""One usage shape for every provider: each backend's wire mapping, against payloads
shaped as the providers' API references publish them (whole responses and streams),
and the real transcripts of ``shared/conformance/streams``.

The meaning checked everywhere: ``input_tokens`` is every input token with cache reads
and writes as *parts* of it, ``output_tokens`` every output token with reasoning as a
part of it, and the provider's own figures stay reachable.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmfast import ChatAccumulator, ChatCompletion, ChatCompletionChunk, SSEDecoder, Usage
from llmfast.backends import _anthropic_wire as anthropic_wire
from llmfast.backends import _gemini_wire as gemini_wire
from llmfast.backends import _ollama_wire as ollama_wire
from llmfast.backends._anthropic_wire import AnthropicStreamParser
from llmfast.backends._gemini_wire import GeminiStreamParser
from llmfast.errors import StreamEventError
from llmfast.usage import add_usage, error_usage, sum_usage
from tests.conformance import conformance_dir, stream_cases

_decode_completion = msgspec.json.Decoder(ChatCompletion).decode
_decode_chunk = msgspec.json.Decoder(ChatCompletionChunk).decode


def _body(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def _sse(events: list[tuple[str | None, dict[str, Any]]]) -> bytes:
    out = []
    for name, data in events:
        head = f"event: {name}\n" if name else ""
        out.append(f"{head}data: {json.dumps(data)}\n\n")
    return "".join(out).encode()


def _shape(usage: Usage | None) -> tuple[int, ...]:
    assert usage is not None
    return (
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_read_tokens,
        usage.cache_write_tokens,
        usage.reasoning_tokens,
    )


# --- OpenAI: cached and reasoning tokens are parts of prompt / completion tokens ----------

# Shaped as the "usage" object of https://platform.openai.com/docs/api-reference/chat/object
# with the figures of the prompt caching guide's example
# (https://platform.openai.com/docs/guides/prompt-caching: 2006 prompt tokens, 1920 cached).
OPENAI_CACHED = {
    "id": "chatcmpl-cached",
    "object": "chat.completion",
    "created": 1741569952,
    "model": "gpt-4o-2024-08-06",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}
    ],
    "usage": {
        "prompt_tokens": 2006,
        "completion_tokens": 300,
        "total_tokens": 2306,
        "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    },
}
# A reasoning model's usage (https://platform.openai.com/docs/guides/reasoning: the
# reasoning tokens are billed as, and counted in, completion tokens).
OPENAI_REASONING = {
    **OPENAI_CACHED,
    "model": "o4-mini-2025-04-16",
    "usage": {
        "prompt_tokens": 75,
        "completion_tokens": 1186,
        "total_tokens": 1261,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 1024, "audio_tokens": 0},
    },
}


def test_openai_usage_keeps_its_meaning_and_gains_the_normalized_names() -> None:
    cached = _decode_completion(_body(OPENAI_CACHED)).usage
    assert _shape(cached) == (2006, 300, 1920, 0, 0)
    assert cached is not None
    assert cached.uncached_input_tokens == 86
    reasoning = _decode_completion(_body(OPENAI_REASONING)).usage
    assert _shape(reasoning) == (75, 1186, 0, 0, 1024)


def test_openai_streams_usage_in_its_last_chunk() -> None:
    # stream_options.include_usage: every chunk has "usage": null and an extra last
    # chunk with "choices": [] carries it (the chat streaming reference).
    head = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o"}
    body = _sse(
        [
            (None, {**head, "choices": [{"index": 0, "delta": {"role": "assistant"}}]}),
            (None, {**head, "choices": [{"index": 0, "delta": {"content": "Hi"}}], "usage": None}),
            (None, {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
            (None, {**head, "choices": [], "usage": OPENAI_CACHED["usage"]}),
        ]
    )
    accumulator = ChatAccumulator()
    for event in SSEDecoder().feed(body):
        accumulator.add(_decode_chunk(event.data))
    assert _shape(accumulator.result().usage) == (2006, 300, 1920, 0, 0)


# --- Anthropic: cache tokens are reported beside input_tokens ----------------------------

# The usage fields of https://docs.anthropic.com/en/api/messages (input_tokens,
# cache_creation_input_tokens, cache_read_input_tokens, cache_creation with the 5-minute
# and 1-hour split, output_tokens, service_tier); the figures of the prompt caching
# guide's first call (21 uncached, 188086 written, 393 out).
ANTHROPIC_WRITE = {
    "id": "msg_write",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5",
    "content": [{"type": "text", "text": "The themes..."}],
    "stop_reason": "end_turn",
    "usage": {
        "input_tokens": 21,
        "cache_creation_input_tokens": 188086,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 188086, "ephemeral_1h_input_tokens": 0},
        "output_tokens": 393,
        "service_tier": "standard",
    },
}
ANTHROPIC_READ = {
    **ANTHROPIC_WRITE,
    "usage": {
        "input_tokens": 21,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 188086,
        "output_tokens": 393,
    },
}


def test_anthropic_cache_tokens_are_added_into_the_input_and_kept_apart() -> None:
    written = anthropic_wire.completion_from(_body(ANTHROPIC_WRITE)).usage
    assert _shape(written) == (188107, 393, 0, 188086, 0)
    assert written is not None
    assert written.uncached_input_tokens == 21  # Anthropic's own input_tokens
    details = written.prompt_tokens_details or {}
    assert details["cache_creation"]["ephemeral_5m_input_tokens"] == 188086
    assert details["service_tier"] == "standard"
    read = anthropic_wire.completion_from(_body(ANTHROPIC_READ)).usage
    assert _shape(read) == (188107, 393, 188086, 0, 0)


def _anthropic_stream(final_usage: dict[str, Any]) -> list[tuple[str | None, dict[str, Any]]]:
    # The event flow of https://docs.anthropic.com/en/docs/build-with-claude/streaming:
    # message_start carries the input usage, message_delta the cumulative output.
    start = {
        "type": "message_start",
        "message": {
            "id": "msg_s",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [],
            "stop_reason": None,
            "usage": {
                "input_tokens": 25,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 1200,
                "output_tokens": 1,
            },
        },
    }
    return [
        ("message_start", start),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text"}},
        ),
        ("ping", {"type": "ping"}),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "Hello"},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": final_usage,
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]


def _parse_anthropic(body: bytes) -> list[ChatCompletionChunk]:
    parser = AnthropicStreamParser()
    chunks: list[ChatCompletionChunk] = []
    parser.parse(body, chunks)
    parser.finish(chunks)
    return chunks


def test_anthropic_streams_merge_message_start_and_message_delta_usage() -> None:
    chunks = _parse_anthropic(_sse(_anthropic_stream({"output_tokens": 15})))
    accumulator = ChatAccumulator()
    accumulator.extend(chunks)
    assert _shape(accumulator.result().usage) == (1225, 15, 1200, 0, 0)
    # The first content chunk already carries message_start's input usage, so a stream
    # that breaks after it still reports what its prompt cost.
    assert _shape(chunks[0].usage) == (1225, 1, 1200, 0, 0)


def test_an_anthropic_error_event_after_message_start_carries_its_usage() -> None:
    events = _anthropic_stream({"output_tokens": 15})[:1]
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    parser = AnthropicStreamParser()
    with pytest.raises(StreamEventError) as caught:
        parser.parse(_sse([*events, ("error", error)]), [])
    assert _shape(error_usage(caught.value)) == (1225, 1, 1200, 0, 0)


# --- Gemini: cachedContentTokenCount is part of promptTokenCount; thoughts apart ----------

# The UsageMetadata of https://ai.google.dev/api/generate-content#UsageMetadata.
GEMINI = {
    "candidates": [
        {"content": {"parts": [{"text": "Hi"}], "role": "model"}, "finishReason": "STOP"}
    ],
    "usageMetadata": {
        "promptTokenCount": 12000,
        "candidatesTokenCount": 300,
        "totalTokenCount": 12700,
        "cachedContentTokenCount": 10000,
        "thoughtsTokenCount": 400,
        "promptTokensDetails": [
            {"modality": "TEXT", "tokenCount": 11500},
            {"modality": "AUDIO", "tokenCount": 500},
        ],
    },
    "modelVersion": "gemini-2.5-pro",
    "responseId": "r1",
}


def test_gemini_thoughts_count_as_output_and_the_cache_as_part_of_the_input() -> None:
    usage = gemini_wire.completion_from(_body(GEMINI)).usage
    assert _shape(usage) == (12000, 700, 10000, 0, 400)
    assert usage is not None
    assert (usage.input_audio_tokens, usage.total_tokens) == (500, 12700)


def test_gemini_streams_report_the_last_events_usage() -> None:
    first = {**GEMINI, "candidates": [{"content": {"parts": [{"text": "H"}], "role": "model"}}]}
    first["usageMetadata"] = {"promptTokenCount": 12000, "totalTokenCount": 12000}
    parser = GeminiStreamParser()
    chunks: list[ChatCompletionChunk] = []
    parser.parse(_sse([(None, first), (None, GEMINI)]), chunks)
    parser.finish(chunks)
    accumulator = ChatAccumulator()
    accumulator.extend(chunks)
    assert _shape(accumulator.result().usage) == (12000, 700, 10000, 0, 400)


# --- Ollama: prompt_eval_count and eval_count ----------------------------------------------


def test_ollama_usage() -> None:
    # The final /api/chat object of https://github.com/ollama/ollama/blob/main/docs/api.md
    body = {
        "model": "llama3.2",
        "created_at": "2023-08-04T19:22:45.499127Z",
        "message": {"role": "assistant", "content": "Hi"},
        "done": True,
        "done_reason": "stop",
        "prompt_eval_count": 26,
        "eval_count": 298,
    }
    assert _shape(ollama_wire.completion_from(_body(body)).usage) == (26, 298, 0, 0, 0)


# --- the real transcripts ------------------------------------------------------------------


@pytest.mark.skipif(conformance_dir() is None, reason="../shared/conformance absent")
@pytest.mark.parametrize(
    "name", [n for n in stream_cases() if n.startswith(("anthropic_", "gemini_"))]
)
def test_conformance_streams_usage_normalizes_the_providers_figures(name: str) -> None:
    folder = conformance_dir()
    assert folder is not None
    expected = json.loads((folder / "streams" / f"{name}.expected.json").read_text("utf-8"))
    raw = expected["usage"]
    if raw is None:
        return
    body = (folder / "streams" / f"{name}.txt").read_bytes()
    chunks: list[ChatCompletionChunk] = []
    parser = AnthropicStreamParser() if name.startswith("anthropic_") else GeminiStreamParser()
    try:
        parser.parse(body, chunks)
        parser.finish(chunks)
    except Exception as exc:  # an error transcript: its usage rides on the error
        usage = error_usage(exc)
    else:
        accumulator = ChatAccumulator()
        accumulator.extend(chunks)
        usage = accumulator.result().usage
    assert usage is not None
    if name.startswith("anthropic_"):
        read = raw.get("cache_read_input_tokens") or 0
        write = raw.get("cache_creation_input_tokens") or 0
        assert usage.input_tokens == raw["input_tokens"] + read + write
        assert usage.uncached_input_tokens == raw["input_tokens"]
        assert (usage.cache_read_tokens, usage.cache_write_tokens) == (read, write)
        assert usage.output_tokens == raw["output_tokens"]
    else:
        thoughts = raw.get("thoughtsTokenCount") or 0
        assert usage.input_tokens == raw["promptTokenCount"]
        assert usage.output_tokens == raw["candidatesTokenCount"] + thoughts
        assert usage.reasoning_tokens == thoughts
        assert usage.cache_read_tokens == (raw.get("cachedContentTokenCount") or 0)


# --- summing attempts ----------------------------------------------------------------------

counts = st.integers(min_value=0, max_value=10**7)
usages = st.builds(
    lambda p, c, r, w, t: Usage(
        p + r + w,
        c + t,
        p + r + w + c + t,
        {"cached_tokens": r, "cache_creation_tokens": w},
        {"reasoning_tokens": t},
    ),
    counts,
    counts,
    counts,
    counts,
    counts,
)


@given(st.lists(usages, max_size=6))
def test_summed_usage_is_the_sum_of_every_figure(parts: list[Usage]) -> None:
    total = sum_usage(*parts)
    if not parts:
        assert total is None
        return
    assert total is not None
    for name in ("input_tokens", "output_tokens", "total_tokens", "cache_read_tokens"):
        assert getattr(total, name) == sum(getattr(u, name) for u in parts)
    assert total.reasoning_tokens == sum(u.reasoning_tokens for u in parts)
    assert total.cache_write_tokens == sum(u.cache_write_tokens for u in parts)
    assert add_usage(None, parts[0]) is parts[0]
    assert add_usage(parts[0], None) is parts[0]


def test_a_completions_total_usage_adds_earlier_attempts() -> None:
    final = Usage(10, 5, 15)
    completion = ChatCompletion(usage=final)
    assert completion.total_usage is final
    completion.earlier_usage = Usage(10, 0, 10)
    assert completion.total_usage == Usage(20, 5, 25)
    assert completion.usage is final  # the final attempt's, unchanged
    # Encoding keeps the OpenAI shape: the new fields are left out when unset.
    assert b"batch" not in msgspec.json.encode(final)


# --- llmfast.testing reports realistic usage in each format --------------------------------


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini", "ollama"])
@pytest.mark.parametrize("stream", [False, True])
async def test_the_test_server_reports_cache_and_reasoning_per_format(
    provider: str, stream: bool
) -> None:
    from llmfast import Client
    from llmfast.testing import MockServer, Reply

    reply = Reply.text("fine thanks", reasoning="let me think").with_cache(read=2, write=1)
    async with MockServer() as server:
        server.enqueue(reply)
        key = None if provider == "ollama" else "k"
        url = server.url_for(provider)
        async with Client(provider=provider, base_url=url, api_key=key, model="m") as c:
            if stream:
                async with c.stream("one two three four") as s:
                    completion = await s.collect()
            else:
                completion = await c.chat("one two three four")
    usage = completion.usage
    assert usage is not None
    # What each provider reports: cache reads everywhere but Ollama, writes only on
    # Anthropic, reasoning apart everywhere but Anthropic (inside its output) and Ollama.
    expected = {
        "openai": (2, 0, 3),
        "anthropic": (2, 1, 0),
        "gemini": (2, 0, 3),
        "ollama": (0, 0, 0),
    }[provider]
    assert (usage.cache_read_tokens, usage.cache_write_tokens, usage.reasoning_tokens) == (expected)
    assert usage.output_tokens == 2 + 3  # the answer and the reasoning, in every format
    assert usage.uncached_input_tokens == usage.input_tokens - expected[0] - expected[1]
