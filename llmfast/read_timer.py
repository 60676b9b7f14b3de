"""aiohttp's read timeout (``sock_read``) kept on the loop's shared timer.

aiohttp's connection protocol re-arms its read timer at every read that brings bytes:
it cancels a ``TimerHandle`` and makes another, and a cancelled one stays in the
loop's heap until it comes up. A call makes two or three of them (sending, the
headers, each piece of the body), a stream one per read. `SharedReadTimer` keeps
aiohttp's rules — when the limit starts, moves, stops (a paused read, the end of the
body, a closed connection) and what passing it does (aiohttp's own
``SocketTimeoutError``, so the error is the same) — and keeps only the limit's time:
moving it is one clock read, and the waiting is done by the loop's
[`sweeper`][llmfast.sweeper.sweeper_of], one timer for every limit.

`install` swaps it into a connector when this aiohttp's protocol has the hooks it
overrides; otherwise the connector is left as it is (aiohttp's own timers).
"""

from __future__ import annotations

import functools
from typing import Any

import aiohttp
from aiohttp.client_proto import ResponseHandler

from llmfast.errors import ReadTimeout
from llmfast.sweeper import Sweeper, sweeper_of

__all__ = ["SharedReadTimer", "install"]

_HOOKS = ("_reschedule_timeout", "_drop_timeout", "_on_read_timeout", "read_timeout")


class SharedReadTimer(ResponseHandler):
    """aiohttp's connection protocol, its read timeout on the shared timer."""

    __slots__ = ("_read_deadline", "_read_sweeper")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._read_deadline = 0.0
        self._read_sweeper: Sweeper | None = None
        super().__init__(*args, **kwargs)

    def _reschedule_timeout(self) -> None:
        timeout = self._read_timeout
        if not timeout:
            self._drop_timeout()
            return
        self._read_deadline = when = self._loop.time() + timeout
        sweeper = self._read_sweeper
        if sweeper is None:
            sweeper = self._read_sweeper = sweeper_of(self._loop)
            sweeper.add(self, when)
        elif when < sweeper.at:  # a shorter limit than the sweep set for
            sweeper.add(self, when)

    def _drop_timeout(self) -> None:
        sweeper = self._read_sweeper
        if sweeper is not None:
            self._read_sweeper = None
            sweeper.watched.discard(self)

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    @read_timeout.setter
    def read_timeout(self, read_timeout: float | None) -> None:
        """Turned off, the limit goes at once (aiohttp's own waits for the next read)."""
        self._read_timeout = read_timeout
        if not read_timeout:
            self._drop_timeout()

    def _sweep_limit(self) -> tuple[float, Any]:
        return self._read_deadline, ReadTimeout

    def _sweep_expire(self, reason: Any) -> None:
        self._read_sweeper = None
        self._on_read_timeout()


def install(connector: aiohttp.BaseConnector) -> bool:
    """Make ``connector``'s new connections use `SharedReadTimer`; False when this
    aiohttp's connector or protocol is not shaped as expected (left unchanged)."""
    factory = getattr(connector, "_factory", None)
    if not (
        isinstance(factory, functools.partial)
        and factory.func is ResponseHandler
        and all(hasattr(ResponseHandler, name) for name in _HOOKS)
    ):
        return False
    shared: Any = functools.partial(SharedReadTimer, *factory.args, **factory.keywords)
    connector._factory = shared
    return True
