"""The ``fallback_after`` path: items still pending after that long go through the
online API, the client's layers and all, a bounded number at a time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from llmfast.batch.provider.report import report
from llmfast.batch.provider.spool import Spool
from llmfast.errors import LLMFastError
from llmfast.transport import Request
from llmfast.types import ChatRequest

if TYPE_CHECKING:
    from llmfast.client import Client

__all__ = ["Online"]

Final = Callable[[int, Any, "Exception | None"], None]
"""``final(index, value, error)``: an item is final."""


class Online:
    """Sends items online, ``concurrency`` at once; ``tasks`` are the calls running."""

    def __init__(
        self, client: Client, spool: Spool, concurrency: int, final: Final, changed: asyncio.Event
    ) -> None:
        self.client, self.spool, self.final, self.changed = client, spool, final, changed
        self.tasks: set[asyncio.Task[None]] = set()
        self._room = asyncio.Semaphore(concurrency)

    def send(self, index: int) -> None:
        """Start item ``index``'s call."""
        task = asyncio.ensure_future(self._one(index))
        task.add_done_callback(lambda _: self.changed.set())
        self.tasks.add(task)

    async def _one(self, index: int) -> None:
        request = self.spool.get(index)[1]
        value: Any = None
        error: LLMFastError | None = None
        async with self._room:
            try:
                if type(request) is ChatRequest:
                    value = await self.client.chat(request)  # its own `done` event
                else:
                    value = await self._embed(Request(request, on_event=self.client.on_event))
            except LLMFastError as exc:
                error = exc
        self.final(index, value, error)

    async def _embed(self, call: Request) -> Any:
        """An embeddings request sent and collected, reported as ``client.embed`` would."""
        hook, started = call.on_event, time.monotonic()
        try:
            response = await self.client.send(call)
            value = await response.collect()
        except LLMFastError as exc:
            if hook is not None:
                report(hook, call, None, exc, False, time.monotonic() - started)
            raise
        if hook is not None:
            report(hook, call, value, None, False, time.monotonic() - started)
        return value
