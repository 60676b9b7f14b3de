"""The rate-limit layer: requests and tokens per period, and calls in flight.

It sits inside ``Retry``, so every attempt pays and a backoff sleep holds nothing.
Requests wait in one first-come, first-served queue (bounded by ``max_queue`` and
``max_wait``, and by the call's deadline) until the budget, the provider's
rate-limit headers and the concurrency permits all allow them; a stream holds its
permit until it is read to the end or closed. Tokens are estimated before sending and
corrected from the ``usage`` the provider reports. An admission counts from its
admission plus ``margin``, or from when its reply is in if sooner, so the limit
holds as the provider counts arrivals. See ``docs/rate-limits.md``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from llmfast.errors import APIStatusError, RateLimitError, RequestTooLargeError
from llmfast.layers.ratelimit_config import RateLimit
from llmfast.layers.ratelimit_stream import PermitStream
from llmfast.limits.admission import Admission
from llmfast.limits.budget import LimitBudget, LocalBudget, Ticket
from llmfast.limits.headers import parse_rate_limit_headers
from llmfast.limits.hints import ServerHints
from llmfast.transport import Request, Response, Transport, TransportLayer

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["RateLimit", "RateLimitLayer"]


class RateLimitLayer(TransportLayer):
    """Admits calls within the configured limits; see [`RateLimit`][llmfast.layers.RateLimit]."""

    def __init__(self, inner: Transport, config: RateLimit) -> None:
        super().__init__(inner)
        self.config = config
        clock = self._clock = config.clock
        make = LocalBudget if config.store is None else config.store.budget
        self.budget: LimitBudget = make(
            requests=config.rpm,
            tokens=config.tpm,
            period=config.period,
            clock=clock,
            margin=config.margin,
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
        limited = config.rpm is not None or config.tpm is not None
        self._settles = limited and config.margin > 0
        budget = self.budget
        self._settle_now = budget.settle_now if isinstance(budget, LocalBudget) else None

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
        except Exception:
            admission.release()
            await self._settle(ticket, 0)  # it may have reached the provider
            raise
        except BaseException:  # cancelled: the admission keeps its margin
            admission.release()
            raise
        if self.hints is not None:
            self._observe(response.headers)
        if response.stream:
            if self._settles:
                try:
                    await self._settle(ticket, 0)
                except BaseException:
                    admission.release()
                    await response.aclose()
                    raise
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
        delta = 0
        if self._correct_tokens is not None:
            usage = getattr(response._result, "usage", None)  # the result, without reading it
            if usage is not None:
                delta = usage.total_tokens - tokens
        await self._settle(ticket, delta)
        return response

    async def _settle(self, ticket: Ticket, delta: int) -> None:
        """The reply is in: the request reached the provider; correct its tokens."""
        if self._settles:
            settle_now = self._settle_now
            if settle_now is not None:  # no coroutine for the local budget
                settle_now(ticket, delta)
            else:
                await self.budget.settle(ticket, delta)
            if delta < 0:
                self._admission.poke()
        else:
            await self._correct(ticket, delta)

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
        refund = self._correct_tokens is not None and ticket is not None
        await self._settle(ticket, -tokens if refund else 0)

    async def aclose(self) -> None:
        try:
            await self.inner.aclose()
        finally:
            await self.budget.aclose()
