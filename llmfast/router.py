"""``Router``: failover and load balancing across several backends.

A Router is itself a backend-like Transport, so it nests in the onion
(``Client(Router([...]), layers=[Retry()])``). Each route's backend sits behind its
own circuit breaker; a call goes to the routes in the strategy's order, skipping open
circuits, and falls back to the next on a retryable failure (a stream: until its
first chunk) within the call's deadline. When every circuit is open it waits for the
soonest to let a probe through, if the deadline allows, instead of failing.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from llmfast.commit import commit_first_chunk
from llmfast.errors import CircuitOpenError, ContextLengthError, LLMFastError
from llmfast.events import emit
from llmfast.layers.breaker import CircuitBreaker, CircuitBreakerLayer
from llmfast.layers.retry_policy import RetryPolicy
from llmfast.pool import HTTPPool
from llmfast.transport import Request, Response, Transport
from llmfast.usage import record_earlier
from llmfast.watched import watched

__all__ = ["Route", "Router"]

Strategy = Literal["priority", "weighted", "least_busy"]


@dataclass
class Route:
    """One backend of a Router.

    Attributes:
        backend: the backend (any Transport; a ``Backend`` is bound to the Client's pool).
        model: the model to ask this backend for (replaces the request's), if set.
        weight: share of calls under the ``weighted`` strategy.
        priority: lower goes first under ``priority`` (ties keep the given order).
    """

    backend: Transport
    model: str | None = None
    weight: float = 1.0
    priority: int = 0


class _RouteState:
    __slots__ = ("breaker", "in_flight", "route", "transport")

    def __init__(self, route: Route, breaker: CircuitBreaker | None) -> None:
        self.route = route
        self.breaker: CircuitBreakerLayer | None = None
        self.transport: Transport = route.backend
        if breaker is not None:
            self.breaker = breaker(route.backend)
            self.transport = self.breaker
        self.in_flight = 0

    def available(self) -> bool:
        return self.breaker is None or self.breaker.available()

    def ended(self, error: BaseException | None) -> None:
        """A stream sent to this route has ended (read out, failed or closed)."""
        self.in_flight -= 1


class Router:
    """Fail over and balance load across backends.

    Args:
        routes: ``Route``s, or bare backends (priority in the given order).
        strategy: ``"priority"`` (first available in priority order), ``"weighted"``
            (random by weight, the rest as fallbacks) or ``"least_busy"`` (fewest calls
            in flight).
        breaker: the circuit breaker put in front of each backend (None: no breaker).
        policy: which failures fall over to the next backend (its ``is_retryable``).
        fallback_on_context_length: also fall over on ``ContextLengthError`` (to a
            backend with a longer context).
        wait_for_cooldown: when every circuit is open, wait for the soonest probe
            rather than fail, if the call's deadline allows.
    """

    kind = "router"

    def __init__(
        self,
        routes: Sequence[Route | Transport],
        *,
        strategy: Strategy = "priority",
        breaker: CircuitBreaker | None = None,
        policy: RetryPolicy | None = None,
        fallback_on_context_length: bool = False,
        wait_for_cooldown: bool = True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if not routes:
            raise ValueError("a Router needs at least one route")
        if strategy not in ("priority", "weighted", "least_busy"):
            raise ValueError(f"unknown strategy {strategy!r}")
        breaker = breaker if breaker is not None else CircuitBreaker(clock=clock, sleep=sleep)
        resolved = [r if isinstance(r, Route) else Route(r) for r in routes]
        ordered = sorted(resolved, key=lambda r: r.priority)
        self._states = [_RouteState(route, breaker) for route in ordered]
        self.strategy = strategy
        self.policy = policy or RetryPolicy()
        self.fallback_on_context_length = fallback_on_context_length
        self.wait_for_cooldown = wait_for_cooldown
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        first = ordered[0]
        self.model: str | None = first.model or getattr(first.backend, "model", None)

    @property
    def breakers(self) -> list[CircuitBreakerLayer]:
        """Each route's circuit breaker, in priority order."""
        return [s.breaker for s in self._states if s.breaker is not None]

    def bind(self, pool: HTTPPool) -> None:
        """Give every backend the Client's pool."""
        for state in self._states:
            bind = getattr(state.route.backend, "bind", None)
            if bind is not None:
                bind(pool)

    async def warmup(self, connections: int) -> int:
        """Warm up every backend; returns the connections opened in all."""
        opened = 0
        for state in self._states:
            warmup = getattr(state.route.backend, "warmup", None)
            if warmup is not None:
                opened += await warmup(connections)
        return opened

    def cache_identity(self) -> str:
        """What names this router in cache and coalescing keys: every route's backend
        and model override (never a key)."""
        from llmfast.layers.keys import backend_identity

        return "router " + " | ".join(
            f"{backend_identity(s.route.backend)} model={s.route.model}" for s in self._states
        )

    async def aclose(self) -> None:
        for state in self._states:
            await state.route.backend.aclose()

    def __repr__(self) -> str:
        routes = ", ".join(repr(s.transport) for s in self._states)
        return f"Router[{self.strategy}]({routes})"

    async def send(self, request: Request, /) -> Response:
        last_error: BaseException | None = None
        waits = 0
        while True:
            candidates = [s for s in self._ordered() if s.available()]
            if not candidates:
                waits += 1
                if waits > self.policy.max_attempts and last_error is not None:
                    raise last_error  # the backends keep failing their probes
                await self._wait_for_a_circuit(request, last_error)
                continue
            for state in candidates:
                try:
                    return await self._send_to(state, request)
                except CircuitOpenError as exc:  # opened since we looked
                    last_error = exc
                except LLMFastError as exc:
                    if not self._falls_over(exc):
                        raise
                    last_error = exc
                    record_earlier(request, exc)  # the attempt given up still counts
                    emit(
                        request,
                        "fallback",
                        backend=repr(state.route.backend),
                        error=type(exc).__name__,
                    )
            if not any(s.available() for s in self._states):
                continue  # every circuit opened on the way: wait for the soonest
            assert last_error is not None
            raise last_error

    async def _send_to(self, state: _RouteState, request: Request) -> Response:
        model = state.route.model
        original = request
        if model is not None and model != request.body.model:
            request = request.with_body(msgspec.structs.replace(request.body, model=model))
        state.in_flight += 1
        try:
            response = await commit_first_chunk(await state.transport.send(request))
        except BaseException:
            state.in_flight -= 1
            original.earlier_usage = request.earlier_usage
            raise
        original.earlier_usage = request.earlier_usage
        if not response.stream:
            state.in_flight -= 1
            return response
        return watched(response, state.ended)

    def _falls_over(self, error: LLMFastError) -> bool:
        if isinstance(error, ContextLengthError):
            return self.fallback_on_context_length
        return self.policy.is_retryable(error)

    def _ordered(self) -> list[_RouteState]:
        states = self._states
        if len(states) == 1 or self.strategy == "priority":
            return states
        if self.strategy == "least_busy":
            return sorted(states, key=lambda s: s.in_flight)  # stable: ties keep priority
        chosen = self._rng.choices(states, weights=[s.route.weight for s in states])[0]
        return [chosen, *(s for s in states if s is not chosen)]

    async def _wait_for_a_circuit(self, request: Request, last_error: BaseException | None) -> None:
        times = [b.retry_at for b in self.breakers if b.retry_at is not None]
        soonest = min(times) if times else None
        deadline = request.deadline
        if (
            not self.wait_for_cooldown
            or soonest is None
            or (deadline is not None and soonest >= deadline)
        ):
            if last_error is not None:
                raise last_error
            raise CircuitOpenError(repr(self), soonest)
        await self._sleep(max(soonest - self._clock(), 0.0))
