"""Hostile input to every backend's decoders: only a result or a documented error.

For OpenAI, Anthropic, Ollama and Gemini: the whole-chat decoder, the stream parser
(fed in arbitrary slices), the embeddings decoders, a JSON body sent to a stream
request, and the error-body mapping. Inputs: arbitrary bytes, JSON shaped with each
API's own field names but arbitrary values, mutated real bodies, and deep nesting.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import llmfast
from llmfast.backends._http import decode_error_body
from llmfast.backends.base import HTTPBackend
from llmfast.errors import (
    APIStatusError,
    DecodeError,
    StreamEventError,
    StreamTruncatedError,
)
from llmfast.types import ChatCompletion, ChatCompletionChunk, EmbeddingRequest, EmbeddingResponse

PROVIDERS = ["openai", "anthropic", "ollama", "gemini"]
BACKENDS: dict[str, HTTPBackend] = {
    provider: llmfast.backend_for(  # type: ignore[misc]
        provider,
        base_url="http://127.0.0.1:9",
        api_key=None if provider == "ollama" else "k",
        model="m",
    )
    for provider in PROVIDERS
}
STREAM_ERRORS = (DecodeError, StreamEventError, StreamTruncatedError)
DEEP = 100_000
DEEP_BODIES = [
    b"[" * DEEP + b"]" * DEEP,
    b'{"a":' * DEEP + b"1" + b"}" * DEEP,
    b'{"choices": [], "error": ' + b"[" * DEEP + b"]" * DEEP + b"}",
    b'{"error": {"message": ' + b"[" * DEEP + b"]" * DEEP + b"}}",
    b'{"type": "error", "error": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    b'{"error": ' + b"[" * 900 + b"]" * 900 + b"}",  # decodes, but too deep to repr()
]

# Each API's vocabulary, so that generated objects reach past the first type check.
KEYS = [
    "id",
    "object",
    "model",
    "created",
    "choices",
    "index",
    "message",
    "delta",
    "role",
    "content",
    "tool_calls",
    "function",
    "name",
    "arguments",
    "finish_reason",
    "usage",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "error",
    "type",
    "code",
    "status",
    "data",
    "embedding",
    "embeddings",
    "values",
    "candidates",
    "parts",
    "text",
    "thought",
    "functionCall",
    "args",
    "finishReason",
    "usageMetadata",
    "promptFeedback",
    "blockReason",
    "done",
    "done_reason",
    "created_at",
    "response",
    "thinking",
    "prompt_eval_count",
    "eval_count",
    "content_block",
    "stop_reason",
    "input_tokens",
    "output_tokens",
    "partial_json",
    "input",
    "details",
    "retryDelay",
    "request_id",
]
TYPES = [
    "message",
    "error",
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
    "ping",
    "text",
    "tool_use",
    "thinking",
    "text_delta",
    "input_json_delta",
    "thinking_delta",
    "overloaded_error",
]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.sampled_from([*TYPES, "2024-13-45T99:99:99Z", "AAA=", "!!", "9999999999s", "-1s"]),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(KEYS), inner, max_size=6),
    ),
    max_leaves=30,
)
_encode = msgspec.json.Encoder().encode


def _json(value: Any) -> bytes:
    return _encode(value)


BODIES = st.one_of(
    st.binary(max_size=300),
    JSON.map(_json),
    st.tuples(JSON.map(_json), st.integers(0, 300), st.binary(max_size=4)).map(
        lambda t: t[0][: t[1]] + t[2] + t[0][t[1] :]
    ),
)
HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large]


def _frame(provider: str, payloads: list[bytes], events: list[str]) -> bytes:
    """Payloads as the provider's stream framing (events named for SSE)."""
    if provider == "ollama":
        return b"".join(p.replace(b"\n", b" ") + b"\n" for p in payloads)
    end = b"\r\n\r\n" if provider == "gemini" else b"\n\n"
    out = []
    for payload, event in zip(payloads, events, strict=False):
        name = b"event: " + event.encode() + b"\n" if event else b""
        out.append(name + b"data: " + payload.replace(b"\n", b" ") + end)
    return b"".join(out)


