"""``SlidingWindow``: at most ``limit`` units in any ``period`` seconds, in this process."""

from __future__ import annotations

from collections import deque

__all__ = ["Entry", "SlidingWindow"]

_SLACK = 1e-6  # an entry this close to leaving counts as gone: float sums never land exactly
_GONE = float("-inf")  # the time of an entry that has left the window
Entry = list[float]
"""One admission: ``[time, amount]``; kept so a later correction or settle can change it."""


class SlidingWindow:
    """A log of admissions; an admission counts until ``period`` seconds after it.

    Unlike a token bucket, a sliding window never lets more than ``limit`` units into
    *any* window of ``period`` seconds (a bucket allows up to twice that around a
    refill). The methods take ``now`` so the caller owns the clock.

    An admission is stamped ``margin`` seconds late (it counts until ``now + margin +
    period``), and ``settle`` moves the stamp back to the moment the request is known
    to have reached the provider: the window then holds as the provider counts
    arrivals, not just as this process admits. Entries leave oldest admission first,
    so a settled entry behind an unsettled one stays until that one leaves too.

    An amount larger than ``limit`` is admitted alone: only when nothing else is in
    the window (see ``RateLimit(oversize=...)`` for whether it is let in at all).
    """

    __slots__ = ("_log", "_used", "limit", "margin", "period")

    def __init__(self, limit: int, period: float, margin: float = 0.0) -> None:
        self.limit = limit
        self.period = period
        self.margin = margin
        self._log: deque[Entry] = deque()
        self._used = 0.0

    def _expire(self, now: float) -> None:
        log = self._log
        horizon = now - self.period + _SLACK
        while log and log[0][0] <= horizon:
            entry = log.popleft()
            self._used -= entry[1]
            entry[0] = _GONE
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
        need = used + amount - self.limit if amount <= self.limit else used  # else: alone
        freed, leaves = 0.0, _GONE
        for time, units in self._log:  # an entry leaves once every one before it has
            freed += units
            if time > leaves:
                leaves = time
            if freed >= need:
                break
        return leaves + self.period - now

    def add(self, amount: float, now: float) -> Entry:
        """Record an admission of ``amount`` at ``now`` (call only when ``wait`` is 0)."""
        entry = [now + self.margin, amount]
        self._log.append(entry)
        self._used += amount
        return entry

    def record(self, amount: float, now: float) -> Entry:
        """Record an admission made elsewhere (it need not fit), dropping what has left."""
        self._expire(now)
        return self.add(amount, now)

    def correct(self, entry: Entry, delta: float) -> None:
        """Change an admission's amount by ``delta`` while it is still in the log."""
        if entry[0] != _GONE:
            entry[1] += delta
            self._used += delta

    @staticmethod
    def settle(entry: Entry, now: float) -> None:
        """The admission reached the provider by ``now``: count it from then at the latest."""
        if now < entry[0]:  # a gone entry's time is -inf: never
            entry[0] = now
