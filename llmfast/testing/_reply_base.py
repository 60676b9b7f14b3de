"""The data of a [`Reply`][llmfast.testing.Reply] and the small types it holds
(import them from ``llmfast.testing.replies``)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, NamedTuple

if TYPE_CHECKING:
    from typing_extensions import Self


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


def _check_text_args(chunk_size: int | None, token_delay: float, delay: float) -> None:
    _check_common(delay)
    if chunk_size is not None and chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    if token_delay < 0:
        raise ValueError("token_delay must be >= 0")


@dataclass(frozen=True, slots=True)
class _ReplyData:
    """The fields of a reply: its arguments in precomputed form."""

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

    def with_cache(self, *, read: int = 0, write: int = 0) -> Self:
        """This reply, reporting ``read`` prompt tokens served from the provider's
        prompt cache and ``write`` written to it (at most the prompt's tokens), in each
        format's own way: OpenAI ``prompt_tokens_details.cached_tokens``, Anthropic
        ``cache_read_input_tokens`` / ``cache_creation_input_tokens`` beside a smaller
        ``input_tokens``, Gemini ``cachedContentTokenCount`` (Ollama reports none)."""
        if read < 0 or write < 0:
            raise ValueError("cached token counts must be >= 0")
        return dataclasses.replace(self, cached_tokens=read, cache_write_tokens=write)
