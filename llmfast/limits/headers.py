"""Parsers for the rate-limit headers providers send with every response.

OpenAI (and most compatible servers)::

    x-ratelimit-limit-requests: 500          x-ratelimit-limit-tokens: 30000
    x-ratelimit-remaining-requests: 499      x-ratelimit-remaining-tokens: 29950
    x-ratelimit-reset-requests: 120ms        x-ratelimit-reset-tokens: 6m0s

Anthropic (reset times in RFC 3339)::

    anthropic-ratelimit-requests-limit / -remaining / -reset: 2024-05-01T12:00:30Z
    anthropic-ratelimit-tokens-limit / -remaining / -reset   (else input-tokens-*)

A reset is when the limit is back to full; providers replenish continuously until
then. Every parser returns ``None`` for a missing or malformed value and never raises.
"""

from __future__ import annotations

import calendar
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["RateLimitHeaders", "parse_duration", "parse_rate_limit_headers", "parse_rfc3339"]

_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "μs": 1e-6}
_UNITS["ns"] = 1e-9
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_PART = re.compile(rf"({_NUMBER})(ns|us|µs|μs|ms|s|m|h)")
_DURATION = re.compile(rf"(?:{_NUMBER}(?:ns|us|µs|μs|ms|s|m|h))+")
_MAX_RESET = 24 * 3600.0  # a reset further away than a day is a server bug: cap the pause
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})"
)


def parse_duration(text: str) -> float | None:
    """Seconds in a Go-style duration (``1s``, ``6m0s``, ``20ms``, ``1h2m3.5s``) or a
    plain number of seconds; ``None`` if malformed or negative."""
    text = text.strip()
    if _DURATION.fullmatch(text):
        return sum(float(number) * _UNITS[unit] for number, unit in _PART.findall(text))
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def parse_rfc3339(text: str) -> float | None:
    """The epoch seconds of an RFC 3339 timestamp (``2024-05-01T12:00:30.5Z``)."""
    match = _RFC3339.fullmatch(text.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, zone = match.group(7), match.group(8)
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour <= 23 and minute <= 59):
        return None
    if second > 60:  # 60: a leap second, counted as the next second
        return None
    try:
        epoch = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    except (OverflowError, ValueError):
        return None
    if day > calendar.monthrange(year, month)[1]:
        return None
    offset = 0
    if zone not in ("Z", "z"):
        sign = -1 if zone[0] == "-" else 1
        zone_hours, zone_minutes = int(zone[1:3]), int(zone[4:6])
        if zone_hours > 23 or zone_minutes > 59:
            return None
        offset = sign * (zone_hours * 3600 + zone_minutes * 60)
    return epoch - offset + (float(fraction) if fraction else 0.0)


def _count(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return max(int(value), 0) if math.isfinite(value) else None


@dataclass(frozen=True, slots=True)
class RateLimitHeaders:
    """What a response said about the quota; resets are seconds from when it was parsed."""

    limit_requests: int | None = None
    remaining_requests: int | None = None
    reset_requests: float | None = None
    limit_tokens: int | None = None
    remaining_tokens: int | None = None
    reset_tokens: float | None = None

    def exhausted_reset(self) -> float | None:
        """Seconds until the first exhausted limit (remaining 0) recovers; else the
        longest reset given; ``None`` when no reset was sent."""
        exhausted = [
            reset
            for remaining, reset in (
                (self.remaining_requests, self.reset_requests),
                (self.remaining_tokens, self.reset_tokens),
            )
            if remaining == 0 and reset is not None
        ]
        if exhausted:
            return max(exhausted)
        resets = [r for r in (self.reset_requests, self.reset_tokens) if r is not None]
        return max(resets) if resets else None


def parse_rate_limit_headers(
    headers: Mapping[str, str], now: float | None = None
) -> RateLimitHeaders | None:
    """The OpenAI or Anthropic rate-limit headers in ``headers`` (names in lower case,
    or a case-insensitive mapping); ``None`` when there are none. ``now``: epoch
    seconds for Anthropic's absolute resets (default ``time.time()``)."""
    get = headers.get
    if (
        get("x-ratelimit-remaining-requests") is not None
        or get("x-ratelimit-remaining-tokens") is not None
    ):
        return RateLimitHeaders(
            _count(get("x-ratelimit-limit-requests")),
            _count(get("x-ratelimit-remaining-requests")),
            _reset_in(get("x-ratelimit-reset-requests")),
            _count(get("x-ratelimit-limit-tokens")),
            _count(get("x-ratelimit-remaining-tokens")),
            _reset_in(get("x-ratelimit-reset-tokens")),
        )
    prefix = "anthropic-ratelimit-"
    if (
        get(prefix + "requests-remaining") is None
        and get(prefix + "tokens-remaining") is None
        and get(prefix + "input-tokens-remaining") is None
    ):
        return None
    tokens = prefix + (
        "tokens-" if get(prefix + "tokens-remaining") is not None else "input-tokens-"
    )
    current = time.time() if now is None else now
    return RateLimitHeaders(
        _count(get(prefix + "requests-limit")),
        _count(get(prefix + "requests-remaining")),
        _reset_at(get(prefix + "requests-reset"), current),
        _count(get(tokens + "limit")),
        _count(get(tokens + "remaining")),
        _reset_at(get(tokens + "reset"), current),
    )


def _reset_in(text: str | None) -> float | None:
    seconds = None if text is None else parse_duration(text)
    return None if seconds is None else min(seconds, _MAX_RESET)


def _reset_at(text: str | None, now: float) -> float | None:
    epoch = None if text is None else parse_rfc3339(text)
    return None if epoch is None else min(max(epoch - now, 0.0), _MAX_RESET)
