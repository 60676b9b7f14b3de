"""Time-to-first-chunk and idle-between-events timeouts for streamed responses.

aiohttp's read timeout is reset by any byte, so a stream kept alive by comments or
pings would never time out. The watchdog counts only the events the backend reports
with `StreamWatchdog.event`; when a limit passes it closes the response (which
wakes the pending read) and records which timeout it was. Reporting an event costs
one clock read.

The watchdogs of one event loop share one timer (``llmfast.sweeper``), set for the
earliest limit among them and checking them all when it fires: a stream that starts
or ends adds or drops an entry in a set, where a timer of its own would cost a
``TimerHandle``, its cancellation and their heap operations (about 20k instructions a
stream, more than the rest of its watching).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from llmfast.errors import FirstChunkTimeout, IdleTimeout, Timeout
from llmfast.sweeper import Sweeper, sweeper_of

__all__ = ["StreamWatchdog"]


class StreamWatchdog:
    """Closes a stream whose first event or next event is late.

    Args:
        close: called once when a limit passes (closes the HTTP response).
        first_chunk_at: ``loop.time()`` by which the first event must arrive, or None.
        idle: seconds allowed between events (and before the first one when
            ``first_chunk_at`` is None), or None.
    """

    __slots__ = ("_close", "_first_at", "_idle", "_last", "_loop", "_seen", "_sweeper", "expired")

    def __init__(
        self, close: Callable[[], object], *, first_chunk_at: float | None, idle: float | None
    ) -> None:
        loop = self._loop = asyncio.get_running_loop()
        self._close = close
        self._first_at = first_chunk_at
        self._idle = idle
        self._last = loop.time()
        self._seen = False
        self.expired: Timeout | None = None
        self._sweeper: Sweeper | None = None
        limit = self._sweep_limit()
        if limit is not None:
            sweeper = self._sweeper = sweeper_of(loop)
            sweeper.add(self, limit[0])

    def event(self) -> None:
        """Report that an event (not a comment or ping) arrived."""
        self._last = self._loop.time()
        self._seen = True

    def cancel(self) -> None:
        """Stop watching (the stream ended or was closed)."""
        sweeper = self._sweeper
        if sweeper is not None:
            self._sweeper = None
            sweeper.watched.discard(self)

    def _sweep_limit(self) -> tuple[float, type[Timeout]] | None:
        if not self._seen and self._first_at is not None:
            return self._first_at, FirstChunkTimeout
        if self._idle is not None:
            return self._last + self._idle, IdleTimeout
        return None

    def _sweep_expire(self, error: type[Timeout]) -> None:
        self._sweeper = None
        if error is FirstChunkTimeout:
            self.expired = FirstChunkTimeout("no event arrived before the first-chunk timeout")
        else:
            self.expired = IdleTimeout(f"no event for {self._idle} s (keep-alives don't count)")
        self._close()
