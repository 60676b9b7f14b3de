"""The wire formats the mock server speaks, and which route speaks which.

A `WireFormat` turns the same scripted [`Reply`][llmfast.testing.Reply] into one
provider's bodies, stream events and error bodies; the server applies faults (resets,
stalls, truncation...) the same way for every format. `OpenAIFormat` is the
OpenAI chat-completions API; the others live in ``anthropic_format``,
``ollama_format`` and ``gemini_format``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from . import _payloads as p
from .replies import ErrorSpec, Reply, ToolCall, split_tokens

__all__ = [
    "OPENAI",
    "Answer",
    "BadRequest",
    "ChatCall",
    "EmbedCall",
    "OpenAIFormat",
    "Route",
    "StreamPlan",
    "WireFormat",
    "int_param",
    "texts_of",
]

_MAX_DIMENSIONS = 65536


class BadRequest(Exception):
    """The request is invalid: answer 400 with this message (in the route's format)."""


@dataclass(frozen=True, slots=True)
class ChatCall:
    """A chat request as the server needs it, whatever the format."""

    stream: bool
    model: str
    n: int
    user_text: str
    prompt_tokens: int
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Answer:
    """What to answer one chat request with (`finish_reason` in OpenAI's names; `None`
    for an unfinished answer)."""

    number: int
    created: int
    text: str | None
    pieces: tuple[str, ...]
    reasoning: str | None
    calls: tuple[ToolCall, ...]
    ids: tuple[str, ...]
    finish_reason: str | None
    completion_tokens: int
    reasoning_tokens: int = 0
    """Part of ``completion_tokens``."""
    cached_tokens: int = 0
    """Prompt tokens read from the prompt cache (part of the prompt)."""
    cache_write_tokens: int = 0
    """Prompt tokens written to the prompt cache (part of the prompt)."""


@dataclass(frozen=True, slots=True)
class StreamPlan:
    """A stream's good events and its end marker; content pieces start at
    `content_start`, `per_piece` events each (for pacing by `token_delay`)."""

    events: list[bytes]
    end: bytes
    content_start: int
    per_piece: int


@dataclass(frozen=True, slots=True)
class EmbedCall:
    """An embeddings request as the server needs it."""

    texts: list[str]
    dimensions: int
    model: str
    base64: bool = False
    batch: bool = True


@dataclass(frozen=True, slots=True)
class Route:
    """Which format and endpoint a request path is (`model`/`stream` when the path says)."""

    fmt: WireFormat
    kind: Literal["chat", "embed"]
    model: str | None = None
    stream: bool | None = None
    batch: bool = True


def int_param(body: dict[str, Any], name: str, default: int, maximum: int) -> int:
    """An integer parameter in 1..maximum, or `default` when absent."""
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise BadRequest(f"Invalid value for '{name}': expected an integer in 1..{maximum}.")
    return value


def texts_of(inputs: Any) -> list[str]:
    """An embeddings `input` (a string or a non-empty list) as texts."""
    if isinstance(inputs, str):
        inputs = [inputs]
    if not isinstance(inputs, list) or not inputs:
        raise BadRequest("'input' must be a non-empty string or array.")
    return [x if isinstance(x, str) else p.ENCODER.encode(x).decode() for x in inputs]


class WireFormat:
    """One provider's wire format, as the mock server writes it."""

    name = "openai"
    stream_type = "text/event-stream"
    call_prefix = "call_"
    bad_event = b"data: {not json}\n\n"
    keepalive = b": keep-alive\n\n"  # what a stalled stream sends to look alive
    malformed_chat = b'{"id": "chatcmpl-malformed", "object": "chat.completion", "choices": [}'
    malformed_embeddings = b'{"object": "list", "data": [{"embedding": [0.1, }'

    def error_body(self, status: int, error: ErrorSpec) -> bytes:
        """The format's error body for `status`."""
        raise NotImplementedError

    def reply_error(self, reply: Reply, status: int) -> bytes:
        """The error body of an error (or non-streamed `stream_error`) reply."""
        assert reply.error_spec is not None
        return self.error_body(status, reply.error_spec)

    def stream_error(self, reply: Reply) -> bytes:
        """The in-stream error event of a `stream_error` reply."""
        raise NotImplementedError

    def headers(self, number: int) -> dict[str, str]:
        """Headers every response of this format carries (request ids)."""
        return {"x-request-id": f"req_{number}"}

    def chat_call(self, route: Route, body: dict[str, Any]) -> ChatCall:
        """Read a chat request (raises `BadRequest`)."""
        raise NotImplementedError

    def chat_body(self, call: ChatCall, answer: Answer) -> bytes:
        """A whole (non-streamed) chat response."""
        raise NotImplementedError

    def chat_stream(self, call: ChatCall, answer: Answer) -> StreamPlan:
        """A streamed chat response."""
        raise NotImplementedError

    def unfinished_end(self, plan: StreamPlan) -> bytes:
        """What ends a stream "cleanly" before its finish (an `end_unfinished` reply):
        the end marker, where the format has one apart from the finish."""
        return plan.end

    def embed_call(self, route: Route, body: dict[str, Any]) -> EmbedCall:
        """Read an embeddings request (raises `BadRequest`)."""
        raise NotImplementedError

    def embed_body(self, call: EmbedCall) -> bytes:
        """An embeddings response."""
        raise NotImplementedError


class OpenAIFormat(WireFormat):
    """The OpenAI chat-completions and embeddings API."""

    def error_body(self, status: int, error: ErrorSpec) -> bytes:
        default = "server_error" if status >= 500 else "invalid_request_error"
        return p.error_body(error.message, error.type or default, error.code)

    def reply_error(self, reply: Reply, status: int) -> bytes:
        return reply.body

    def stream_error(self, reply: Reply) -> bytes:
        return reply.event

    def chat_call(self, route: Route, body: dict[str, Any]) -> ChatCall:
        messages = body.get("messages")
        model = body.get("model")
        return ChatCall(
            stream=body.get("stream") is True,
            model=model if isinstance(model, str) else "",
            n=int_param(body, "n", 1, 128),
            user_text=p.last_user_text(messages),
            prompt_tokens=p.prompt_tokens(messages),
            body=body,
        )

    def chat_body(self, call: ChatCall, answer: Answer) -> bytes:
        message = p.message(answer.text, answer.calls, answer.ids)
        if answer.reasoning is not None:
            message["reasoning_content"] = answer.reasoning
        usage = p.usage(call.prompt_tokens, answer.completion_tokens * call.n, answer, call.n)
        cid = f"chatcmpl-mock{answer.number}"
        return p.completion_body(
            cid, answer.created, call.model, call.n, message, answer.finish_reason, usage
        )

    def chat_stream(self, call: ChatCall, answer: Answer) -> StreamPlan:
        options = call.body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        cid = f"chatcmpl-mock{answer.number}"
        framer = p.ChunkFramer(cid, answer.created, call.model, include_usage)
        n = call.n
        usage = p.usage(call.prompt_tokens, answer.completion_tokens * n, answer, n)
        events = p.stream_events(
            framer,
            n,
            "" if answer.text is not None else None,
            answer.pieces,
            p.tool_call_deltas(answer.calls, answer.ids) if answer.calls else (),
            answer.finish_reason,
            usage if include_usage else None,
        )
        start = n
        if answer.reasoning is not None:  # reasoning deltas right after the role chunks
            pieces = split_tokens(answer.reasoning)
            reasoning = [
                framer.event(i, {"reasoning_content": r}) for r in pieces for i in range(n)
            ]
            events[n:n] = reasoning
            start += len(reasoning)
        return StreamPlan(events, p.DONE, start, n)

    def embed_call(self, route: Route, body: dict[str, Any]) -> EmbedCall:
        model = body.get("model")
        return EmbedCall(
            texts=texts_of(body.get("input")),
            dimensions=int_param(body, "dimensions", 8, _MAX_DIMENSIONS),
            model=model if isinstance(model, str) else "",
            base64=body.get("encoding_format") == "base64",
        )

    def embed_body(self, call: EmbedCall) -> bytes:
        return p.embeddings_body(call.texts, call.dimensions, call.model, call.base64)


OPENAI = OpenAIFormat()
