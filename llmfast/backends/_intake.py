"""Taking a response in, for every HTTP backend: bounded body reads, the content type
of a streamed answer, and what is shown of a body that is not the API's.

- `read_body` reads a whole body in pieces and
  counts the decoded (decompressed) bytes, ending in ``ResponseTooLargeError`` past
  ``PoolConfig.max_body_bytes``: a gzip bomb never reaches memory.
- `stream_kind` decides what a stream
  request's answer is: the event stream, one JSON body (delivered as a one-chunk
  stream, or mapped like a status error when it is an error), or something else
  (an HTML page: a non-retryable ``DecodeError``). A missing or generic content type
  (``application/octet-stream``, ``text/plain``) is judged by the body's first bytes.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal

from llmfast._error_body import excerpt
from llmfast.errors import DecodeError, LLMFastError, ResponseTooLargeError
from llmfast.pool import map_transport_error
from llmfast.types import (
    ChatCompletion,
    ChatCompletionChunk,
    ChunkChoice,
    Delta,
    FunctionDelta,
    ToolCallDelta,
)

if TYPE_CHECKING:
    import aiohttp

__all__ = [
    "NDJSON_TYPES",
    "SSE_TYPES",
    "ErrorBody",
    "chunk_of",
    "is_json",
    "media_type",
    "not_api_body",
    "read_body",
    "read_head",
    "read_some",
    "stream_kind",
]

SSE_TYPES = frozenset({"text/event-stream"})
"""Media types of a Server-Sent Events stream."""
NDJSON_TYPES = frozenset(
    {
        "application/x-ndjson",
        "application/ndjson",
        "application/jsonl",
        "application/x-jsonl",
        "application/jsonlines",
        "application/x-jsonlines",
        "application/stream+json",
    }
)
"""Media types of a newline-delimited JSON stream (Ollama sends the first)."""

_GENERIC = frozenset({"", "application/octet-stream", "binary/octet-stream", "text/plain"})
_HEAD_BYTES = 4096  # what is read of a body that is not the API's, to show its start
_SSE_START = re.compile(rb"(?:data|event|id|retry)?:")
_SKIP = b"\xef\xbb\xbf \t\r\n"


class ErrorBody(DecodeError):
    """An error body where a result was expected (a decoder raises it; the backend maps
    it with the response's real status and headers, like a status error).

    Attributes:
        body: the decoded body.
    """

    def __init__(self, body: Any) -> None:
        self.body = body
        super().__init__("an error body where a result was expected")


def media_type(resp: aiohttp.ClientResponse) -> str:
    """The response's media type, lower-cased, without parameters (``""`` if none)."""
    value = resp.headers.get("Content-Type")
    if value is None:
        return ""
    return value.partition(";")[0].strip().lower()


def is_json(media: str) -> bool:
    """True for ``application/json`` and ``+json`` types."""
    return media == "application/json" or media.endswith("+json")


def stream_kind(
    media: str, stream_types: frozenset[str], head: bytes | None
) -> Literal["stream", "json", "other", "sniff"]:
    """What a stream request's answer is, from its media type (and first bytes when the
    type is missing or generic; ``"sniff"``: read them first)."""
    if media in stream_types:
        return "stream"
    if is_json(media):
        return "json"
    if media not in _GENERIC:
        return "other"
    if head is None:
        return "sniff"
    start = head.lstrip(_SKIP)
    if "text/event-stream" in stream_types:
        if _SSE_START.match(start):
            return "stream"
    elif start[:1] == b"{":  # NDJSON: one object per line
        return "stream"
    return "json" if start[:1] in (b"{", b"[") else "other"


async def read_head(resp: aiohttp.ClientResponse, deadline: float | None) -> bytes:
    """The first bytes of the body (b"" for an empty body)."""
    try:
        return await resp.content.readany()
    except Exception as exc:
        raise map_transport_error(exc, "reading the response", deadline) from exc


async def read_body(
    resp: aiohttp.ClientResponse,
    limit: int,
    deadline: float | None = None,
    head: bytes = b"",
) -> bytes:
    """The whole body (after ``head``, already read), at most ``limit`` decoded bytes.

    Read in pieces and counted as it is decompressed; past the limit the read stops
    with ``ResponseTooLargeError`` (the caller closes the connection).
    """
    length = resp.content_length
    if length is not None and length > limit and "Content-Encoding" not in resp.headers:
        raise _too_large(limit)
    reader = resp.content
    parts = [head] if head else []
    size = len(head)
    try:
        while True:
            data = await reader.readany()
            if not data:
                break
            size += len(data)
            if size > limit:
                raise _too_large(limit)
            parts.append(data)
    except LLMFastError:
        raise
    except Exception as exc:
        raise map_transport_error(exc, "reading the response", deadline) from exc
    if len(parts) == 1:
        return parts[0]
    return b"".join(parts)


async def read_some(resp: aiohttp.ClientResponse, head: bytes = b"") -> bytes:
    """Up to a few KiB of the body, to show its start in an error (failures ignored)."""
    parts = [head]
    size = len(head)
    try:
        while size < _HEAD_BYTES:
            data = await resp.content.readany()
            if not data:
                break
            parts.append(data)
            size += len(data)
    except Exception:  # the start of the body is only shown; a broken read shows less
        pass
    return b"".join(parts)[:_HEAD_BYTES]


def _too_large(limit: int) -> ResponseTooLargeError:
    return ResponseTooLargeError(
        f"the response body is larger than max_body_bytes ({limit} bytes)", limit=limit
    )


def not_api_body(media: str, raw: bytes, expected: str) -> DecodeError:
    """The error for a body of the wrong type: names the type and shows its start."""
    shown = excerpt(raw.decode("utf-8", "replace"))
    kind = media or "no content type"
    return DecodeError(f"expected {expected}, got {kind}; the body starts: {shown!r}")


def chunk_of(completion: ChatCompletion) -> ChatCompletionChunk:
    """A whole completion as one chunk that accumulates to the same completion."""
    choices = []
    for choice in completion.choices:
        message = choice.message
        calls = None
        if message.tool_calls:
            calls = [
                ToolCallDelta(
                    index,
                    call.id,
                    call.type,
                    FunctionDelta(call.function.name, call.function.arguments),
                )
                for index, call in enumerate(message.tool_calls)
            ]
        delta = Delta(
            role=message.role,
            content=message.content,
            refusal=message.refusal,
            tool_calls=calls,
            reasoning_content=message.reasoning_content,
            reasoning_signature=message.reasoning_signature,
        )
        choices.append(
            ChunkChoice(
                index=choice.index,
                delta=delta,
                finish_reason=choice.finish_reason,
                logprobs=choice.logprobs,
                provider_finish_reason=choice.provider_finish_reason,
            )
        )
    return ChatCompletionChunk(
        id=completion.id,
        created=completion.created,
        model=completion.model,
        choices=choices,
        usage=completion.usage,
        system_fingerprint=completion.system_fingerprint,
    )
