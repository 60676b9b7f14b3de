"""``RetryPolicy``: whether a failed attempt is retried, and after how long.

The policy only decides; the retry layer (``llmfast.layers.retry``) executes. Waits
come from the server when it says (``retry-after-ms``, ``retry-after``, then the
providers' rate-limit reset headers), else from ``backoff``'s exponential generator
with full jitter.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import backoff

from llmfast._error_body import is_quota_exhausted
from llmfast.errors import (
    APIStatusError,
    ConnectError,
    ConnectTimeout,
    FirstChunkTimeout,
    IdleTimeout,
    QuotaExceededError,
    ReadError,
    ReadTimeout,
    StreamEventError,
    StreamInterruptedError,
    StreamTruncatedError,
)
from llmfast.limits.headers import parse_rate_limit_headers

__all__ = ["RETRY_STATUSES", "RetryPolicy", "reset_after"]

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
"""Statuses retried by default. 400, 401, 403, 404 and 422 never are, nor is a 429
whose error says the quota is used up (``QuotaExceededError``)."""

_RETRYABLE_TRANSPORT = (
    ConnectError,
    ConnectTimeout,
    ReadError,
    ReadTimeout,
    FirstChunkTimeout,
    IdleTimeout,
    StreamTruncatedError,
)
_RETRYABLE_EVENT_WORDS = ("overloaded", "rate_limit", "server_error", "api_error", "unavailable")


@dataclass(frozen=True)
class RetryPolicy:
    """Which failures are retried, how often, and how long to wait.

    Attributes:
        max_attempts: attempts in all, the first included.
        max_elapsed: seconds after the first attempt past which no retry starts.
        initial_backoff / max_backoff: the exponential backoff's first and largest wait.
        jitter: spread backoff waits over ``[0, wait]`` (full jitter).
        max_server_wait: the longest wait a server may ask for; asking for more gives up.
        retry_statuses: the HTTP statuses retried (``x-should-retry`` overrides).
    """

    max_attempts: int = 5
    max_elapsed: float | None = 120.0
    initial_backoff: float = 0.5
    max_backoff: float = 30.0
    jitter: bool = True
    max_server_wait: float = 60.0
    retry_statuses: frozenset[int] = RETRY_STATUSES

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.initial_backoff < 0 or self.max_backoff < 0 or self.max_server_wait < 0:
            raise ValueError("waits must not be negative")

    def is_retryable(self, error: BaseException) -> bool:
        """True for failures worth another attempt (never for client errors, an
        exhausted quota, or a stream whose chunks already reached the caller, whatever
        its cause)."""
        if isinstance(error, (StreamInterruptedError, QuotaExceededError)):
            return False
        if isinstance(error, APIStatusError):
            should = error.headers.get("x-should-retry")
            if should is not None and should.lower() in ("true", "false"):
                return should.lower() == "true"
            return error.effective_status in self.retry_statuses
        if isinstance(error, StreamEventError):
            return _retryable_event(error, self.retry_statuses)
        return isinstance(error, _RETRYABLE_TRANSPORT)

    def backoff_waits(self) -> Iterator[float]:
        """Backoff waits for successive retries (from ``backoff.expo``)."""
        waits = backoff.expo(factor=self.initial_backoff, max_value=self.max_backoff)
        next(waits)  # backoff's generators start with a bare yield
        if not self.jitter:
            return waits
        return (backoff.full_jitter(wait) for wait in waits)

    def server_wait(self, error: BaseException, now: float | None = None) -> float | None:
        """What the server asked to wait, in seconds (uncapped), or None."""
        if isinstance(error, APIStatusError):
            if error.retry_after is not None:
                return error.retry_after
            if error.effective_status == 429:
                return reset_after(error.headers, now)
        return None


def _retryable_event(error: StreamEventError, statuses: frozenset[int]) -> bool:
    if is_quota_exhausted(error.error):  # in-stream (e.g. ``response.failed``): not a wait
        return False
    if error.status is not None:
        return error.status in statuses
    payload: Any = error.error
    if isinstance(payload, Mapping):
        code = payload.get("code")
        if isinstance(code, int):
            return code in statuses
        text = f"{payload.get('type', '')} {code or ''} {payload.get('status', '')}".lower()
        return any(word in text for word in _RETRYABLE_EVENT_WORDS)
    return isinstance(payload, str) and "overloaded" in payload.lower()


def reset_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds until the exhausted rate-limit window resets, from the providers'
    headers (OpenAI's ``x-ratelimit-*``, Anthropic's ``anthropic-ratelimit-*``)."""
    parsed = parse_rate_limit_headers(headers, now)
    return None if parsed is None else parsed.exhausted_reset()
