"""One timer per event loop for every time limit llmfast keeps (`sweeper_of`).

A stream's first-chunk and idle limits (``backends.watchdog``) and each connection's
read timeout (``read_timer``) move with every read. A timer of their own would cost a
``TimerHandle`` each time, its cancellation and the heap's work (a few thousand
instructions, several times a call). Instead each limit is an entry in its loop's
sweeper, a set: starting, moving or dropping a limit is a set operation or an
attribute write, and the sweeper's one timer is set for the earliest limit it knows
of. When it fires, it expires the entries past their limits and sets itself for the
next one (none when no entry is left).
"""

from __future__ import annotations

import asyncio
import math
import weakref
from typing import Any, Protocol

__all__ = ["Limited", "Sweeper", "sweeper_of"]

MIN_GAP = 0.005
"""The shortest time between two sweeps (many entries near their limits at once wake
the loop once per gap, not once per entry)."""


class Limited(Protocol):
    """What a sweeper watches: an object with a time limit on its loop."""

    _loop: asyncio.AbstractEventLoop

    def _sweep_limit(self) -> tuple[float, Any] | None:
        """``(loop time, what passing it means)``, or None: no limit (left alone)."""

    def _sweep_expire(self, reason: Any) -> None:
        """The limit passed (the entry is no longer watched)."""


class Sweeper:
    """The one timer of a loop's limits: at the earliest of them, it expires the entries
    past theirs and sets itself for the next one."""

    # No reference to the loop, not even through a timer handle: the loop's entry in
    # ``_sweepers`` holds this object, and must not keep the loop alive. So a timer
    # set for a later time is not cancelled when an earlier one is needed: each timer
    # carries the time it was set for, and only the one set last sweeps.
    __slots__ = ("__weakref__", "at", "watched")

    def __init__(self) -> None:
        self.watched: set[Limited] = set()
        self.at = math.inf
        """When the next sweep is set for (inf: none)."""

    def add(self, entry: Limited, when: float) -> None:
        """Watch ``entry``, whose limit is now ``when`` (a limit moved later needs no
        call; one moved earlier than the sweep set does)."""
        self.watched.add(entry)
        if when < self.at:
            self.at = when
            entry._loop.call_at(when, self._sweep, when)

    def _sweep(self, at: float) -> None:
        if at != self.at:
            return  # not the sweep set last (an earlier one was needed after it)
        self.at = math.inf
        loop = asyncio.get_running_loop()
        now = loop.time()
        soonest = math.inf
        watched = self.watched
        for entry in tuple(watched):
            limit = entry._sweep_limit()
            if limit is None:
                watched.discard(entry)
                continue
            when, reason = limit
            if now >= when:
                watched.discard(entry)
                try:
                    entry._sweep_expire(reason)
                except Exception as exc:  # one failing entry must not spare the others
                    loop.call_exception_handler(
                        {"message": "expiring a time limit failed", "exception": exc}
                    )
            elif when < soonest:
                soonest = when
        if soonest < math.inf:
            self.at = when = max(soonest, now + MIN_GAP)
            loop.call_at(when, self._sweep, when)


_sweepers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Sweeper] = (
    weakref.WeakKeyDictionary()
)
"""Each running loop's sweeper (gone with its loop)."""
_last: tuple[weakref.ref[asyncio.AbstractEventLoop], weakref.ref[Sweeper]] | None = None
"""The last loop asked for and its sweeper, weakly (a ``WeakKeyDictionary`` look-up
costs ten times as much)."""


def sweeper_of(loop: asyncio.AbstractEventLoop) -> Sweeper:
    """``loop``'s sweeper (made on first use)."""
    global _last
    last = _last
    if last is not None and last[0]() is loop:
        sweeper = last[1]()
        if sweeper is not None:
            return sweeper
    sweeper = _sweepers.get(loop)
    if sweeper is None:
        # A loop closed while an entry was still watched is held by that entry: drop
        # such loops' sweepers when a new loop comes.
        for closed in [old for old in _sweepers if old.is_closed()]:
            del _sweepers[closed]
        sweeper = _sweepers[loop] = Sweeper()
    _last = (weakref.ref(loop), weakref.ref(sweeper))
    return sweeper
