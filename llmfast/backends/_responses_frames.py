"""The framing of a Responses event stream, split in bulk.

Every Responses event comes as ``event: <type>\\ndata: <json>\\n\\n``; the type is in the
JSON too. `Frames` cuts what arrived at its blank lines and takes the ``data`` of each
whole block of that shape (or of a lone ``data:`` line) as raw bytes, for msgspec to
decode directly: no per-line work and no string copy per event, which halves the cost of
framing against the general decoder. Any other block (comments, ``id``/``retry``
fields, multi-line data, ``data:`` without its space) goes through the exact
[`SSEDecoder`][llmfast.SSEDecoder], whole, so its meaning is the standard's; a body
with CR line ends goes through it entirely. Memory is bounded: an event longer than
``max_event_bytes`` raises ``ResponseTooLargeError``.
"""

from __future__ import annotations

import sys

from llmfast.backends.sse import SSEDecoder, SSEEvent
from llmfast.errors import ResponseTooLargeError

__all__ = ["Frames"]

_BOM = b"\xef\xbb\xbf"


class Frames:
    """Feed it a body's bytes in slices of any size; get the data of the events completed."""

    __slots__ = ("_error", "_exact", "_exact_only", "_limit", "_parts", "_size", "_start")

    def __init__(self, max_event_bytes: int | None = None) -> None:
        self._exact: SSEDecoder | None = None  # made when a block needs it (most streams: never)
        self._limit = sys.maxsize if max_event_bytes is None else max_event_bytes
        self._parts: list[bytes] = []  # an unfinished block, as the slices it came in
        self._size = 0
        self._start = True  # a leading BOM may still come
        self._exact_only = False
        self._error: ResponseTooLargeError | None = None

    def feed(self, data: bytes) -> list[bytes | str]:
        """The data of every event ``data`` completes (bytes, or str from the exact path).

        An event over the limit raises, after the events before it were returned."""
        if self._error is not None:
            raise self._error
        if self._exact_only:
            return [event.data for event in self._exact_feed(data)]
        if self._start:
            if len(data) + self._size < 3 and _BOM.startswith(b"".join(self._parts) + data):
                self._parts.append(data)
                self._size += len(data)
                return []
            self._start = False
            data = b"".join(self._parts) + data if self._parts else data
            self._parts.clear()
            self._size = 0
            if data.startswith(_BOM):
                data = data[3:]
        if 13 in data:  # CR line ends: the exact decoder, from here on
            self._exact_only = True
            head = b"".join(self._parts)
            self._parts.clear()
            return [event.data for event in self._exact_feed(head + data)]
        parts = self._parts
        if b"\n\n" not in data and not (parts and data[:1] == b"\n" and parts[-1].endswith(b"\n")):
            if data:  # no block ends here: keep the slice (linear, however it is cut)
                parts.append(data)
                self._size += len(data)
                if self._size > self._limit:
                    raise self._too_large()
            return []
        if parts:
            parts.append(data)
            data = b"".join(parts)
            parts.clear()
        end = data.rfind(b"\n\n")
        rest = data[end + 2 :]
        if rest:
            parts.append(rest)
        self._size = len(rest)
        limit = self._limit
        # The usual body, every block "event: T\ndata: J": its lines come in threes, the
        # third empty; checked and cut in bulk (C loops), no Python step per line. The
        # lines hold no LF, so in the LF-joined first (second) lines every LF is a
        # separator: n - 1 of them each followed by the field name, plus a first line
        # starting with it, is every line starting with it.
        lines = data.split(b"\n")  # those of data[:end], then "" and rest's: dropped
        count = len(lines) - 2 - rest.count(b"\n")
        del lines[count:]
        if count % 3 == 2 and end <= limit and not any(lines[2::3]):
            n = count // 3 + 1
            heads = b"\n".join(lines[0::3])
            payloads = lines[1::3]
            joined = b"\n".join(payloads)
            if (
                heads.startswith(b"event: ")
                and heads.count(b"\nevent: ") == n - 1
                and joined.startswith(b"data: ")
                and joined.count(b"\ndata: ") == n - 1
            ):
                return [payload[6:] for payload in payloads]
        blocks = data[:end].split(b"\n\n")
        out: list[bytes | str] = []
        for block in blocks:
            if len(block) > limit:
                error = self._too_large()
                if not out:
                    raise error
                self._error = error  # raised by the next call, once these are passed on
                return out
            if block.startswith(b"event: "):
                lf = block.find(b"\n")
                if lf > 0 and block.startswith(b"data: ", lf + 1) and block.find(b"\n", lf + 1) < 0:
                    out.append(block[lf + 7 :])
                    continue
            elif block.startswith(b"data: ") and b"\n" not in block:
                out.append(block[6:])
                continue
            if block:
                out.extend(event.data for event in self._exact_feed(block + b"\n\n"))
        if self._size > limit:
            raise self._too_large()
        return out

    def _exact_feed(self, data: bytes) -> list[SSEEvent]:
        exact = self._exact
        if exact is None:
            limit = self._limit
            exact = self._exact = SSEDecoder(None if limit == sys.maxsize else limit)
        return exact.feed(data)

    def _too_large(self) -> ResponseTooLargeError:
        self._parts.clear()
        self._size = 0
        limit = self._limit
        return ResponseTooLargeError(
            f"a server-sent event exceeds max_event_bytes={limit}", limit=limit
        )
