"""Incremental, I/O-free NDJSON (newline-delimited JSON) decoder.

Feed it the raw bytes of a response body in slices of any size: a line may be split
anywhere across reads (inside a multi-byte UTF-8 character too). LF and CRLF line ends
are accepted, blank (or whitespace-only) lines are skipped, and a final line without a
newline is decoded by [`NDJSONDecoder.close`][llmfast.NDJSONDecoder.close]. Each line is decoded
with the decoder given (a msgspec ``Decoder(...).decode`` built once), so objects come out typed.
An unfinished line is kept as the slices it came in and joined once, so the work is linear
in the bytes fed; ``max_line_bytes`` bounds the memory one line may take.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Generic, NoReturn, TypeVar

import msgspec

from llmfast.errors import DecodeError, ResponseTooLargeError

__all__ = ["NDJSONDecoder", "parse"]

T = TypeVar("T")

_decode_any: Callable[[bytes], Any] = msgspec.json.Decoder().decode


class NDJSONDecoder(Generic[T]):
    """Splits a byte stream into lines and decodes each one.

    ``feed()`` returns the objects completed by a slice; ``close()`` (at end of stream)
    returns the object of a last line that had no newline, and resets the decoder.
    A line that is not valid JSON (or not of the decoder's type) raises
    [`llmfast.DecodeError`][llmfast.errors.DecodeError]. ``feed_lines()`` / ``close_lines()`` return
    the raw lines instead (a CRLF's CR is left on the line: JSON reads it as whitespace), and
    [`decode`][llmfast.NDJSONDecoder.decode] decodes one, for callers that must act between lines.
    A line longer than ``max_line_bytes`` (``None``: no limit) raises
    [`ResponseTooLargeError`][llmfast.errors.ResponseTooLargeError] as soon as that many
    bytes of it are buffered, and is dropped.
    """

    __slots__ = ("_decode", "_error", "_limit", "_parts", "_pending", "_unreported")

    def __init__(
        self, decode: Callable[[bytes], T] = _decode_any, *, max_line_bytes: int | None = None
    ) -> None:
        if max_line_bytes is not None and max_line_bytes < 1:
            raise ValueError("max_line_bytes must be at least 1 (or None: no limit)")
        self._decode = decode
        self._limit = max_line_bytes
        self._parts: list[bytes] = []  # the unfinished line, in the slices it came in
        self._pending = 0  # bytes in _parts
        self._error: ResponseTooLargeError | None = None  # sticky until close_lines()
        self._unreported = False  # _error was kept for the next call, not raised yet

    @property
    def pending(self) -> bool:
        """True if the bytes of an unfinished (non-blank) line are buffered."""
        return any(not part.isspace() for part in self._parts)

    def feed_lines(self, data: bytes) -> list[bytes]:
        """Consume the next slice; return the complete, non-blank lines it finished."""
        if self._error is not None:
            self._fail()
        limit = self._limit
        if 10 not in data:  # no newline: the line goes on (int membership is a memchr)
            if data:
                self._parts.append(data)
                self._pending += len(data)
                if limit is not None and self._pending > limit:
                    self._overflow()
                    self._fail()
            return []
        parts = self._parts
        if parts:
            parts.append(data)
            data = b"".join(parts)
            parts.clear()
        lines = data.split(b"\n")
        rest = lines.pop()
        self._pending = len(rest)
        if rest:
            parts.append(rest)
        out = [line for line in lines if line and not line.isspace()]  # blank, or a lone CR
        if limit is not None and (self._pending > limit or len(data) > limit):
            for i, line in enumerate(out):
                if len(line) > limit:
                    del out[i:]
                    break
            else:
                if self._pending <= limit:
                    return out
            self._overflow()
            if not out:
                self._fail()
        return out  # an error comes with the next call, once these lines are out

    def _fail(self) -> NoReturn:
        assert self._error is not None
        self._unreported = False
        raise self._error

    def _overflow(self) -> ResponseTooLargeError:
        """Drop the line in progress; the error to raise, now and until ``close_lines()``."""
        self._parts.clear()
        self._pending = 0
        limit = self._limit
        self._unreported = True
        error = self._error = ResponseTooLargeError(
            f"an NDJSON line exceeds max_line_bytes={limit}", limit=limit
        )
        return error

    def close_lines(self) -> list[bytes]:
        """Signal end of stream: return a last line left without its newline, and reset."""
        error = self._error if self._unreported else None
        self._error = None
        self._unreported = False
        line = b"".join(self._parts)
        self._parts.clear()
        self._pending = 0
        if error is not None:
            raise error
        return [] if not line or line.isspace() else [line]

    def decode(self, line: bytes) -> T:
        """Decode one line (raises [`llmfast.DecodeError`][llmfast.errors.DecodeError] if it is
        malformed)."""
        try:
            return self._decode(line)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise DecodeError(f"malformed NDJSON line: {exc}; line starts {line[:200]!r}") from exc

    def feed(self, data: bytes) -> list[T]:
        """Consume the next slice of the stream; return the objects it completed."""
        decode = self.decode
        return [decode(line) for line in self.feed_lines(data)]

    def close(self) -> list[T]:
        """Signal end of stream: decode a last line left without its newline, and reset."""
        return [self.decode(line) for line in self.close_lines()]


def parse(
    chunks: Iterable[bytes],
    decode: Callable[[bytes], T] = _decode_any,
    *,
    max_line_bytes: int | None = None,
) -> list[T]:
    """Decode a whole stream given as byte slices; return every object."""
    decoder = NDJSONDecoder(decode, max_line_bytes=max_line_bytes)
    out: list[T] = []
    for chunk in chunks:
        out += decoder.feed(chunk)
    out += decoder.close()
    return out
