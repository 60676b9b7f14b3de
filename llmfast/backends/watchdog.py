"""Time-to-first-chunk and idle-between-events timeouts for streamed responses.

aiohttp's read timeout is reset by any byte, so a stream kept alive by comments or
pings would never time out. The watchdog counts only the events the backend reports
with `StreamWatchdog.event`; when a limit passes it closes the response (which
wakes the pending read) and records which timeout it was. Reporting an event costs
one clock read.

The watchdogs of one event loop share one timer (`_Sweeper`), set for the earliest
limit among them and checking them all when it fires: a stream that starts or ends
adds or drops an entry in a set, where a timer of its own would cost a
``TimerHandle``, its cancellation and their heap operations (about 20k instructions a
stream, more than the rest of its watching).
"""

from __future__ import annotations

import asyncio
import math
import weakref
from collections.abc import Callable

from llmfast.errors import FirstChunkTimeout, IdleTimeout, Timeout

__all__ = ["StreamWatchdog"]

_MIN_GAP = 0.005
"""The shortest time between two sweeps (many streams near their limits at once wake
the loop once per gap, not once per stream)."""


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
        self._sweeper: _Sweeper | None = None
        limit = self._limit()
        if limit is not None:
            sweeper = self._sweeper = _sweeper_of(loop)
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

    def _limit(self) -> tuple[float, type[Timeout]] | None:
        if not self._seen and self._first_at is not None:
            return self._first_at, FirstChunkTimeout
        if self._idle is not None:
            return self._last + self._idle, IdleTimeout
        return None

    def _expire(self, error: type[Timeout]) -> None:
        self._sweeper = None
        if error is FirstChunkTimeout:
            self.expired = FirstChunkTimeout("no event arrived before the first-chunk timeout")
        else:
            self.expired = IdleTimeout(f"no event for {self._idle} s (keep-alives don't count)")
        self._close()


class _Sweeper:
    """The one timer of a loop's watchdogs: at the earliest of their limits, it closes
    the streams past theirs and sets itself for the next one (none when none is left:
    a sweep that finds no stream leaves no timer behind)."""

    # No reference to the loop, not even through a timer handle: the loop's entry in
    # ``_sweepers`` holds this object, and must not keep the loop alive. So a timer
    # set for a later time is not cancelled when an earlier one is needed: each timer
    # carries the time it was set for, and only the one set last sweeps.
    __slots__ = ("__weakref__", "_at", "watched")

    def __init__(self) -> None:
        self.watched: set[StreamWatchdog] = set()
        self._at = math.inf  # the earliest sweep set (inf: none)

    def add(self, watchdog: StreamWatchdog, when: float) -> None:
        self.watched.add(watchdog)
        if when < self._at:
            self._at = when
            watchdog._loop.call_at(when, self._sweep, when)

    def _sweep(self, at: float) -> None:
        if at != self._at:
            return  # not the sweep set last (an earlier one was needed after it)
        self._at = math.inf
        loop = asyncio.get_running_loop()
        now = loop.time()
        soonest = math.inf
        watched = self.watched
        for watchdog in tuple(watched):
            limit = watchdog._limit()
            if limit is None:  # pragma: no cover - a watchdog with no limit is never added
                watched.discard(watchdog)
                continue
            when, error = limit
            if now >= when:
                watched.discard(watchdog)
                try:
                    watchdog._expire(error)
                except Exception as exc:  # one failing close must not spare the others
                    loop.call_exception_handler(
                        {"message": "closing a timed-out stream failed", "exception": exc}
                    )
            elif when < soonest:
                soonest = when
        if soonest < math.inf:
            self._at = when = max(soonest, now + _MIN_GAP)
            loop.call_at(when, self._sweep, when)


_sweepers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Sweeper] = (
    weakref.WeakKeyDictionary()
)
"""Each running loop's sweeper (gone with its loop)."""
_last: tuple[weakref.ref[asyncio.AbstractEventLoop], weakref.ref[_Sweeper]] | None = None
"""The last loop asked for and its sweeper, weakly (a ``WeakKeyDictionary`` look-up
costs ten times as much)."""


def _sweeper_of(loop: asyncio.AbstractEventLoop) -> _Sweeper:
    global _last
    last = _last
    if last is not None and last[0]() is loop:
        sweeper = last[1]()
        if sweeper is not None:
            return sweeper
    sweeper = _sweepers.get(loop)
    if sweeper is None:
        # A loop closed while a stream was still watched is held by that watchdog:
        # drop such loops' sweepers when a new loop comes.
        for closed in [old for old in _sweepers if old.is_closed()]:
            del _sweepers[closed]
        sweeper = _sweepers[loop] = _Sweeper()
    _last = (weakref.ref(loop), weakref.ref(sweeper))
    return sweeper
