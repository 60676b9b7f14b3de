"""Incremental Server-Sent-Events decoder.

Follows WHATWG HTML 9.2.6 "Interpreting an event stream" exactly: LF, CR and CRLF line
ends (also when a CRLF is split across reads), one leading UTF-8 BOM stripped, comments,
multi-line ``data``, ``event``/``id``/``retry`` fields, dispatch only on a blank line with a
non-empty data buffer, and an unterminated event discarded at end of stream.

The decoder is I/O-free: feed it the raw bytes of a response body in slices of any size and
it returns the events completed by each slice.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from contextlib import suppress
from io import BytesIO
from typing import NoReturn

import msgspec

from llmfast.errors import ResponseTooLargeError

__all__ = ["SSEDecoder", "SSEEvent", "parse"]

_BOM = b"\xef\xbb\xbf"
_NO_LIMIT = sys.maxsize


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

    Work is linear in the bytes fed, however the lines are cut: an unfinished line is kept
    as the slices it came in and joined once, when its end arrives. ``max_event_bytes``
    (``None``: no limit) bounds the memory one event may take: no line (complete or still
    arriving) and no event's data (its ``data`` values, each with its LF) may be longer;
    beyond it [`feed`][llmfast.SSEDecoder.feed] raises
    [`ResponseTooLargeError`][llmfast.errors.ResponseTooLargeError] and drops the event
    (events completed before it are returned first, the error comes with the next call).
    """

    __slots__ = (
        "_bom",
        "_cap",
        "_cr",
        "_data",
        "_dirty",
        "_error",
        "_event",
        "_id",
        "_last_id",
        "_limit",
        "_more",
        "_parts",
        "_pending",
        "_reconnect",
        "_retry",
        "_size",
        "_unreported",
    )

    def __init__(self, max_event_bytes: int | None = None) -> None:
        if max_event_bytes is not None and max_event_bytes < 1:
            raise ValueError("max_event_bytes must be at least 1 (or None: no limit)")
        self._limit = max_event_bytes
        self._cap = max_event_bytes or _NO_LIMIT
        self._parts: list[bytes] = []  # an incomplete line (or a possible BOM), as fed
        self._pending = 0  # bytes in _parts
        self._size = 0  # bytes of the current block's data buffer
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
        self._error: ResponseTooLargeError | None = None  # sticky until close()
        self._unreported = False  # _error was kept for the next call, not raised yet

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
        return bool(self._parts) or self._data is not None or self._dirty

    def feed(self, data: bytes) -> list[SSEEvent]:
        """Consume the next slice of the stream; return the events it completed."""
        if self._error is not None:
            self._fail()
        if self._bom:
            if self._parts:
                data = b"".join(self._parts) + data  # fewer than 3 bytes were kept
                self._parts.clear()
                self._pending = 0
            if len(data) < 3 and _BOM.startswith(data):
                if data:  # too few bytes to tell whether a BOM starts the stream
                    self._parts.append(data)
                    self._pending = len(data)
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
        parts = self._parts
        if 10 not in data and 13 not in data:  # no line end: the line goes on (two memchr)
            parts.append(data)
            self._pending += len(data)
            if self._pending > self._cap:
                self._overflow()
                self._fail()
            return []
        if parts:
            parts.append(data)
            data = b"".join(parts)
            parts.clear()
        if 13 in data:  # a CR (int membership is a plain memchr)
            # bytes.splitlines() splits on LF, CR and CRLF only (unlike str.splitlines()).
            lines = data.splitlines()
            last = data[-1]
            if last == 13:
                self._cr = True
            elif last != 10:
                parts.append(lines.pop())
        else:
            lines = data.split(b"\n")
            rest = lines.pop()
            if rest:
                parts.append(rest)
        self._pending = len(parts[0]) if parts else 0

        events: list[SSEEvent] = []
        first = self._data
        more = self._more
        event = self._event
        ident = self._id
        retry = self._retry
        last_id = self._last_id
        dirty = self._dirty
        size = self._size
        cap = self._cap
        check_lines = len(data) > cap  # else no line here can be too long
        error: ResponseTooLargeError | None = None
        for line in lines:
            if check_lines and len(line) > cap:
                error = self._overflow()
                break
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
                size = 0
                continue
            if line.startswith(b"data: "):  # fast path
                size += len(line) - 5
                if size > cap:
                    error = self._overflow()
                    break
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
                size += len(raw) + 1
                if size > cap:
                    error = self._overflow()
                    break
                value = raw.decode("utf-8", "replace")
            if first is None:
                first = value
            elif more is None:
                more = [first, value]
            else:
                more.append(value)
        self._event = event
        self._id = ident
        self._retry = retry
        self._last_id = last_id
        self._dirty = dirty
        if error is None and self._pending > cap:
            error = self._overflow()  # the line still arriving is already too long
        if error is None:
            self._data = first
            self._more = more
            self._size = size
            return events
        if not events:
            self._fail()
        return events  # the error comes with the next call, once these are out

    def feed_payloads(self, data: bytes) -> list[bytes | SSEEvent]:
        """[`feed`][llmfast.SSEDecoder.feed], with the data of plain events left as raw bytes.

        The common framing, ``data: <payload>`` and a blank line with no other field, comes
        out as the payload's undecoded UTF-8 bytes (for ``json.decode`` to read directly);
        it stands for ``SSEEvent("message", payload.decode("utf-8", "replace"), id)``, ``id``
        being [`last_event_id`][llmfast.SSEDecoder.last_event_id]. Anything else in the
        slice (comments, other fields, multi-line data, CR line ends, an event split across
        slices) goes through the exact decoder and comes out as ``SSEEvent``.
        """
        out: list[bytes | SSEEvent] = []
        if self._error is not None:
            self._fail()
        if 13 in data:  # CR line ends: the exact decoder
            self._feed_into(out, data)
            return out
        if self._bom and not self._parts and len(data) >= 3:
            self._bom = False
            if data.startswith(_BOM):
                data = data[3:]
        if self._parts or self._data is not None or self._dirty or self._bom or self._cr:
            end = data.find(b"\n\n")  # the end of the event in progress (or of a blank run)
            if end < 0:
                self._feed_into(out, data)
                return out
            self._feed_into(out, data[: end + 2])
            if self._error is not None:  # that event was too large: none after it goes out
                return out
            data = data[end + 2 :]
            if self._parts or self._data is not None or self._dirty or self._bom or self._cr:
                self._feed_into(out, data)  # pragma: no cover - a "\n\n" always ends a block
                return out
        cap = self._cap
        if data.endswith(b"\n\n") and data.startswith(b"data: "):
            # Whole plain events only: "data: " P1 "\n\ndata: " P2 ... Pn "\n\n" with no LF
            # in any payload. (A join and a memchr cost far less than bytes.count, which
            # scans a byte at a time.) The split is of ``data`` itself, its ends cut from
            # the first and last pieces: a slice of the whole would copy it once more.
            payloads = data.split(b"\n\ndata: ")
            payloads[0] = payloads[0][6:]
            payloads[-1] = payloads[-1][:-2]
            if 10 not in b"".join(payloads):
                if len(data) > self._cap:
                    self._check_sizes(payloads, self._cap, bool(out))
                out += payloads
                self._last_id = self._id
                return out
        n = len(data)
        pos = 0
        find = data.find
        startswith = data.startswith
        while pos < n and startswith(b"data: ", pos):
            lf = find(b"\n", pos + 6)
            if lf < 0 or lf + 1 >= n or data[lf + 1] != 10:
                break  # multi-line data, or the event goes on in the next slice
            if lf - pos > cap:  # the line is too long
                self._overflow()
                if not out:
                    self._fail()
                return out
            out.append(data[pos + 6 : lf])
            pos = lf + 2
        if pos:
            self._last_id = self._id  # what the blank lines passed did
        if pos < n:
            self._feed_into(out, data[pos:] if pos else data)
        return out

    def feed_lines(self, data: bytes) -> list[bytes] | None:
        """The events of a slice that is whole one-line events only (``data: <payload>``
        and a blank line, the common framing), each as its line with its LF; ``None``
        for any other slice, which goes to [`feed_payloads`][llmfast.SSEDecoder.feed_payloads]
        instead. The lines are cut by ``memchr``, far cheaper than a search for
        ``LF LF data:``. The caller checks that each line is a ``data:`` field; if one
        is not, the slice may still go to ``feed_payloads`` (this call leaves the
        decoder as it found it)."""
        if (  # CR line ends, an event split across slices, or one midway: not this
            not data.startswith(b"data: ") or not data.endswith(b"\n\n") or 13 in data
        ) or (self._parts or self._data is not None or self._dirty or self._cr or self._error):
            return None
        if data.find(b"\n") == len(data) - 2:  # one event: a live stream's usual read
            if len(data) - 2 > self._cap:
                return None
            self._bom = False  # the stream's start is passed, with no BOM
            return [data[:-1]]
        lines = BytesIO(data).readlines()  # (a BytesIO starts out sharing ``data``)
        count = len(lines)
        if count & 1 or lines[1::2].count(b"\n") != count >> 1:
            return None  # an event of more than one line
        events = lines[::2]
        if len(data) > self._cap and max(map(len, events)) - 1 > self._cap:
            return None  # an event over the limit: feed_payloads raises for it
        self._bom = False  # the stream's start is passed, with no BOM
        return events

    def _feed_into(self, out: list[bytes | SSEEvent], data: bytes) -> None:
        """``out += self.feed(data)``; an overflow met after events already in ``out``
        is kept for the next call, so that those events go out first."""
        try:
            out += self.feed(data)
        except ResponseTooLargeError:
            if not out:
                raise
            self._unreported = True

    def _check_sizes(self, payloads: list[bytes], limit: int, before: bool) -> None:
        """Cut ``payloads`` at the first one over ``limit``: raise, or keep the error for
        the next call when some events (``before`` or in ``payloads``) go out first."""
        for i, payload in enumerate(payloads):
            if len(payload) + 6 > limit:  # its line: "data: " and the payload
                del payloads[i:]
                self._overflow()
                if not payloads and not before:
                    self._fail()
                return

    def _fail(self) -> NoReturn:
        assert self._error is not None
        self._unreported = False
        raise self._error

    def _overflow(self) -> ResponseTooLargeError:
        """Drop the event in progress; the error to raise, now and on every call until
        ``close()``."""
        self._parts.clear()
        self._pending = self._size = 0
        self._data = self._more = None
        limit = self._limit
        self._unreported = True
        error = self._error = ResponseTooLargeError(
            f"a server-sent event exceeds max_event_bytes={limit}", limit=limit
        )
        return error

    def close(self) -> list[SSEEvent]:
        """Signal end of stream: discard any unterminated event and reset for a new stream.

        Always returns ``[]`` (the spec never dispatches an event cut off by end of stream),
        or raises the [`ResponseTooLargeError`][llmfast.errors.ResponseTooLargeError] met
        by the last ``feed`` after the events it returned.
        """
        error = self._error if self._unreported else None
        self._error = None
        self._unreported = False
        self._parts.clear()
        self._pending = self._size = 0
        self._cr = False
        self._bom = True
        self._data = None
        self._more = None
        self._event = ""
        self._id = self._last_id
        self._retry = None
        self._dirty = False
        if error is not None:
            raise error
        return []


def parse(chunks: Iterable[bytes]) -> list[SSEEvent]:
    """Decode a whole stream given as byte chunks; return all dispatched events."""
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    events += decoder.close()
    return events