def _stream(provider: str, data: bytes, cuts: list[int]) -> None:
    parser = BACKENDS[provider].stream_parser()
    chunks: list[ChatCompletionChunk] = []
    try:
        start = 0
        for cut in [*sorted(cuts), len(data)]:
            chunks.extend(parser.feed(data[start:cut]))
            start = max(start, cut)
        chunks.extend(parser.close())
    except STREAM_ERRORS:
        pass
    assert all(type(chunk) is ChatCompletionChunk for chunk in chunks)


def _whole(provider: str, raw: bytes) -> None:
    backend = BACKENDS[provider]
    try:
        result = backend.decode_chat(raw)
    except DecodeError:
        pass
    else:
        assert type(result) is ChatCompletion
    try:
        chunks = backend.body_chunks(raw)
    except STREAM_ERRORS:
        pass
    else:
        assert all(type(chunk) is ChatCompletionChunk for chunk in chunks)
    for status in (200, 400, 429, 500, 503, 529):
        error = backend.status_error(status, decode_error_body(raw), {"x-request-id": "r"})
        assert isinstance(error, APIStatusError)
        assert error.status == status
        str(error)  # printable


def _embeddings(provider: str, raw: bytes) -> None:
    backend = BACKENDS[provider]
    requests = [EmbeddingRequest(model="m", input="a"), EmbeddingRequest(model="m", input=["a"])]
    if provider == "openai":
        requests.append(EmbeddingRequest(model="m", input="a", encoding_format="base64"))
    for request in requests:
        try:
            result = backend.decode_embeddings(raw, request)
        except DecodeError:
            continue
        assert type(result) is EmbeddingResponse


@pytest.mark.parametrize("provider", PROVIDERS)
@settings(max_examples=150, deadline=None, suppress_health_check=HEALTH)
@given(raw=BODIES)
def test_whole_bodies_and_error_bodies(provider: str, raw: bytes) -> None:
    _whole(provider, raw)


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("raw", DEEP_BODIES, ids=range(len(DEEP_BODIES)))
def test_deep_nesting(provider: str, raw: bytes) -> None:
    _whole(provider, raw)
    _stream(provider, _frame(provider, [raw], ["message"]), [])
    if provider != "anthropic":
        _embeddings(provider, raw)


@pytest.mark.parametrize("provider", PROVIDERS)
@settings(max_examples=150, deadline=None, suppress_health_check=HEALTH)
@given(
    payloads=st.lists(st.one_of(JSON.map(_json), st.binary(max_size=40)), max_size=6),
    events=st.lists(st.sampled_from(["", "message", "error", "ping", *TYPES]), max_size=6),
    cuts=st.lists(st.integers(0, 600), max_size=5),
)
@example(payloads=[b"[DONE]"], events=[""], cuts=[])
def test_streams(provider: str, payloads: list[bytes], events: list[str], cuts: list[int]) -> None:
    events = events + [""] * (len(payloads) - len(events))
    _stream(provider, _frame(provider, payloads, events), cuts)


@pytest.mark.parametrize("provider", ["openai", "ollama", "gemini"])
@settings(max_examples=150, deadline=None, suppress_health_check=HEALTH)
@given(raw=BODIES)
def test_embeddings(provider: str, raw: bytes) -> None:
    _embeddings(provider, raw)


@settings(max_examples=200, deadline=None, suppress_health_check=HEALTH)
@given(
    embedding=st.one_of(
        st.text(alphabet="ABCDEFGHabcdefgh0123456789+/=", max_size=24),
        st.text(max_size=12),
    )
)
def test_base64_embeddings(embedding: str) -> None:
    raw = _json({"data": [{"embedding": embedding, "index": 0}], "model": "m"})
    _embeddings("openai", raw)
