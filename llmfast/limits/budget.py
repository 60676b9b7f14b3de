"""Budgets: where the requests and tokens windows live (this process, or Redis).

A budget answers one question atomically: may a request needing ``tokens`` go now?
If so it records it and returns a ticket for later corrections; if not it records
nothing and says how long to wait. The FIFO queue (``Admission``) does the waiting.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from llmfast.limits.window import Entry, SlidingWindow

__all__ = ["Clock", "LimitBudget", "LocalBudget", "LocalTicket", "Ticket"]

Clock = Callable[[], float]
Ticket = object
"""What a budget returns for an admission; passed back to ``LimitBudget.correct``."""


class LimitBudget(Protocol):
    """The shared state of the limits."""

    request_limit: int | None
    token_limit: int | None

    async def reserve(self, tokens: int) -> tuple[float, Ticket]:
        """``(0.0, ticket)`` when admitted now, else ``(seconds to wait, None)``."""
        ...

    async def correct(self, ticket: Ticket, delta: int) -> None:
        """Charge (``delta > 0``) or refund (``delta < 0``) tokens of an admission."""
        ...

    async def settle(self, ticket: Ticket, delta: int) -> None:
        """The admitted request has reached the provider (its reply is here): count it
        from now rather than from its admission plus ``margin``, whichever is earlier,
        and correct its tokens by ``delta``."""
        ...

    async def pause(self, seconds: float) -> None:
        """Admit nothing for ``seconds`` (shared by every user of the budget)."""
        ...

    @property
    def available_requests(self) -> int | None:
        """Requests that could go now (last known for a remote budget); None: no limit."""
        ...

    @property
    def available_tokens(self) -> int | None:
        """Tokens that could go now (last known for a remote budget); None: no limit."""
        ...

    async def aclose(self) -> None:
        """Release connections the budget opened."""
        ...


LocalTicket = tuple[Entry | None, Entry | None]
"""A local admission: its entries in the requests and the tokens windows."""


class LocalBudget:
    """Requests and tokens sliding windows in this process, read with ``clock``.

    Each admission counts from ``margin`` seconds after it until ``settle`` says the
    request has reached the provider (see ``SlidingWindow``).
    """

    __slots__ = ("_clock", "_paused_until", "_requests", "_tokens", "request_limit", "token_limit")

    def __init__(
        self,
        *,
        requests: int | None,
        tokens: int | None,
        period: float,
        clock: Clock,
        margin: float = 0.0,
    ) -> None:
        self.request_limit = requests
        self.token_limit = tokens
        self._requests = None if requests is None else SlidingWindow(requests, period, margin)
        self._tokens = None if tokens is None else SlidingWindow(tokens, period, margin)
        self._clock = clock
        self._paused_until = float("-inf")

    def wait_now(self, tokens: int) -> float:
        """Seconds until a request needing ``tokens`` could go (0.0: now); takes nothing."""
        now = self._clock()
        wait = self._paused_until - now
        requests, window = self._requests, self._tokens
        if requests is not None:
            wait = max(wait, requests.wait(1, now))
        if window is not None:
            wait = max(wait, window.wait(tokens, now))
        return wait

    def reserve_now(self, tokens: int) -> tuple[float, LocalTicket | None]:
        """The synchronous ``reserve``."""
        wait = self.wait_now(tokens)
        if wait > 0:
            return wait, None
        now = self._clock()
        requests, window = self._requests, self._tokens
        return 0.0, (
            None if requests is None else requests.add(1, now),
            None if window is None else window.add(tokens, now),
        )

    def record(self, tokens: int) -> LocalTicket:
        """Count an admission now, whether or not it fits (e.g. one Redis granted)."""
        now = self._clock()
        requests, window = self._requests, self._tokens
        return (
            None if requests is None else requests.record(1, now),
            None if window is None else window.record(tokens, now),
        )

    def used(self) -> tuple[float, float]:
        """Requests and tokens in the windows now (0 for a limit not set)."""
        now = self._clock()
        requests, window = self._requests, self._tokens
        return (
            0.0 if requests is None else requests.used(now),
            0.0 if window is None else window.used(now),
        )

    def set_limits(self, requests: int | None, tokens: int | None) -> None:
        """Change the limits, keeping what the windows hold."""
        if self._requests is not None and requests is not None:
            self._requests.limit = self.request_limit = requests
        if self._tokens is not None and tokens is not None:
            self._tokens.limit = self.token_limit = tokens

    async def reserve(self, tokens: int) -> tuple[float, Ticket]:
        return self.reserve_now(tokens)

    def correct_now(self, ticket: Ticket, delta: int) -> None:
        """The synchronous ``correct``."""
        if self._tokens is not None and type(ticket) is tuple and ticket[1] is not None:
            self._tokens.correct(ticket[1], delta)

    async def correct(self, ticket: Ticket, delta: int) -> None:
        self.correct_now(ticket, delta)

    def settle_now(self, ticket: Ticket, delta: int) -> None:
        """The synchronous ``settle``."""
        if type(ticket) is tuple:
            now = self._clock()
            for entry in ticket:
                if entry is not None:
                    SlidingWindow.settle(entry, now)
            if delta:
                self.correct_now(ticket, delta)

    async def settle(self, ticket: Ticket, delta: int) -> None:
        self.settle_now(ticket, delta)

    async def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    @property
    def available_requests(self) -> int | None:
        window = self._requests
        if window is None:
            return None
        return max(int(window.limit - window.used(self._clock())), 0)

    @property
    def available_tokens(self) -> int | None:
        window = self._tokens
        if window is None:
            return None
        return max(int(window.limit - window.used(self._clock())), 0)

    async def aclose(self) -> None:
        return None
