"""`Reply`: what the mock server answers to one request (content or a scripted fault)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from . import hostile
from ._payloads import ENCODER
from ._reply_base import (
    ErrorSpec,
    ReplyKind,
    ToolCall,
    _check_common,
    _check_text_args,
    _header_items,
    split_tokens,
)
from ._reply_faults import _Faults

__all__ = ["ErrorSpec", "Reply", "ReplyKind", "ToolCall", "split_tokens"]


class Reply(_Faults):
    """One scripted answer. Build it with the classmethods, not the constructor.

    Every reply takes `delay` (seconds to wait before sending headers) and `headers`
    (extra response headers). Fault replies count `after_chunks` in stream events for
    streaming requests (SSE events, or NDJSON lines for Ollama; for OpenAI the role
    chunk is the first event, for Anthropic `message_start`); their good events are the
    ones `Reply.echo()` would send. The same reply is rendered in the wire format of the
    route it answers (OpenAI, Anthropic, Ollama or Gemini). The fields hold the
    arguments in precomputed form.
    """

    __slots__ = ()

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
