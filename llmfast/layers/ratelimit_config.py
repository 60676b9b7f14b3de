"""``RateLimit``: the configuration of the rate-limit layer (``llmfast.layers.ratelimit``)."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Literal

from llmfast.errors import ConfigurationError
from llmfast.limits.admission import Sleep
from llmfast.limits.budget import Clock
from llmfast.limits.estimate import TokenEstimator, default_estimator
from llmfast.transport import Transport

if TYPE_CHECKING:
    from llmfast.layers.ratelimit import RateLimitLayer
    from llmfast.limits.redis_budget import RedisLimitStore

__all__ = ["RateLimit"]


class RateLimit:
    """Configuration of the rate-limit layer; ``RateLimit(...)(inner)`` builds it.

    Args:
        rpm: requests allowed in any ``period`` (a minute by default).
        tpm: tokens allowed in any ``period``.
        period: seconds the ``rpm``/``tpm`` windows span (``period=1``: per second).
        margin: seconds a request may take to reach the provider after admission:
            it counts from its admission plus ``margin``, or from when its reply is
            in if sooner, so the limit holds as the provider counts arrivals.
            Default: a tenth of ``period``, at most 1 s; ``0``: exact at admission.
        concurrency: calls in flight at once; a stream counts until it is over.
        max_queue: calls that may wait; one more gets ``QueueFullError`` at once.
        max_wait: seconds a call may wait; one that cannot be admitted in time gets
            ``QueueTimeout`` at once (``DeadlineExceeded`` if its deadline is nearer).
        oversize: a call estimated above the whole ``tpm``: ``"reject"`` raises
            ``RequestTooLargeError`` at once; ``"admit"`` lets it in alone, once the
            token window is empty (later calls wait until it has left the window).
        estimator: tokens a request may use; default: tiktoken if installed, else
            about four characters per token, plus ``max_tokens``.
        adaptive: follow the provider's rate-limit headers, and after a 429 hold
            every call until the server's reset time.
        default_pause: seconds to hold after a 429 that says nothing about when.
        store: a ``RedisLimitStore`` to share the limits with other processes.
        clock: injectable for exact tests (``time.monotonic``-based, the clock of
            ``Request.deadline``).
        sleep: injectable for exact tests.

    The most recently built layer is ``config.layer`` (its ``queue_length``,
    ``in_flight``, ``available_requests`` and ``available_tokens`` are live).
    """

    def __init__(
        self,
        *,
        rpm: int | None = None,
        tpm: int | None = None,
        period: float = 60.0,
        margin: float | None = None,
        concurrency: int | None = None,
        max_queue: int = 10_000,
        max_wait: float | None = None,
        oversize: Literal["reject", "admit"] = "reject",
        estimator: TokenEstimator | None = None,
        adaptive: bool = True,
        default_pause: float = 1.0,
        store: RedisLimitStore | None = None,
        clock: Clock | None = None,
        sleep: Sleep | None = None,
    ) -> None:
        for name, value in (("rpm", rpm), ("tpm", tpm), ("concurrency", concurrency)):
            if value is not None and (type(value) is not int or value < 1):
                raise ConfigurationError(f"{name} must be a positive integer, got {value!r}")
        if not (math.isfinite(period) and period > 0) or max_queue < 0 or default_pause < 0:
            raise ConfigurationError("need period > 0, max_queue >= 0 and default_pause >= 0")
        if max_wait is not None and max_wait < 0:
            raise ConfigurationError("max_wait must be >= 0")
        if margin is None:
            margin = min(period / 10, 1.0)
        elif not (math.isfinite(margin) and 0 <= margin < period):
            raise ConfigurationError("need 0 <= margin < period")
        if oversize not in ("reject", "admit"):
            raise ConfigurationError("oversize must be 'reject' or 'admit'")
        if rpm is None and tpm is None and concurrency is None and not adaptive:
            raise ConfigurationError("RateLimit needs rpm, tpm, concurrency or adaptive=True")
        if store is not None and rpm is None and tpm is None:
            raise ConfigurationError("a shared store needs rpm or tpm to share")
        self.rpm, self.tpm, self.period, self.margin = rpm, tpm, period, margin
        self.concurrency, self.max_queue, self.max_wait = concurrency, max_queue, max_wait
        self.oversize = oversize
        self.estimator = estimator if estimator is not None else default_estimator()
        self.adaptive, self.default_pause = adaptive, default_pause
        self.store = store
        self.clock: Clock = clock or time.monotonic
        self.sleep = sleep
        self.layer: RateLimitLayer | None = None

    def __call__(self, inner: Transport) -> RateLimitLayer:
        from llmfast.layers.ratelimit import RateLimitLayer  # loaded with llmfast.layers

        self.layer = RateLimitLayer(inner, self)
        return self.layer
