"""The gateway's access log: one JSON line per request, buffered.

Lines are kept in memory and written together, at most ``flush_after`` seconds after
the first of them (and when ``max_buffered`` bytes are waiting, and when the gateway
stops), in pieces of whole lines of at most ``PIPE_BUF`` bytes: a write that small is
atomic on a pipe, so the lines of several worker processes sharing one stderr never
mix. At a thousand requests a second that is a few writes a second instead of a
thousand, and no `logging` record, handler lock or formatter per request (together
the largest of the gateway's own costs per request before).
"""

from __future__ import annotations

import asyncio
import logging
import select
import sys
import time
from typing import IO, Any, BinaryIO, cast

import msgspec
from aiohttp import abc, web

__all__ = ["TENANT_KEY", "AccessLog", "access_logger_class", "stderr_bytes"]

_log = logging.getLogger("llmfast.gateway")
_encode = msgspec.json.Encoder().encode
_wall_clock = time.time
PIPE_BUF: int = getattr(select, "PIPE_BUF", 512)
"""The largest write a pipe takes atomically (POSIX guarantees at least 512 bytes)."""


class AccessLog:
    """Whole lines buffered for ``stream``, written at most ``flush_after`` seconds
    after the first of them arrived (or once ``max_buffered`` bytes wait)."""

    __slots__ = ("_lines", "_size", "_timer", "flush_after", "max_buffered", "stream")

    def __init__(
        self, stream: BinaryIO, *, flush_after: float = 0.25, max_buffered: int = 64 * 1024
    ) -> None:
        self.stream = stream
        self.flush_after = flush_after
        self.max_buffered = max_buffered
        self._lines: list[bytes] = []
        self._size = 0
        self._timer: asyncio.TimerHandle | None = None

    def add(self, line: bytes) -> None:
        """Buffer ``line`` (one JSON document, without its line end)."""
        self._lines.append(line)
        self._size += len(line) + 1
        if self._size >= self.max_buffered:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.flush_after, self.flush)

    def flush(self) -> None:
        """Write what is buffered now."""
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        lines, self._lines, self._size = self._lines, [], 0
        if not lines:
            return
        try:
            self._write(lines)
        except (OSError, ValueError) as exc:  # a full disk, a closed pipe: lines lost, not calls
            _log.warning("the access log lost %d lines: %s", len(lines), exc)

    def _write(self, lines: list[bytes]) -> None:
        write = self.stream.write
        piece: list[bytes] = []
        size = 0
        for line in lines:
            if piece and size + len(line) + 1 > PIPE_BUF:
                write(b"\n".join(piece) + b"\n")
                self.stream.flush()
                piece, size = [], 0
            piece.append(line)
            size += len(line) + 1
        write(b"\n".join(piece) + b"\n")
        self.stream.flush()


def stderr_bytes() -> BinaryIO:
    """Standard error as a binary stream (a text-only one, such as a notebook's, through
    an adapter)."""
    buffer = getattr(sys.stderr, "buffer", None)
    if buffer is not None:
        return cast(BinaryIO, buffer)
    return cast(BinaryIO, _TextWriter(sys.stderr))


class _TextWriter:
    """Bytes written to a text stream (UTF-8; a JSON line is ASCII)."""

    def __init__(self, text: IO[str]) -> None:
        self._text = text

    def write(self, data: bytes) -> int:
        self._text.write(data.decode("utf-8", "replace"))
        return len(data)

    def flush(self) -> None:
        self._text.flush()


def access_logger_class(log: AccessLog) -> type[abc.AbstractAccessLogger]:
    """The aiohttp access-logger class writing to ``log`` (aiohttp makes one per
    connection, so the log travels on the class)."""

    class JSONAccessLogger(abc.AbstractAccessLogger):
        """One JSON line per request: time (Unix seconds), method, path, status,
        duration in milliseconds, tenant."""

        def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
            record: dict[str, Any] = {
                "time": round(_wall_clock(), 3),
                "method": request.method,
                "path": request.path,
                "status": response.status,
                "ms": round(time * 1000, 3),
                "tenant": request.get(TENANT_KEY),
            }
            log.add(_encode(record))

    return JSONAccessLogger


TENANT_KEY: Any = (  # aiohttp >= 3.13 wants typed request keys; older ones take a string
    web.RequestKey("llmfast.tenant", str) if hasattr(web, "RequestKey") else "llmfast.tenant"
)
"""Where the gateway keeps a request's tenant name (for its access-log line)."""
