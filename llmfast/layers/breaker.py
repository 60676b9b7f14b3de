"""The circuit breaker: stop sending to a backend that keeps failing.

Closed, it counts outcomes in a sliding window; it opens after ``consecutive``
failures in a row, or when at least ``min_calls`` calls in the window failed in a
ratio of ``failure_ratio`` or more. Open, calls fail fast with ``CircuitOpenError``
(or wait for the cooldown, when asked). After ``cooldown`` seconds it is half-open:
one probe goes through; success closes it, failure opens it again.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, Literal

from llmfast.errors import (
    APIStatusError,
    CircuitOpenError,
    DeadlineExceeded,
    StreamEventError,
    TransportError,
)
from llmfast.events import emit
from llmfast.transport import Request, Response, Transport, TransportLayer
from llmfast.watched import watched

__all__ = ["CircuitBreaker", "CircuitBreakerLayer", "is_backend_failure"]

State = Literal["closed", "open", "half_open"]


def is_backend_failure(error: BaseException) -> bool:
    """The default: transport failures, 408/429/5xx and in-stream errors count; client
    errors (a bad request, a bad key) and the caller's own deadline don't."""
    if isinstance(error, DeadlineExceeded):
        return False
    if isinstance(error, APIStatusError):
        status = error.effective_status
        return status in (408, 429) or status >= 500
    return isinstance(error, (TransportError, StreamEventError))


class CircuitBreaker:
    """Configuration of a circuit breaker; ``CircuitBreaker(...)(inner)`` builds one."""

    def __init__(
        self,
        *,
        consecutive: int = 5,
        failure_ratio: float = 0.5,
        min_calls: int = 10,
        window: float = 30.0,
        cooldown: float = 15.0,
        wait: bool = False,
        is_failure: Callable[[BaseException], bool] = is_backend_failure,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        if consecutive < 1 or min_calls < 1 or not 0 < failure_ratio <= 1:
            raise ValueError("consecutive and min_calls must be >= 1, failure_ratio in (0, 1]")
        if window <= 0 or cooldown < 0:
            raise ValueError("window must be > 0 and cooldown >= 0")
        self.consecutive = consecutive
        self.failure_ratio = failure_ratio
        self.min_calls = min_calls
        self.window = window
        self.cooldown = cooldown
        self.wait = wait
        self.is_failure = is_failure
        self.clock = clock
        self.sleep = sleep

    def __call__(self, inner: Transport) -> CircuitBreakerLayer:
        return CircuitBreakerLayer(inner, self)


class CircuitBreakerLayer(TransportLayer):
    """A circuit breaker around the transport inside it."""

    def __init__(self, inner: Transport, config: CircuitBreaker) -> None:
        super().__init__(inner)
        self.config = config
        self.state: State = "closed"
        self.retry_at: float | None = None  # when an open circuit lets a probe through
        self._outcomes: deque[tuple[float, bool]] = deque()
        self._failures_in_window = 0
        self._run = 0  # consecutive failures
        self._probing = False
        self._probe_done = asyncio.Event()

    def describe(self) -> str:
        return f"CircuitBreaker({self.state})"

    @property
    def name(self) -> str:
        """The guarded transport, as ``repr`` shows it (never a key)."""
        return repr(self.inner)

    def available(self) -> bool:
        """True when a call would be let through now."""
        if self.state == "closed":
            return True
        if self.state == "open":
            return self.retry_at is None or self.config.clock() >= self.retry_at
        return not self._probing

    async def send(self, request: Request, /) -> Response:
        probe = await self._admit(request)
        try:
            response = await self.inner.send(request)
        except BaseException as exc:
            self._settle(request, probe, exc)
            raise
        if not response.stream:
            self._settle(request, probe, None)
            return response
        return watched(response, partial(self._settle, request, probe))

    async def _admit(self, request: Request) -> bool:
        """Let the call through (True if it is the half-open probe) or refuse it."""
        config = self.config
        while True:
            if self.state == "closed":
                return False
            now = config.clock()
            if self.state == "open" and self.retry_at is not None and now >= self.retry_at:
                self._set_state(request, "half_open")
            if self.state == "half_open" and not self._probing:
                self._probing = True
                self._probe_done.clear()
                return True
            if not config.wait:
                raise CircuitOpenError(self.name, self.retry_at)
            await self._wait_for_a_chance(request, now)

    async def _wait_for_a_chance(self, request: Request, now: float) -> None:
        deadline = request.deadline
        if self.state == "open" and self.retry_at is not None:
            if deadline is not None and self.retry_at >= deadline:
                raise CircuitOpenError(self.name, self.retry_at)
            await self.config.sleep(self.retry_at - now)
            return
        # half-open with a probe in flight: wait for its outcome
        timeout = None if deadline is None else max(deadline - now, 0.0)
        try:
            await asyncio.wait_for(self._probe_done.wait(), timeout)
        except asyncio.TimeoutError:
            raise CircuitOpenError(self.name, self.retry_at) from None

    def _settle(self, request: Request, probe: bool, error: BaseException | None) -> None:
        if error is not None and not isinstance(error, Exception):
            failed: bool | None = None  # cancelled or exiting: says nothing of the backend
        else:
            # A client error (bad request, bad key) still shows the backend answering.
            failed = error is not None and self.config.is_failure(error)
        if probe:
            self._probing = False
            self._probe_done.set()
            if failed is True:
                self._open(request)
            elif failed is False:
                self._close(request)
            return  # unknown outcome: stay half-open, the next call probes
        if failed is not None:
            self._record(request, failed)

    def _record(self, request: Request, failed: bool) -> None:
        config = self.config
        now = config.clock()
        outcomes = self._outcomes
        outcomes.append((now, failed))
        self._failures_in_window += failed
        horizon = now - config.window
        while outcomes and outcomes[0][0] < horizon:
            self._failures_in_window -= outcomes.popleft()[1]
        self._run = self._run + 1 if failed else 0
        if self.state != "closed" or not failed:
            return
        calls = len(outcomes)
        if self._run >= config.consecutive or (
            calls >= config.min_calls and self._failures_in_window / calls >= config.failure_ratio
        ):
            self._open(request)

    def _open(self, request: Request) -> None:
        self.retry_at = self.config.clock() + self.config.cooldown
        self._set_state(request, "open")

    def _close(self, request: Request) -> None:
        self._outcomes.clear()
        self._failures_in_window = 0
        self._run = 0
        self.retry_at = None
        self._set_state(request, "closed")

    def _set_state(self, request: Request, state: State) -> None:
        if state != self.state:
            self.state = state
            emit(request, "breaker.state", backend=self.name, state=state)
