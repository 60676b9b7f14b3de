"""The leader's side of a shared flight: its frames to Redis, in order, off the path
of its own callers.

[`add`][llmfast.layers.flight_publisher.Publisher.add] never waits: a writer task sends
what is pending, and frames that come while a write is under way go together in the
next one (a fast stream costs a few round trips, not one a chunk, and the leader reads
its upstream at the upstream's pace). The lease is renewed from a timer every third of
its life. [`close`][llmfast.layers.flight_publisher.Publisher.close] waits for the
writes, then sends the final frame and releases the lease in one script.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from llmfast.layers import flight_frames as f
from llmfast.layers.flight_store import RedisFlightStore

__all__ = ["Publisher"]

_ALONE = f.encode_frame(f.Frame(f.ALONE))


class Publisher:
    """Publishes one leader's frames (see the module)."""

    __slots__ = (
        "_alone",
        "_failed",
        "_key",
        "_loop",
        "_pending",
        "_renewal",
        "_renewing",
        "_store",
        "_token",
        "_writer",
        "sharing",
    )

    def __init__(
        self,
        store: RedisFlightStore,
        key: str,
        token: str,
        failed: Callable[[BaseException], None],
    ) -> None:
        self._store, self._key, self._token, self._failed = store, key, token, failed
        self._loop = asyncio.get_running_loop()
        self._pending: list[bytes] = []
        self._writer: asyncio.Task[None] | None = None
        self._renewing: asyncio.Task[None] | None = None
        self._renewal = self._loop.call_later(store.lease / 3, self._renew_now)
        self._alone = False
        self.sharing = True  # False once a write failed or a frame could not travel

    def add(self, frame: f.Frame) -> None:
        """Queue ``frame`` for the followers."""
        if not self.sharing:
            return
        try:
            data = f.encode_frame(frame)
        except (TypeError, ValueError):
            self.alone()
            return
        self._pending.append(data)
        if self._writer is None:
            self._writer = self._loop.create_task(self._write())

    def alone(self) -> None:
        """Something cannot travel: the followers will call on their own."""
        self._alone = True
        self.sharing = False

    async def _write(self) -> None:
        store = self._store
        try:
            while self._pending and self.sharing:
                batch, self._pending = self._pending, []
                await store.append(self._key, self._token, batch)
        except store.errors as exc:
            self._fail(exc)
        finally:
            self._writer = None

    def _fail(self, exc: BaseException) -> None:
        if self.sharing or self._alone:
            self.sharing = self._alone = False
            self._failed(exc)

    def _renew_now(self) -> None:
        self._renewing = self._loop.create_task(self._renew())

    async def _renew(self) -> None:
        with contextlib.suppress(*self._store.errors):
            if await self._store.renew(self._key, self._token):
                self._renewal = self._loop.call_later(self._store.lease / 3, self._renew_now)

    async def close(self, final: f.Frame | None) -> None:
        """Send what is pending, then ``final`` (``None``: each follower calls on its
        own), and give the lease up."""
        self._renewal.cancel()
        for task in (self._renewing, self._writer):
            if task is not None:
                if task is self._renewing:
                    task.cancel()
                await asyncio.wait([task])
        store = self._store
        data = _ALONE
        if final is not None and not self._alone:
            with contextlib.suppress(TypeError, ValueError):  # else: ALONE
                data = f.encode_frame(final)
        try:
            if self.sharing or self._alone:
                await store.finish(self._key, self._token, data)
            else:
                await store.release(self._key, self._token)
        except store.errors as exc:
            self._fail(exc)
