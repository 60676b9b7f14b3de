"""A shared flight's leader going on for the processes that follow it.

Followers say they wait (their claim puts them in the key's set of followers in
Redis, and they refresh it every ``poll``: see
[`RedisFlightStore`][llmfast.layers.RedisFlightStore]). When the last local caller of a
leading flight leaves, the flight asks Redis once how many follow it: with none it is
cancelled, as a flight of one process is; with some it goes on for them (a
``coalesce.keep`` event), publishing to its end, and asks again every ``poll``,
cancelling once none is left. A flight whose callers stay never asks.
"""

from __future__ import annotations

import asyncio
import secrets

from llmfast.events import emit
from llmfast.layers.coalesce import _Flight
from llmfast.layers.flight_store import RedisFlightStore
from llmfast.transport import Request, Transport

__all__ = ["FollowedFlight", "cancel_pending"]


class FollowedFlight(_Flight):
    """A local flight that another process may follow (see the module); the base of
    ``SharedFlight`` (``llmfast.layers.coalesce_shared``)."""

    def __init__(
        self,
        flights: dict[str, _Flight],
        key: str,
        inner: Transport,
        request: Request,
        store: RedisFlightStore,
    ) -> None:
        self.store = store
        self.member = secrets.token_hex(8)  # this process, as a follower of the key
        self.leading: str | None = None  # the token of this process's lease, as leader
        self.abandoned = False
        self.upstream = request  # the shared call's request (its hook gets the events)
        self._watcher: asyncio.Task[None] | None = None
        super().__init__(flights, key, inner, request)

    def finish(self) -> None:
        super().finish()
        watcher = self._watcher
        if watcher is not None and watcher is not asyncio.current_task():
            watcher.cancel()

    async def leave(self) -> None:
        """The last local caller leaving cancels the call, unless (this process leading
        it) another process follows it: then it goes on while one does."""
        self.listeners -= 1
        if self.listeners or self.finished:
            return
        token = self.leading
        if token is not None and await self._followed(token):
            if not (self.listeners or self.finished):
                emit(self.upstream, "coalesce.keep", key=self.key)
                self._watcher = asyncio.get_running_loop().create_task(self._while_followed(token))
                self.store.track(self._watcher)
            return
        if not (self.listeners or self.finished):
            await self.abandon()

    async def abandon(self) -> None:
        self.abandoned = True  # ends a follow even if redis-py loses the task's cancel
        await super().abandon()

    async def _followed(self, token: str) -> bool:
        try:
            return await self.store.followers(self.key, token) > 0
        except self.store.errors:
            return False

    async def _while_followed(self, token: str) -> None:
        """Go on for the followers; cancel once none is left (checked every ``poll``)."""
        while True:
            await asyncio.sleep(self.store.poll)
            if self.listeners or self.finished:
                return
            if not await self._followed(token):
                if not (self.listeners or self.finished):
                    self._watcher = None  # the call's end must not cancel this wait
                    await self.abandon()
                return


def cancel_pending() -> bool:
    """True when this task was asked to cancel and nothing has raised it yet (seen with
    redis-py 8.1: a blocking ``XREAD`` returning its reply with the cancel pending)."""
    cancelling = getattr(asyncio.current_task(), "cancelling", None)  # Python 3.11+
    return cancelling is not None and cancelling() > 0
