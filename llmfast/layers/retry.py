"""The retry layer: sends again what failed for a reason worth retrying.

A [`RetryPolicy`][llmfast.layers.RetryPolicy] decides; this layer executes:
it waits what the server asked (or a jittered backoff), within the call's deadline,
closes every response it discards, and reports each attempt to the event hook.

A stream is retried only until its first chunk reaches the caller (gRPC's commit
point): after that a failure propagates, and ``ChatStream`` turns it into a
``StreamInterruptedError`` carrying everything received.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from llmfast.commit import commit_first_chunk
from llmfast.events import emit
from llmfast.layers.retry_policy import RetryPolicy
from llmfast.transport import (
    Request,
    Response,
    Transport,
    TransportLayer,
)
from llmfast.usage import record_earlier

__all__ = ["Retry", "RetryLayer", "set_testing"]

Sleep = Callable[[float], Awaitable[Any]]
Clock = Callable[[], float]

_testing = False


def set_testing(enabled: bool) -> None:
    """Make every retry wait instant (events still report the wait asked for).

    For test suites: ``llmfast.layers.retry.set_testing(True)``.
    """
    global _testing
    _testing = enabled


class Retry:
    """Configuration of the retry layer; ``Retry(...)(inner)`` builds it.

    Args:
        policy: the decisions; by default a ``RetryPolicy`` built from ``options``.
        sleep: injectable for exact tests.
        clock: injectable for exact tests (``time.monotonic``-based, the same clock as
            ``Request.deadline``).
        **options: ``RetryPolicy`` fields, e.g. ``Retry(max_attempts=3)``.
    """

    def __init__(
        self,
        *,
        policy: RetryPolicy | None = None,
        sleep: Sleep | None = None,
        clock: Clock | None = None,
        **options: Any,
    ) -> None:
        if policy is not None and options:
            raise ValueError("pass either policy= or RetryPolicy options, not both")
        self.policy = policy if policy is not None else RetryPolicy(**options)
        self.sleep = sleep
        self.clock = clock or time.monotonic

    def __call__(self, inner: Transport) -> RetryLayer:
        return RetryLayer(inner, self)


class _Attempts:
    """Bookkeeping of one call's attempts."""

    __slots__ = ("count", "started", "waits")

    def __init__(self, started: float) -> None:
        self.count = 0
        self.started = started
        self.waits: Iterator[float] | None = None


class RetryLayer(TransportLayer):
    """Retries retryable failures of the transport inside it."""

    def __init__(self, inner: Transport, config: Retry) -> None:
        super().__init__(inner)
        self.config = config
        self.policy = config.policy

    def describe(self) -> str:
        return f"Retry(max_attempts={self.policy.max_attempts})"

    async def send(self, request: Request, /) -> Response:
        # The first attempt is the hot path (every default Client runs it): one clock
        # read, no bookkeeping object, and no first-chunk wait for a whole response.
        clock = self.config.clock
        began = clock()
        if request.on_event is not None:
            emit(request, "attempt", attempt=1)
        try:
            response = await self.inner.send(request)
            if response.stream:  # committed at its first chunk; failures before it retry
                response = await commit_first_chunk(response)
        except Exception as exc:
            attempts = _Attempts(began)
            attempts.count = 1
            await self._wait_or_raise(request, attempts, exc, clock() - began)
            return await self._again(request, attempts)
        if request.on_event is not None:
            emit(request, "attempt.ok", clock() - began, attempt=1)
        return response

    async def _again(self, request: Request, attempts: _Attempts) -> Response:
        """The attempts after a first one failed (and its wait was slept)."""
        clock = self.config.clock
        while True:
            attempts.count += 1
            if request.on_event is not None:
                emit(request, "attempt", attempt=attempts.count)
            began = clock()
            try:
                response = await commit_first_chunk(await self.inner.send(request))
            except Exception as exc:
                await self._wait_or_raise(request, attempts, exc, clock() - began)
            else:
                if request.on_event is not None:
                    emit(request, "attempt.ok", clock() - began, attempt=attempts.count)
                return response

    async def _wait_or_raise(
        self, request: Request, attempts: _Attempts, error: Exception, took: float
    ) -> None:
        """Sleep before the next attempt, or re-raise ``error`` if there is none."""
        policy = self.policy
        retryable = policy.is_retryable(error)
        if request.on_event is not None:
            emit(
                request,
                "attempt.failed",
                took,
                attempt=attempts.count,
                error=type(error).__name__,
                retryable=retryable,
            )
        if not retryable or attempts.count >= policy.max_attempts:
            raise error
        delay, reason = self._delay(error, attempts)
        now = self.config.clock()
        deadline = request.deadline
        if delay is None or (deadline is not None and now + delay >= deadline):
            raise error  # the server asks for longer than we may wait: give up now
        if policy.max_elapsed is not None and now + delay - attempts.started > policy.max_elapsed:
            raise error
        record_earlier(request, error)  # a discarded attempt's reported usage still counts
        if request.on_event is not None:
            emit(request, "retry", delay, attempt=attempts.count, delay=delay, reason=reason)
        sleep = self.config.sleep
        if sleep is not None:
            await sleep(delay)
        else:
            await asyncio.sleep(0 if _testing else delay)

    def _delay(self, error: Exception, attempts: _Attempts) -> tuple[float | None, str]:
        policy = self.policy
        asked = policy.server_wait(error)
        if asked is not None:
            return (asked if asked <= policy.max_server_wait else None), "server"
        if attempts.waits is None:
            attempts.waits = policy.backoff_waits()
        return next(attempts.waits), "backoff"
