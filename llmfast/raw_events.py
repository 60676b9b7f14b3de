"""[`RawEvents`][llmfast.raw_events.RawEvents]: a stream's events as the upstream sent
them, typed only where something needs it.

A request made with ``Request(..., raw_events=True)`` asks the backend to keep a
stream's event payloads (the JSON after ``data:``) as the upstream's bytes instead of
decoding each into a [`ChatCompletionChunk`][llmfast.types.ChatCompletionChunk].
Today the OpenAI-compatible backend does so for chat streams; any other backend
ignores the flag and streams typed chunks as usual.

Every payload is still checked. A text delta that is byte for byte the stream's
template (its role event with a text in place of the role, or else its first plain
text delta) with another JSON string as its text, and any string as OpenAI's
``"obfuscation"`` padding, is kept as it came (its text read by msgspec, nothing else
decoded); so is each reasoning delta (``reasoning_content``) and each fragment of a
tool call's arguments after the first of its run. Every other event (the role, a
finish, usage, a tool call's start, an error event, any payload that differs
elsewhere) is decoded in full at once, into ``notable``. So malformed JSON is a
``DecodeError``, an in-stream error a ``StreamEventError``, and a stream that ends
unfinished a ``StreamTruncatedError``, exactly as on the typed path.

A consumer that reads ``Response.batches()`` may take the bytes (``lines``, or
``sse()``: the events as they came, the network read itself when it held only them)
and forward them, as the gateway does. Anything else is unaffected: iterating a
``RawEvents`` (and so iterating the response chunk by chunk, which is what the cache,
coalescing, budgets and ``collect()`` do) yields every typed chunk, decoded on first
use.
"""

from __future__ import annotations

from collections.abc import Iterator

import msgspec

from llmfast.errors import DecodeError
from llmfast.types import ChatCompletionChunk

__all__ = ["RawEvents", "sse_of"]

_decode_chunk = msgspec.json.Decoder(ChatCompletionChunk).decode


class RawEvents:
    """The events one network read of a raw-mode stream completed (a ``batches()`` item).

    Attributes:
        lines: every event's line as the upstream sent it (``data: ``, the JSON payload,
            LF), in order (the end marker ``[DONE]`` left out).
        notable: the typed chunks of the events that carry more than one string (a
            text, a reasoning text, one tool call's arguments) for one choice, by their
            index in ``lines``; the others are such deltas.
        end: True when the read also held the stream's end marker: no event follows.
    """

    __slots__ = ("_chunks", "_read", "_size", "end", "lines", "notable")

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.notable: dict[int, ChatCompletionChunk] = {}
        self.end = False
        self._chunks: list[ChatCompletionChunk] | None = None
        self._read: bytes | None = None  # the read, when it is these events' bytes and
        self._size = 0  # then (in the last bytes beyond ``_size``) the end marker's

    @property
    def payloads(self) -> list[bytes]:
        """Every event's JSON payload, as the upstream's bytes."""
        return [_payload(line) for line in self.lines]

    def sse(self, after: bytes = b"") -> bytes:
        """These events as server-sent events (``data: PAYLOAD``, a blank line), then
        ``after``: the upstream's bytes, and the read itself (no copy) when it held
        these events and then ``after`` (``data: [DONE]`` and a blank line, say)."""
        read = self._read
        if read is not None and len(read) == self._size + len(after) and read.endswith(after):
            return read
        return sse_of(self.lines, after)

    def chunks(self) -> list[ChatCompletionChunk]:
        """Every event as a typed chunk (decoded on the first call; a ``DecodeError``
        if a payload does not fit the chunk type)."""
        chunks = self._chunks
        if chunks is None:
            notable = self.notable
            chunks = self._chunks = [
                notable[i] if i in notable else _typed(_payload(line))
                for i, line in enumerate(self.lines)
            ]
        return chunks

    def __iter__(self) -> Iterator[ChatCompletionChunk]:
        return iter(self.chunks())

    def __len__(self) -> int:
        return len(self.lines)

    def __repr__(self) -> str:
        return f"<RawEvents {len(self.lines)} events, {len(self.notable)} notable>"


def sse_of(lines: list[bytes], after: bytes = b"") -> bytes:
    """Event ``lines`` (each ``data: PAYLOAD`` and its LF) as server-sent events, then
    ``after``, in one join (``after`` goes on the last line, a small copy)."""
    if not lines:
        return after
    pieces = lines.copy()
    pieces[-1] += b"\n" + after
    return b"\n".join(pieces)


def _payload(line: bytes) -> bytes:
    """The payload of an event's line (of its lines, for one whose data spans several)."""
    payload = line[6:-1]
    return payload.replace(b"\ndata: ", b"\n") if 10 in payload else payload


def _typed(payload: bytes) -> ChatCompletionChunk:
    try:
        chunk: ChatCompletionChunk = _decode_chunk(payload)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise DecodeError(f"malformed stream chunk: {exc}; data starts {payload[:200]!r}") from exc
    return chunk
