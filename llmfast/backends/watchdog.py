"""Time-to-first-chunk and idle-between-events timeouts for streamed responses.

aiohttp's read timeout is reset by any byte, so a stream kept alive by comments or
pings would never time out. The watchdog counts only the events the backend reports
with `StreamWatchdog.event`; when a limit passes it closes the response (which
wakes the pending read) and records which timeout it was. One timer per stream,
re-armed only when it fires: reporting an event costs one clock read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from llmfast.errors import FirstChunkTimeout, IdleTimeout, Timeout

__all__ = ["StreamWatchdog"]


class StreamWatchdog:
    """Closes a stream whose first event or next event is late.

    Args:
        close: called once when a limit passes (closes the HTTP response).
        first_chunk_at: ``loop.time()`` by which the first event must arrive, or None.
        idle: seconds allowed between events (and before the first one when
            ``first_chunk_at`` is None), or None.
    """

    __slots__ = ("_close", "_first_at", "_handle", "_idle", "_last", "_loop", "_seen", "expired")

    def __init__(
        self, close: Callable[[], object], *, first_chunk_at: float | None, idle: float | None
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._close = close
        self._first_at = first_chunk_at
        self._idle = idle
        self._last = self._loop.time()
        self._seen = False
        self.expired: Timeout | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._arm()

    def event(self) -> None:
        """Report that an event (not a comment or ping) arrived."""
        self._last = self._loop.time()
        self._seen = True

    def cancel(self) -> None:
        """Stop watching (the stream ended or was closed)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _limit(self) -> tuple[float, type[Timeout]] | None:
        if not self._seen and self._first_at is not None:
            return self._first_at, FirstChunkTimeout
        if self._idle is not None:
            return self._last + self._idle, IdleTimeout
        return None

    def _arm(self) -> None:
        limit = self._limit()
        self._handle = None if limit is None else self._loop.call_at(limit[0], self._fire)

    def _fire(self) -> None:
        limit = self._limit()
        if limit is None:
            self._handle = None
            return
        when, error = limit
        if self._loop.time() >= when:
            self._handle = None
            if error is FirstChunkTimeout:
                self.expired = FirstChunkTimeout("no event arrived before the first-chunk timeout")
            else:
                self.expired = IdleTimeout(f"no event for {self._idle} s (keep-alives don't count)")
            self._close()
        else:
            self._handle = self._loop.call_at(when, self._fire)
