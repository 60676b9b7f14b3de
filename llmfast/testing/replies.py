"""`Reply`: what the mock server answers to one request (content or a scripted fault)."""

from __future__ import annotations

import dataclasses
import http
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from . import hostile
from ._payloads import ENCODER, error_body

__all__ = ["ErrorSpec", "Reply", "ReplyKind", "ToolCall", "split_tokens"]

ReplyKind = Literal[
    "text",
    "echo",
    "tool_calls",
    "error",
    "reset",
    "stall",
    "malformed",
    "truncated",
    "unfinished",
    "stream_error",
    "raw",
    "unstreamed",
    "nested",
    "endless",
]

_TOKEN_RE = re.compile(r"\S+\s*|\s+")
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    409: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    529: "overloaded_error",
}


class ToolCall(NamedTuple):
    """One scripted tool call; `arguments` is already a JSON string."""

    id: str | None
    name: str
    arguments: str


class ErrorSpec(NamedTuple):
    """An error as a reply describes it; each wire format renders it its own way.

    `type` is `None` when the reply did not name one (each format then picks its own
    for the status); `code` is OpenAI's `code` (a number here is a status for Gemini).
    """

    message: str
    type: str | None
    code: str | None


def split_tokens(text: str, chunk_size: int | None = None) -> tuple[str, ...]:
    """Split `text` into word-ish tokens (whitespace kept attached) or fixed-size pieces."""
    if chunk_size is None:
        return tuple(_TOKEN_RE.findall(text))
    return tuple(text[i : i + chunk_size] for i in range(0, len(text), chunk_size))


