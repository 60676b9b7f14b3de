"""Incremental, I/O-free NDJSON (newline-delimited JSON) decoder.

Feed it the raw bytes of a response body in slices of any size: a line may be split
anywhere across reads (inside a multi-byte UTF-8 character too). LF and CRLF line ends
are accepted, blank (or whitespace-only) lines are skipped, and a final line without a
newline is decoded by [`NDJSONDecoder.close`][llmfast.NDJSONDecoder.close]. Each line is decoded
with the decoder given (a msgspec ``Decoder(...).decode`` built once), so objects come out typed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

import msgspec

from llmfast.errors import DecodeError

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
    """

    __slots__ = ("_decode", "_parts")

    def __init__(self, decode: Callable[[bytes], T] = _decode_any) -> None:
        self._decode = decode
        self._parts: list[bytes] = []  # the unfinished line, in the slices it came in

    @property
    def pending(self) -> bool:
        """True if the bytes of an unfinished (non-blank) line are buffered."""
        return any(not part.isspace() for part in self._parts)

    def feed_lines(self, data: bytes) -> list[bytes]:
        """Consume the next slice; return the complete, non-blank lines it finished."""
        if 10 not in data:  # no newline: the line goes on (int membership is a memchr)
            if data:
                self._parts.append(data)
            return []
        parts = self._parts
        if parts:
            parts.append(data)
            data = b"".join(parts)
            parts.clear()
        lines = data.split(b"\n")
        rest = lines.pop()
        if rest:
            parts.append(rest)
        return [line for line in lines if line and not line.isspace()]  # blank, or a lone CR

    def close_lines(self) -> list[bytes]:
        """Signal end of stream: return a last line left without its newline, and reset."""
        line = b"".join(self._parts)
        self._parts.clear()
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


def parse(chunks: Iterable[bytes], decode: Callable[[bytes], T] = _decode_any) -> list[T]:
    """Decode a whole stream given as byte slices; return every object."""
    decoder = NDJSONDecoder(decode)
    out: list[T] = []
    for chunk in chunks:
        out += decoder.feed(chunk)
    out += decoder.close()
    return out
