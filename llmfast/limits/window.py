"""``SlidingWindow``: at most ``limit`` units in any ``period`` seconds, in this process."""

from __future__ import annotations

from collections import deque

__all__ = ["Entry", "SlidingWindow"]

_SLACK = 1e-6  # an entry this close to leaving counts as gone: float sums never land exactly
Entry = list[float]
"""One admission: ``[time, amount]``; kept so a later correction can change its amount."""


class SlidingWindow:
    """A log of admissions; an admission counts until ``period`` seconds after it.

    Unlike a token bucket, a sliding window never lets more than ``limit`` units into
    *any* window of ``period`` seconds (a bucket allows up to twice that around a
    refill). The methods take ``now`` so the caller owns the clock.

    An amount larger than ``limit`` is admitted alone: only when nothing else is in
    the window (see ``RateLimit(oversize=...)`` for whether it is let in at all).
    """

    __slots__ = ("_log", "_used", "limit", "period")

    def __init__(self, limit: int, period: float) -> None:
        self.limit = limit
        self.period = period
        self._log: deque[Entry] = deque()
        self._used = 0.0

    def _expire(self, now: float) -> None:
        log = self._log
        horizon = now - self.period + _SLACK
        while log and log[0][0] <= horizon:
            self._used -= log.popleft()[1]
        if not log:
            self._used = 0.0  # drop float drift once the window is empty

    def used(self, now: float) -> float:
        """Units admitted in the window ending at ``now``."""
        self._expire(now)
        return self._used

    def wait(self, amount: float, now: float) -> float:
        """Seconds until ``amount`` fits (0.0: it fits now)."""
        if self._used + amount <= self.limit:
            return 0.0  # fits even before old entries are dropped: skip that work
        self._expire(now)
        used = self._used
        if used + amount <= self.limit or used <= 0:
            return 0.0
        log = self._log
        if amount > self.limit:  # admitted alone: when every entry now in has expired
            return log[-1][0] + self.period - now
        need = used + amount - self.limit
        freed = 0.0
        for entry in log:
            freed += entry[1]
            if freed >= need:
                return entry[0] + self.period - now
        return log[-1][0] + self.period - now  # unreachable unless amounts are negative

    def add(self, amount: float, now: float) -> Entry:
        """Record an admission of ``amount`` at ``now`` (call only when ``wait`` is 0)."""
        entry = [now, amount]
        self._log.append(entry)
        self._used += amount
        return entry

    def correct(self, entry: Entry, delta: float) -> None:
        """Change an admission's amount by ``delta`` while it is still in the log."""
        log = self._log
        if log and entry[0] >= log[0][0]:  # entries leave oldest first, equal times together
            entry[1] += delta
            self._used += delta
