"""``ServerHints``: pace requests by what the provider's rate-limit headers said.

Each response's headers say how many requests and tokens remain and when the limit
is full again. Providers replenish continuously until then, so between two responses
the remaining budget is taken to grow linearly towards the limit at the reset time.
A request that needs more than is left waits until enough has grown back, so the
client slows down *before* the server answers 429.
"""

from __future__ import annotations

import math

from llmfast.limits.headers import RateLimitHeaders

__all__ = ["Gauge", "ServerHints"]

_SLACK = 1e-6  # this close to the reset counts as past it: float sums never land exactly


class Gauge:
    """One limit as the server last described it (times are on the caller's clock)."""

    __slots__ = ("limit", "rate", "remaining", "reset_at", "since")

    def __init__(self) -> None:
        self.limit: int | None = None
        self.remaining: float | None = None
        self.rate = 0.0  # units replenished per second
        self.reset_at = 0.0
        self.since = 0.0

    def observe(
        self, limit: int | None, remaining: int | None, reset: float | None, now: float
    ) -> None:
        """Record what a response said (``reset``: seconds from ``now``)."""
        if remaining is None:
            return
        self.limit = limit
        self.remaining = float(remaining)
        self.since = now
        self.reset_at = now + (reset or 0.0)
        missing = 0 if limit is None else limit - remaining
        self.rate = missing / reset if reset and missing > 0 else 0.0

    def available(self, now: float) -> float:
        """What is left at ``now`` (infinite when unknown or past the reset)."""
        remaining = self.remaining
        if remaining is None or now + _SLACK >= self.reset_at:
            return math.inf
        return remaining + self.rate * (now - self.since)

    def wait(self, need: float, now: float) -> float:
        """Seconds until ``need`` is available (at most until the reset)."""
        available = self.available(now)
        if available >= need:
            return 0.0
        until_reset = self.reset_at - now
        if self.rate <= 0:
            return until_reset
        return min((need - available) / self.rate, until_reset)

    def take(self, amount: float, now: float) -> None:
        """Count an admission against the remaining budget."""
        if self.remaining is not None and now + _SLACK < self.reset_at:
            self.remaining -= amount


class ServerHints:
    """The requests and tokens gauges; cheap to consult while no header was seen."""

    __slots__ = ("requests", "seen", "tokens")

    def __init__(self) -> None:
        self.requests = Gauge()
        self.tokens = Gauge()
        self.seen = False

    def observe(self, info: RateLimitHeaders, now: float) -> None:
        """Update from one response's parsed headers."""
        self.seen = True
        self.requests.observe(
            info.limit_requests, info.remaining_requests, info.reset_requests, now
        )
        self.tokens.observe(info.limit_tokens, info.remaining_tokens, info.reset_tokens, now)

    def wait(self, tokens: int, now: float) -> float:
        """Seconds before a request of ``tokens`` should go."""
        if not self.seen:
            return 0.0
        return max(self.requests.wait(1, now), self.tokens.wait(tokens, now))

    def take(self, tokens: int, now: float) -> None:
        """Count an admission."""
        if self.seen:
            self.requests.take(1, now)
            self.tokens.take(tokens, now)
