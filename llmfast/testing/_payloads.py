"""OpenAI-compatible JSON bodies and SSE events, built from plain dicts and encoded once."""

from __future__ import annotations

import base64
import functools
import hashlib
import math
import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from .replies import ErrorSpec, ToolCall

ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder()
FINGERPRINT = "fp_mock"
DONE = b"data: [DONE]\n\n"
_FRAGMENT_SIZES = (3, 5, 8, 4, 7, 6)

Json = dict[str, Any]


def error_spec(message: str, type_: str | None = None) -> ErrorSpec:
    """An error for a format to render (the server's own 400s and 404s)."""
    from .replies import ErrorSpec

    return ErrorSpec(message, type_, None)


def error_body(message: str, type_: str, code: str | None = None) -> bytes:
    """An OpenAI-style error body."""
    return ENCODER.encode(
        {"error": {"message": message, "type": type_, "param": None, "code": code}}
    )


def text_of(content: Any) -> str:
    """The text of a message's content: a string, or the joined text parts of a list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and part.get("type") == "text" and "text" in part
        )
    return ""


def last_user_text(messages: Any) -> str:
    """The text of the last `user` message ("" if there is none)."""
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                return text_of(message.get("content"))
    return ""


@functools.lru_cache(maxsize=1024)
def count_words(text: str) -> int:
    """A crude token count."""
    return len(text.split())


def prompt_tokens(messages: Any) -> int:
    """Crude prompt token count over all message texts."""
    if not isinstance(messages, list):
        return 0
    return sum(count_words(text_of(m.get("content"))) for m in messages if isinstance(m, dict))


def usage(prompt: int, completion: int, answer: Any = None, n: int = 1) -> Json:
    """An OpenAI `usage` object; with the answer's cached and reasoning tokens (as
    `prompt_tokens_details` / `completion_tokens_details`) when it has some."""
    out: Json = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    cached = getattr(answer, "cached_tokens", 0)
    if cached:
        out["prompt_tokens_details"] = {"cached_tokens": min(cached, prompt), "audio_tokens": 0}
    reasoning = getattr(answer, "reasoning_tokens", 0)
    if reasoning:
        out["completion_tokens_details"] = {
            "reasoning_tokens": reasoning * n,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        }
    return out


def completion_body(
    cid: str,
    created: int,
    model: str,
    n: int,
    message: Json,
    finish_reason: str | None,
    usage_: Json,
) -> bytes:
    """A whole `chat.completion` body with `n` identical choices."""
    choices = [
        {"index": i, "message": message, "logprobs": None, "finish_reason": finish_reason}
        for i in range(n)
    ]
    return ENCODER.encode(
        {
            "id": cid,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "system_fingerprint": FINGERPRINT,
            "choices": choices,
            "usage": usage_,
        }
    )


def message(content: str | None, calls: Sequence[ToolCall] = (), ids: Sequence[str] = ()) -> Json:
    """An assistant message, with tool calls if any."""
    msg: Json = {"role": "assistant", "content": content, "refusal": None}
    if calls:
        msg["tool_calls"] = [
            {
                "id": call_id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call, call_id in zip(calls, ids, strict=True)
        ]
    return msg


class ChunkFramer:
    """Frames `chat.completion.chunk` SSE events; the constant parts are encoded once."""

    __slots__ = ("_head", "_tail")

    def __init__(self, cid: str, created: int, model: str, include_usage: bool) -> None:
        head = ENCODER.encode(
            {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": FINGERPRINT,
            }
        )
        self._head = b"data: " + head[:-1] + b',"choices":'
        self._tail = b',"usage":null}\n\n' if include_usage else b"}\n\n"

    def event(self, index: int, delta: Json, finish_reason: str | None = None) -> bytes:
        """One chunk event carrying `delta` for choice `index`."""
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return self._head + ENCODER.encode([choice]) + self._tail

    def content_events(self, pieces: Sequence[str], n: int) -> list[bytes]:
        """`{"content": piece}` events for each piece and choice (same bytes as `event`)."""
        encode = ENCODER.encode
        heads = [b'%s[{"index":%d,"delta":{"content":' % (self._head, i) for i in range(n)]
        tail = b'},"logprobs":null,"finish_reason":null}]' + self._tail
        return [head + encode(piece) + tail for piece in pieces for head in heads]

    def usage_event(self, usage_: Json) -> bytes:
        """The final `choices: []` chunk carrying usage."""
        return self._head + b'[],"usage":' + ENCODER.encode(usage_) + b"}\n\n"


def stream_events(
    framer: ChunkFramer,
    n: int,
    role_content: str | None,
    pieces: Sequence[str],
    extra_deltas: Sequence[Json],
    finish_reason: str | None,
    usage_: Json | None,
) -> list[bytes]:
    """All events but `[DONE]`, each choice interleaved: role, content pieces, extra deltas
    (tool calls), finishes, then usage if given."""
    role = {"role": "assistant", "content": role_content}
    events = [framer.event(i, role) for i in range(n)]
    events += framer.content_events(pieces, n)
    events += [framer.event(i, delta) for delta in extra_deltas for i in range(n)]
    events += [framer.event(i, {}, finish_reason) for i in range(n)]
    if usage_ is not None:
        events.append(framer.usage_event(usage_))
    return events


def fragments(arguments: str) -> list[str]:
    """`arguments` cut into small fragments (3 to 8 characters), as servers stream them."""
    out = []
    pos = k = 0
    while pos < len(arguments):
        size = _FRAGMENT_SIZES[k % len(_FRAGMENT_SIZES)]
        out.append(arguments[pos : pos + size])
        pos += size
        k += 1
    return out


def tool_call_deltas(calls: Sequence[ToolCall], ids: Sequence[str]) -> list[Json]:
    """Introductions of every call, then argument fragments interleaved round-robin."""
    deltas: list[Json] = [
        {
            "tool_calls": [
                {
                    "index": k,
                    "id": call_id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": ""},
                }
            ]
        }
        for k, (call, call_id) in enumerate(zip(calls, ids, strict=True))
    ]
    pieces = [fragments(call.arguments) for call in calls]
    for step in range(max(map(len, pieces))):
        deltas.extend(
            {"tool_calls": [{"index": k, "function": {"arguments": frags[step]}}]}
            for k, frags in enumerate(pieces)
            if step < len(frags)
        )
    return deltas


def arguments_object(arguments: str) -> Any:
    """Tool-call arguments as a JSON value (for formats that send objects); the string
    itself when it is not valid JSON."""
    try:
        return _DECODER.decode(arguments)
    except msgspec.DecodeError:
        return arguments


@functools.lru_cache(maxsize=4096)
def embedding(text: str, dimensions: int) -> tuple[float, ...]:
    """A deterministic unit vector derived from blake2b hashes of `text`."""
    data = text.encode()
    raw = bytearray()
    block = 0
    while len(raw) < 4 * dimensions:
        raw += hashlib.blake2b(data, digest_size=64, salt=block.to_bytes(16, "little")).digest()
        block += 1
    ints = struct.unpack_from(f"<{dimensions}I", raw)
    values = [i / 2147483648.0 - 1.0 for i in ints]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return tuple(v / norm for v in values)


def embeddings_body(inputs: Sequence[str], dimensions: int, model: str, as_base64: bool) -> bytes:
    """An embeddings `list` body (float lists, or base64 little-endian float32)."""
    data = []
    for index, text in enumerate(inputs):
        vector: Any = embedding(text, dimensions)
        if as_base64:
            vector = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": vector})
    tokens = sum(count_words(text) for text in inputs)
    return ENCODER.encode(
        {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )


def models_body(model: str, created: int) -> bytes:
    """The `GET /v1/models` list with a single model."""
    return ENCODER.encode(
        {
            "object": "list",
            "data": [{"id": model, "object": "model", "created": created, "owned_by": "llmfast"}],
        }
    )
