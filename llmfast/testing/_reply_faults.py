"""The fault replies of [`Reply`][llmfast.testing.Reply]: HTTP errors, resets, stalls,
malformed, truncated, unfinished, endless and nested bodies and streams."""

from __future__ import annotations

import http
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._payloads import ENCODER, error_body
from ._reply_base import ErrorSpec, _check_common, _header_items, _ReplyData

if TYPE_CHECKING:
    from typing_extensions import Self

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


class _Faults(_ReplyData):
    """The fault constructors of `Reply` (a base class)."""

    __slots__ = ()

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
    ) -> Self:
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
    ) -> Self:
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
    ) -> Self:
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
    ) -> Self:
        """Invalid JSON: a broken 200 body, or one bad SSE event after `after_chunks` events."""
        _check_common(delay, after_chunks)
        return cls(
            "malformed", after_chunks=after_chunks, delay=delay, headers=_header_items(headers)
        )

    @classmethod
    def truncated(
        cls, *, after_chunks: int = 1, delay: float = 0.0, headers: Mapping[str, str] | None = None
    ) -> Self:
        """End cleanly too early: no `[DONE]` after `after_chunks` events, or half a JSON body."""
        _check_common(delay, after_chunks)
        return cls(
            "truncated", after_chunks=after_chunks, delay=delay, headers=_header_items(headers)
        )

    @classmethod
    def end_unfinished(
        cls, *, after_chunks: int = 1, delay: float = 0.0, headers: Mapping[str, str] | None = None
    ) -> Self:
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
    ) -> Self:
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
    ) -> Self:
        """An event that never ends: after `after_chunks` events, the start of one more
        (an SSE `data:` field, an NDJSON line) and then filler, 64 KiB a write, with no line
        end, until the client hangs up. Non-stream: a JSON body that never ends."""
        _check_common(delay, after_chunks)
        return cls(
            "endless", after_chunks=after_chunks, delay=delay, headers=_header_items(headers)
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
    ) -> Self:
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
