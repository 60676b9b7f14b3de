"""The rate-limit layer: requests and tokens per period, and calls in flight.

It sits inside ``Retry``, so every attempt pays and a backoff sleep holds nothing.
Requests wait in one first-come, first-served queue (bounded by ``max_queue`` and
``max_wait``, and by the call's deadline) until the budget, the provider's
rate-limit headers and the concurrency permits all allow them; a stream holds its
permit until it is read to the end or closed. Tokens are estimated before sending and
corrected from the ``usage`` the provider reports. See ``docs/rate-limits.md``.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Literal

from llmfast.errors import APIStatusError, ConfigurationError, RateLimitError, RequestTooLargeError
from llmfast.layers.ratelimit_stream import PermitStream
from llmfast.limits.admission import Admission, Sleep
from llmfast.limits.budget import Budget, Clock, LocalBudget, Ticket
from llmfast.limits.estimate import TokenEstimator, default_estimator
from llmfast.limits.headers import parse_rate_limit_headers
from llmfast.limits.hints import ServerHints
from llmfast.transport import Request, Response, Transport, TransportLayer

if TYPE_CHECKING:
    from collections.abc import Mapping

    from llmfast.limits.redis_budget import RedisLimitStore

__all__ = ["RateLimit", "RateLimitLayer"]


class RateLimit:
    """Configuration of the rate-limit layer; ``RateLimit(...)(inner)`` builds it.

    Args:
        rpm: requests allowed in any ``period`` (a minute by default).
        tpm: tokens allowed in any ``period``.
        period: seconds the ``rpm``/``tpm`` windows span (``period=1``: per second).
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
        if oversize not in ("reject", "admit"):
            raise ConfigurationError("oversize must be 'reject' or 'admit'")
        if rpm is None and tpm is None and concurrency is None and not adaptive:
            raise ConfigurationError("RateLimit needs rpm, tpm, concurrency or adaptive=True")
        if store is not None and rpm is None and tpm is None:
            raise ConfigurationError("a shared store needs rpm or tpm to share")
        self.rpm, self.tpm, self.period = rpm, tpm, period
        self.concurrency, self.max_queue, self.max_wait = concurrency, max_queue, max_wait
        self.oversize = oversize
        self.estimator = estimator if estimator is not None else default_estimator()
        self.adaptive, self.default_pause = adaptive, default_pause
        self.store = store
        self.clock: Clock = clock or time.monotonic
        self.sleep = sleep
        self.layer: RateLimitLayer | None = None

    def __call__(self, inner: Transport) -> RateLimitLayer:
        self.layer = RateLimitLayer(inner, self)
        return self.layer


class RateLimitLayer(TransportLayer):
    """Admits calls within the configured limits; see [`RateLimit`][llmfast.layers.RateLimit]."""

    def __init__(self, inner: Transport, config: RateLimit) -> None:
        super().__init__(inner)
        self.config = config
        clock = self._clock = config.clock
        make = LocalBudget if config.store is None else config.store.budget
        self.budget: Budget = make(
            requests=config.rpm, tokens=config.tpm, period=config.period, clock=clock
        )
        self.hints = ServerHints() if config.adaptive else None
        self._admission = Admission(
            self.budget,
            self.hints,
            concurrency=config.concurrency,
            max_queue=config.max_queue,
            max_wait=config.max_wait,
            clock=clock,
            sleep=config.sleep,
        )
        counts_tokens = config.tpm is not None or config.adaptive
        self._estimate = config.estimator if counts_tokens else None
        self._token_cap = config.tpm if config.tpm and config.oversize == "reject" else math.inf
        self._correct_tokens = self._correct if config.tpm is not None else None

    # -- what the limiter looks like now ------------------------------------------

    @property
    def queue_length(self) -> int:
        """Calls waiting to be admitted."""
        return self._admission.queue_length

    @property
    def in_flight(self) -> int:
        """Calls admitted and not over yet (streams until they are closed)."""
        return self._admission.active

    @property
    def available_requests(self) -> int | None:
        """Requests that could start now (``None``: no ``rpm``); last known with Redis."""
        return self.budget.available_requests

    @property
    def available_tokens(self) -> int | None:
        """Tokens that could start now (``None``: no ``tpm``); last known with Redis."""
        return self.budget.available_tokens

    def describe(self) -> str:
        config = self.config
        if config.period == 60:
            limits, per = (("rpm", config.rpm), ("tpm", config.tpm)), ""
        else:
            limits, per = (("requests", config.rpm), ("tokens", config.tpm)), f"/{config.period:g}s"
        parts = [f"{name}={value}{per}" for name, value in limits if value is not None]
        if config.concurrency is not None:
            parts.append(f"concurrency={config.concurrency}")
        if config.store is not None:
            parts.append(f"store={config.store!r}")
        return f"RateLimit({', '.join(parts)})"

    # -- the call -----------------------------------------------------------------

    async def send(self, request: Request, /) -> Response:
        estimate = self._estimate
        tokens = 0 if estimate is None else estimate(request.body)
        if tokens > self._token_cap:
            raise RequestTooLargeError(
                f"the request needs about {tokens} tokens, more than the whole budget of "
                f"{self.config.tpm} per {self.config.period:g} s"
            )
        admission = self._admission
        ticket = await admission.enter(request, tokens)
        try:
            response = await self.inner.send(request)
        except APIStatusError as exc:
            admission.release()
            await self._refused(exc, ticket, tokens)
            raise
        except BaseException:
            admission.release()
            raise
        if self.hints is not None:
            self._observe(response.headers)
        if response.stream:
            chunks = PermitStream(
                response,
                release=admission.release,
                correct=self._correct_tokens,
                ticket=ticket,
                tokens=tokens,
            )
            return Response(
                request, status=response.status, headers=response.headers, chunks=chunks
            )
        admission.release()
        if self._correct_tokens is not None:
            usage = getattr(response._result, "usage", None)  # the result, without reading it
            if usage is not None and usage.total_tokens != tokens:
                await self._correct(ticket, usage.total_tokens - tokens)
        return response

    async def _correct(self, ticket: Ticket, delta: int) -> None:
        if delta:
            await self.budget.correct(ticket, delta)
            if delta < 0:
                self._admission.poke()

    def _observe(self, headers: Mapping[str, str]) -> None:
        info = parse_rate_limit_headers(headers)
        if info is not None and self.hints is not None:
            self.hints.observe(info, self._clock())

    async def _refused(self, error: APIStatusError, ticket: Ticket, tokens: int) -> None:
        """The server said no: learn from its headers, pause on a 429, refund the tokens."""
        if self.hints is not None:
            self._observe(error.headers)
            if isinstance(error, RateLimitError):
                pause = error.retry_after
                if pause is None:
                    info = parse_rate_limit_headers(error.headers)
                    pause = info.exhausted_reset() if info is not None else None
                await self.budget.pause(self.config.default_pause if pause is None else pause)
        if self._correct_tokens is not None and ticket is not None:
            await self._correct(ticket, -tokens)

    async def aclose(self) -> None:
        try:
            await self.inner.aclose()
        finally:
            await self.budget.aclose()
