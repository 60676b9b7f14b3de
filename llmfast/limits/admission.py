"""``Admission``: the first-come, first-served queue in front of a rate limit.

Only the request at the head of the queue consults the budget; the others wait for
their turn, so a large request is never overtaken by small ones. The head sleeps
exactly as long as the budget says (with the injected ``sleep``), or until a
concurrency permit is released. Whoever cannot be admitted before its deadline or
``max_wait`` is told at once, with the wait still ahead of it known.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from llmfast.errors import DeadlineExceeded, QueueFullError, QueueTimeout, Timeout
from llmfast.events import emit
from llmfast.limits.budget import Clock, LimitBudget, Ticket
from llmfast.limits.hints import ServerHints
from llmfast.transport import Request

__all__ = ["Admission", "Sleep"]

Sleep = Callable[[float], Awaitable[Any]]
_INF = math.inf


class _Waiter:
    __slots__ = ("by_deadline", "future", "give_up", "started")

    def __init__(self, started: float, give_up: float, *, by_deadline: bool) -> None:
        self.started = started
        self.give_up = give_up
        self.by_deadline = by_deadline
        self.future: asyncio.Future[None] | None = None

    def error(self, now: float) -> Timeout:
        waited = now - self.started
        if self.by_deadline:
            return DeadlineExceeded(
                f"the call's deadline passes while queued for the rate limit (after {waited:.3f} s)"
            )
        return QueueTimeout(
            f"the rate limit's queue would take longer than max_wait (after {waited:.3f} s)"
        )


class Admission:
    """Admits requests in arrival order when the budget, the server's hints and the
    concurrency permits all allow; ``release()`` returns a permit."""

    def __init__(
        self,
        budget: LimitBudget,
        hints: ServerHints | None,
        *,
        concurrency: int | None,
        max_queue: int,
        max_wait: float | None,
        clock: Clock,
        sleep: Sleep | None,
    ) -> None:
        self.budget = budget
        self.hints = hints
        self.active = 0
        self._permits = _INF if concurrency is None else concurrency
        self._max_queue = max_queue
        self._max_wait = _INF if max_wait is None else max_wait
        self._clock = clock
        self._sleep = sleep
        self._waiters: deque[_Waiter] = deque()
        self._wakeup: asyncio.Future[None] | None = None

    @property
    def queue_length(self) -> int:
        """Requests waiting to be admitted."""
        return len(self._waiters)

    def release(self) -> None:
        """Return a concurrency permit (exactly once per admission)."""
        self.active -= 1
        self.poke()

    def poke(self) -> None:
        """Make the head of the queue look again (a permit or tokens came back)."""
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    async def enter(self, request: Request, tokens: int) -> Ticket:
        """Wait for the request's turn and take its budget and permit."""
        if not self._waiters and self.active < self._permits:
            hints = self.hints
            if hints is None or not hints.seen or hints.wait(tokens, self._clock()) <= 0:
                self.active += 1
                try:
                    wait, ticket = await self.budget.reserve(tokens)
                except BaseException:
                    self.active -= 1
                    raise
                if wait <= 0:
                    if hints is not None and hints.seen:
                        hints.take(tokens, self._clock())
                    if request.on_event is not None:
                        emit(request, "ratelimit.wait", 0.0, queue_length=0)
                    return ticket
                self.active -= 1
        return await self._queue(request, tokens)

    async def _queue(self, request: Request, tokens: int) -> Ticket:
        waiters = self._waiters
        if len(waiters) >= self._max_queue:
            raise QueueFullError(f"the rate limit's queue is full ({self._max_queue} waiting)")
        started = self._clock()
        give_up = started + self._max_wait
        deadline = request.deadline
        if deadline is not None and deadline <= give_up:
            waiter = _Waiter(started, deadline, by_deadline=True)
        else:
            waiter = _Waiter(started, give_up, by_deadline=False)
        if waiters:
            waiter.future = asyncio.get_running_loop().create_future()
            if waiter.give_up != _INF:
                self.poke()  # the head looks whether the newcomer can make it in time
        waiters.append(waiter)
        try:
            if waiter.future is not None:
                await waiter.future  # our turn, or an error if we cannot make it in time
            ticket = await self._wait_at_head(waiter, tokens)
        finally:
            self._leave(waiter)
        if request.on_event is not None:
            emit(request, "ratelimit.wait", self._clock() - started, queue_length=len(waiters))
        return ticket

    async def _wait_at_head(self, waiter: _Waiter, tokens: int) -> Ticket:
        hints, budget = self.hints, self.budget
        while True:
            now = self._clock()
            wait = _INF  # until a permit is released
            if self.active < self._permits:
                wait = 0.0 if hints is None else hints.wait(tokens, now)
                if wait <= 0:
                    self.active += 1
                    try:
                        wait, ticket = await budget.reserve(tokens)
                    except BaseException:
                        self.active -= 1
                        raise
                    now = self._clock()
                    if wait <= 0:
                        if hints is not None:
                            hints.take(tokens, now)
                        return ticket
                    self.active -= 1
            horizon = now if wait == _INF else now + wait
            if horizon > waiter.give_up or now >= waiter.give_up:
                raise waiter.error(now)
            self._expire_followers(horizon, now)
            nap = min(wait, min(w.give_up for w in self._waiters) - now)
            await self._nap(nap)

    def _expire_followers(self, horizon: float, now: float) -> None:
        """Fail at once the waiters behind the head that cannot be admitted in time."""
        waiters = self._waiters
        late = [w for w in waiters if w.future is not None and w.give_up <= horizon]
        for w in late:
            waiters.remove(w)
            future = w.future
            if future is not None and not future.done():
                future.set_exception(w.error(now))

    def _leave(self, waiter: _Waiter) -> None:
        waiters = self._waiters
        if waiters and waiters[0] is waiter:
            waiters.popleft()
            if waiters:
                future = waiters[0].future
                if future is not None and not future.done():
                    future.set_result(None)
        elif waiter in waiters:
            waiters.remove(waiter)

    async def _nap(self, seconds: float) -> None:
        """Sleep ``seconds`` (forever if infinite), cut short by ``poke()``."""
        loop = asyncio.get_running_loop()
        wakeup = self._wakeup = loop.create_future()
        try:
            if seconds == _INF:
                await wakeup
            elif self._sleep is None:
                timer = loop.call_later(seconds, _resolve, wakeup)
                try:
                    await wakeup
                finally:
                    timer.cancel()
            else:
                sleeper = asyncio.ensure_future(self._sleep(seconds))
                try:
                    await asyncio.wait((sleeper, wakeup), return_when=asyncio.FIRST_COMPLETED)
                finally:
                    if not sleeper.done():
                        sleeper.cancel()
                        await asyncio.wait((sleeper,))
        finally:
            self._wakeup = None
            if not wakeup.done():
                wakeup.cancel()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