def _header_items(headers: Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
    return tuple(headers.items()) if headers else ()


def _check_common(delay: float, after_chunks: int = 0) -> None:
    if delay < 0:
        raise ValueError("delay must be >= 0")
    if after_chunks < 0:
        raise ValueError("after_chunks must be >= 0")


@dataclass(frozen=True, slots=True)
class Reply:
    """One scripted answer. Build it with the classmethods, not the constructor.

    Every reply takes `delay` (seconds to wait before sending headers) and `headers`
    (extra response headers). Fault replies count `after_chunks` in stream events for
    streaming requests (SSE events, or NDJSON lines for Ollama; for OpenAI the role
    chunk is the first event, for Anthropic `message_start`); their good events are the
    ones `Reply.echo()` would send. The same reply is rendered in the wire format of the
    route it answers (OpenAI, Anthropic, Ollama or Gemini). The fields hold the
    arguments in precomputed form.
    """

    kind: ReplyKind
    content: str | None = None
    chunks: tuple[str, ...] = ()
    chunk_size: int | None = None
    token_delay: float = 0.0
    finish_reason: str = "stop"
    calls: tuple[ToolCall, ...] = ()
    reasoning: str | None = None
    status: int = 200
    body: bytes = b""
    event: bytes = b""
    after_chunks: int = 0
    delay: float = 0.0
    headers: tuple[tuple[str, str], ...] = ()
    error_spec: ErrorSpec | None = None
    http_status: int = 0
    depth: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0

    def with_cache(self, *, read: int = 0, write: int = 0) -> Reply:
        """This reply, reporting ``read`` prompt tokens served from the provider's
        prompt cache and ``write`` written to it (at most the prompt's tokens), in each
        format's own way: OpenAI ``prompt_tokens_details.cached_tokens``, Anthropic
        ``cache_read_input_tokens`` / ``cache_creation_input_tokens`` beside a smaller
        ``input_tokens``, Gemini ``cachedContentTokenCount`` (Ollama reports none)."""
        if read < 0 or write < 0:
            raise ValueError("cached token counts must be >= 0")
        return dataclasses.replace(self, cached_tokens=read, cache_write_tokens=write)

    @classmethod
    def text(
        cls,
        text: str,
        *,
        chunk_size: int | None = None,
        token_delay: float = 0.0,
        finish_reason: str = "stop",
        reasoning: str | None = None,
        delay: float = 0.0,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """A fixed assistant message (streamed token by token when the request streams).

        `reasoning` is sent first as reasoning (thinking) text where the format has it.
        `finish_reason` uses OpenAI's names (each format translates `stop`, `length`,
        `tool_calls` and `content_filter`; any other value is sent as given).
        """
        _check_text_args(chunk_size, token_delay, delay)
        return cls(
            "text",
            content=text,
            chunks=split_tokens(text, chunk_size),
            chunk_size=chunk_size,
            token_delay=token_delay,
            finish_reason=finish_reason,
            reasoning=reasoning,
            delay=delay,
            headers=_header_items(headers),
        )

    @classmethod
    def echo(
        cls,
        *,
        chunk_size: int | None = None,
        token_delay: float = 0.0,
        finish_reason: str = "stop",
        delay: float = 0.0,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """Answer with the text of the request's last user message."""
        _check_text_args(chunk_size, token_delay, delay)
        return cls(
            "echo",
            chunk_size=chunk_size,
            token_delay=token_delay,
            finish_reason=finish_reason,
            delay=delay,
            headers=_header_items(headers),
        )

    @classmethod
    def tool_calls(
        cls,
        calls: Sequence[Mapping[str, Any]],
        *,
        text: str | None = None,
        reasoning: str | None = None,
        delay: float = 0.0,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """Ask for tool calls: each `{"name": str, "arguments": dict | str, "id": optional}`."""
        _check_common(delay)
        if not calls:
            raise ValueError("tool_calls needs at least one call")
        specs = []
        for call in calls:
            arguments = call.get("arguments", {})
            if not isinstance(arguments, str):
                arguments = ENCODER.encode(arguments).decode()
            specs.append(ToolCall(call.get("id"), str(call["name"]), arguments))
        return cls(
            "tool_calls",
            content=text,
            chunks=split_tokens(text) if text else (),
            calls=tuple(specs),
            reasoning=reasoning,
            finish_reason="tool_calls",
            delay=delay,
            headers=_header_items(headers),
        )

    @classmethod
    def error(
        cls,
        status: int,
        *,
        message: str | None = None,
        type: str | None = None,
        code: str | None = None,
        retry_after: float | str | None = None,
        retry_after_ms: int | None = None,
        http_status: int | None = None,
        delay: float = 0.0,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """An HTTP error with the route's error body and optional Retry-After headers.

        `http_status` sends that body with another status instead, e.g. `200`, as some
        proxies do (`status` then only shapes the body: its type, Gemini's `code`).
        """
        _check_common(delay)
        if not 400 <= status <= 599:
            raise ValueError("error status must be in 400..599")
        if http_status is not None and not 100 <= http_status <= 599:
            raise ValueError("http_status must be in 100..599")
        if message is None:
            try:
                message = f"{http.HTTPStatus(status).phrase} (mock)"
            except ValueError:
                message = f"Mock error {status}"
        spec = ErrorSpec(message, type, code)
        if type is None:
            type = _ERROR_TYPES.get(
                status, "server_error" if status >= 500 else "invalid_request_error"
            )
        items = list(_header_items(headers))
        if retry_after is not None:
            value = retry_after
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            items.append(("Retry-After", str(value)))
        if retry_after_ms is not None:
            items.append(("retry-after-ms", str(retry_after_ms)))
        return cls(
            "error",
            status=status,
            body=error_body(message, type, code),
            delay=delay,
            headers=tuple(items),
            error_spec=spec,
            http_status=http_status or 0,
        )

    @classmethod
    def reset(
        cls, *, after_chunks: int = 0, delay: float = 0.0, headers: Mapping[str, str] | None = None
    ) -> Reply:
        """Abort the TCP connection: before any byte, or after `after_chunks` events/part body."""
        _check_common(delay, after_chunks)
        return cls("reset", after_chunks=after_chunks, delay=delay, headers=_header_items(headers))

    @classmethod
    def stall(
        cls,
        *,
        after_chunks: int = 0,
        keepalive: float = 0.0,
        delay: float = 0.0,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """Stop answering (before headers or after `after_chunks` events) until close/hang-up.

        With `keepalive` > 0 a stalled stream sends the format's keep-alive (an SSE
        comment, an Anthropic `ping` event, a blank NDJSON line) every `keepalive`
        seconds: alive on the wire, but no events.
        """
        _check_common(delay, after_chunks)
        if keepalive < 0:
            raise ValueError("keepalive must be >= 0")
        return cls(
            "stall",
            after_chunks=after_chunks,
            token_delay=keepalive,
            delay=delay,
            headers=_header_items(headers),
        )

    @classmethod
    def malformed(
        cls, *, after_chunks: int = 0, delay: float = 0.0, headers: Mapping[str, str] | None = None
    ) -> Reply:
        """Invalid JSON: a broken 200 body, or one bad SSE event after `after_chunks` events."""
        _check_common(delay, after_chunks)
        return cls(
            "malformed", after_chunks=after_chunks, delay=delay, headers=_header_items(headers)
        )

    @classmethod
    def truncated(
        cls, *, after_chunks: int = 1, delay: float = 0.0, headers: Mapping[str, str] | None = None
    ) -> Reply:
        """End cleanly too early: no `[DONE]` after `after_chunks` events, or half a JSON body."""
        _check_common(delay, after_chunks)
        return cls(
            "truncated", after_chunks=after_chunks, delay=delay, headers=_header_items(headers)
        )

    @classmethod
    def end_unfinished(
        cls, *, after_chunks: int = 1, delay: float = 0.0, headers: Mapping[str, str] | None = None
    ) -> Reply:
        """End "cleanly" but unfinished: `after_chunks` events, then the end marker.

        What llama.cpp's server does to a running stream when another request arrives:
        the role chunk, then `data: [DONE]`, with no finish reason. Anthropic gets
        `message_stop` without the `message_delta` that carries `stop_reason`; Gemini
        and Ollama, whose last event is the finish itself, get the end of the body.
        `after_chunks` must be fewer than the events before the finish. A non-streaming
        request gets the echo answer with no finish reason (`finish_reason: null`,
        Anthropic `stop_reason: null`, no Gemini `finishReason`, Ollama `done: false`).
        """
        _check_common(delay, after_chunks)
        return cls(
            "unfinished", after_chunks=after_chunks, delay=delay, headers=_header_items(headers)
        )

    @classmethod
    def stream_error(
        cls,
        error: Mapping[str, Any],
        *,
        after_chunks: int = 1,
        delay: float = 0.0,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """An in-stream error event after `after_chunks` events (non-stream: a 500).

        OpenAI gets `{"error": error}` as given; the other formats render `message`,
        `type` and `code` their own way (Anthropic an `error` event, Ollama an
        `{"error": ...}` line, Gemini `{"error": {"code", "message", "status"}}`).
        """
        _check_common(delay, after_chunks)
        message = str(error.get("message", "Mock stream error"))
        given_type = error.get("type")
        type_ = str(given_type or "server_error")
        code = error.get("code")
        return cls(
            "stream_error",
            status=500,
            body=error_body(message, type_, None if code is None else str(code)),
            event=b"data: " + ENCODER.encode({"error": dict(error)}) + b"\n\n",
            after_chunks=after_chunks,
            delay=delay,
            headers=_header_items(headers),
            error_spec=ErrorSpec(
                message,
                None if given_type is None else str(given_type),
                None if code is None else str(code),
            ),
        )

    @classmethod
    def endless(
        cls, *, after_chunks: int = 0, delay: float = 0.0, headers: Mapping[str, str] | None = None
    ) -> Reply:
        """An event that never ends: after `after_chunks` events, the start of one more
        (an SSE `data:` field, an NDJSON line) and then filler, 64 KiB a write, with no line
        end, until the client hangs up. Non-stream: a JSON body that never ends."""
        _check_common(delay, after_chunks)
        return cls(
            "endless", after_chunks=after_chunks, delay=delay, headers=_header_items(headers)
        )

    @classmethod
    def raw(
        cls,
        body: bytes,
        *,
        status: int = 200,
        content_type: str = "text/event-stream",
        write_size: int | None = None,
        delay: float = 0.0,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """Replay recorded bytes exactly (e.g. a captured stream), in `write_size` writes."""
        _check_text_args(write_size, 0.0, delay)
        return cls(
            "raw",
            status=status,
            body=body,
            chunk_size=write_size,
            headers=(("Content-Type", content_type), *_header_items(headers)),
            delay=delay,
        )

    @classmethod
    def html(
        cls,
        status: int = 200,
        *,
        page: bytes | None = None,
        delay: float = 0.0,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """An HTML page instead of the API's answer (to streamed requests too): a captive
        portal's sign-in page by default, nginx's own page for 502."""
        if page is None:
            page = hostile.NGINX_502 if status == 502 else hostile.CAPTIVE_PORTAL
        return cls.raw(
            page,
            status=status,
            content_type="text/html; charset=utf-8",
            delay=delay,
            headers=headers,
        )

    @classmethod
    def unstreamed(
        cls,
        text: str | None = None,
        *,
        delay: float = 0.0,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """Answer a streamed request with the whole non-streamed JSON body of the route's
        format (as LiteLLM does on `/v1/messages` for some models); `text` or the echo."""
        _check_common(delay)
        return cls("unstreamed", content=text, delay=delay, headers=_header_items(headers))

    @classmethod
    def gzip_bomb(
        cls,
        size: int = 1 << 30,
        *,
        status: int = 200,
        content_type: str = "application/json",
        delay: float = 0.0,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """A gzip-encoded body (about `size`/1000 bytes on the wire) that inflates to
        `size` bytes of never-ending JSON: a decompression bomb (an error body with a
        `status` >= 400)."""
        if size < 1:
            raise ValueError("size must be >= 1")
        return cls.raw(
            hostile.gzip_bomb(size),
            status=status,
            content_type=content_type,
            write_size=64 * 1024,
            delay=delay,
            headers={"Content-Encoding": "gzip", **(headers or {})},
        )

    @classmethod
    def nested(
        cls,
        depth: int = 100_000,
        *,
        status: int = 200,
        after_chunks: int = 0,
        delay: float = 0.0,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """JSON nested `depth` deep: a body (with `status`, an error body when >= 400)
        whose one unknown field is an array that deep, or for a stream one such event
        after `after_chunks` good events."""
        _check_common(delay, after_chunks)
        if depth < 1:
            raise ValueError("depth must be >= 1")
        return cls(
            "nested",
            status=status,
            depth=depth,
            after_chunks=after_chunks,
            delay=delay,
            headers=_header_items(headers),
        )


def _check_text_args(chunk_size: int | None, token_delay: float, delay: float) -> None:
    _check_common(delay)
    if chunk_size is not None and chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    if token_delay < 0:
        raise ValueError("token_delay must be >= 0")
