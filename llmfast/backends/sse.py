"""Incremental Server-Sent-Events decoder.

Follows WHATWG HTML 9.2.6 "Interpreting an event stream" exactly: LF, CR and CRLF line
ends (also when a CRLF is split across reads), one leading UTF-8 BOM stripped, comments,
multi-line ``data``, ``event``/``id``/``retry`` fields, dispatch only on a blank line with a
non-empty data buffer, and an unterminated event discarded at end of stream.

The decoder is I/O-free: feed it the raw bytes of a response body in slices of any size and
it returns the events completed by each slice.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import suppress

import msgspec

__all__ = ["SSEDecoder", "SSEEvent", "parse"]

_BOM = b"\xef\xbb\xbf"


class SSEEvent(msgspec.Struct, frozen=True, gc=False):
    """One dispatched event.

    ``event`` is ``"message"`` when no (or an empty) event field was given; ``data`` is the
    data buffer without its final LF; ``id`` is the last event ID at dispatch time (``None``
    if never set, ``""`` if reset); ``retry`` is the value of a valid ``retry`` field in the
    same block as this event, else ``None``.
    """

    event: str
    data: str
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Incremental, I/O-free ``text/event-stream`` decoder (WHATWG HTML 9.2.6).

    ``feed()`` any slice of the byte stream and get back the events it completed; call
    ``close()`` at end of stream. ``last_event_id`` and ``reconnection_time`` survive
    ``close()`` so the decoder can be reused for a reconnected stream.
    """

    __slots__ = (
        "_bom",
        "_buf",
        "_cr",
        "_data",
        "_dirty",
        "_event",
        "_id",
        "_last_id",
        "_more",
        "_reconnect",
        "_retry",
    )

    def __init__(self) -> None:
        self._buf = b""  # bytes of an incomplete line (or of a possible BOM at stream start)
        self._cr = False  # the last byte fed was CR: a LF starting the next feed is skipped
        self._bom = True  # the stream start (and its optional BOM) has not been passed yet
        self._data: str | None = None  # first data line of the block (None: buffer empty)
        self._more: list[str] | None = None  # all data lines, once there are two or more
        self._event = ""  # event type buffer
        self._id: str | None = None  # last event ID buffer
        self._last_id: str | None = None  # last event ID string (updated on blank lines)
        self._retry: int | None = None  # valid retry value seen in the current block
        self._reconnect: int | None = None  # sticky reconnection time
        self._dirty = False  # an event/id/retry field was seen in the current block

    @property
    def last_event_id(self) -> str | None:
        """The last event ID string (``None`` if never set, ``""`` if reset)."""
        return self._last_id

    @property
    def reconnection_time(self) -> int | None:
        """The last valid ``retry`` value seen anywhere in the stream, in milliseconds."""
        return self._reconnect

    @property
    def pending(self) -> bool:
        """True if an incomplete line or an undispatched (partial) event is buffered."""
        return bool(self._buf) or self._data is not None or self._dirty

    def feed(self, data: bytes) -> list[SSEEvent]:
        """Consume the next slice of the stream; return the events it completed."""
        if self._bom:
            if self._buf:
                data = self._buf + data
                self._buf = b""
            if len(data) < 3 and _BOM.startswith(data):
                self._buf = data  # too few bytes to tell whether a BOM starts the stream
                return []
            self._bom = False
            if data[:3] == _BOM:
                data = data[3:]
        if not data:
            return []
        if self._cr:
            self._cr = False
            if data[0] == 10:  # second half of a CRLF split across feeds
                data = data[1:]
                if not data:
                    return []
        if self._buf:
            data = self._buf + data
        if 13 in data:  # a CR (int membership is a plain memchr)
            # bytes.splitlines() splits on LF, CR and CRLF only (unlike str.splitlines()).
            lines = data.splitlines()
            last = data[-1]
            if last == 13:
                self._cr = True
                self._buf = b""
            elif last == 10:
                self._buf = b""
            else:
                self._buf = lines.pop()
        else:
            lines = data.split(b"\n")
            self._buf = lines.pop()

        events: list[SSEEvent] = []
        first = self._data
        more = self._more
        event = self._event
        ident = self._id
        retry = self._retry
        last_id = self._last_id
        dirty = self._dirty
        for line in lines:
            if not line:  # blank line: dispatch
                last_id = ident
                if first is not None:
                    if more is not None:
                        first = "\n".join(more)
                        more = None
                    events.append(SSEEvent(event or "message", first, ident, retry))
                    first = None
                event = ""
                retry = None
                dirty = False
                continue
            if line.startswith(b"data: "):  # fast path
                value = line[6:].decode("utf-8", "replace")
            else:
                colon = line.find(b":")
                if colon == 0:  # comment
                    continue
                if colon < 0:
                    name = line
                    raw = b""
                else:
                    name = line[:colon]
                    # strip exactly one leading space from the value
                    raw = line[colon + 2 if line.startswith(b" ", colon + 1) else colon + 1 :]
                if name != b"data":
                    if name == b"event":
                        event = raw.decode("utf-8", "replace")
                        dirty = True
                    elif name == b"id":
                        if b"\0" not in raw:
                            ident = raw.decode("utf-8", "replace")
                        dirty = True
                    elif name == b"retry":
                        if raw.isdigit():  # bytes.isdigit() accepts ASCII digits only
                            with suppress(ValueError):  # beyond sys.get_int_max_str_digits()
                                retry = self._reconnect = int(raw)
                        dirty = True
                    continue  # other fields are ignored
                value = raw.decode("utf-8", "replace")
            if first is None:
                first = value
            elif more is None:
                more = [first, value]
            else:
                more.append(value)
        self._data = first
        self._more = more
        self._event = event
        self._id = ident
        self._retry = retry
        self._last_id = last_id
        self._dirty = dirty
        return events

    def close(self) -> list[SSEEvent]:
        """Signal end of stream: discard any unterminated event and reset for a new stream.

        Always returns ``[]`` (the spec never dispatches an event cut off by end of stream).
        """
        self._buf = b""
        self._cr = False
        self._bom = True
        self._data = None
        self._more = None
        self._event = ""
        self._id = self._last_id
        self._retry = None
        self._dirty = False
        return []


def parse(chunks: Iterable[bytes]) -> list[SSEEvent]:
    """Decode a whole stream given as byte chunks; return all dispatched events."""
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    events += decoder.close()
    return events
