"""What [MockServer][llmfast.testing.MockServer] counts and records (requests,
arrivals, connections), and the waits on those counts (a base class)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from ._answering import _resolve

__all__ = ["Counting", "RecordedRequest"]


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request the server received (header names lower-cased, `json` None if no JSON,
    `query` the raw query string, `arrived` the `time.monotonic()` at which its headers
    were in: when a provider counts it against a rate limit; not compared by `==`)."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any
    query: str = ""
    arrived: float = dataclasses.field(default=0.0, compare=False)


class _CountingServer(web.Server):
    """aiohttp's low-level server, reporting each TCP connection opened and closed."""

    def __init__(
        self,
        handler: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]],
        on_connection: Callable[[int], None],
        **kwargs: Any,
    ) -> None:
        super().__init__(handler, **kwargs)
        self._on_connection = on_connection

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        self._on_connection(+1)

    def connection_lost(self, handler: RequestHandler, exc: BaseException | None = None) -> None:
        super().connection_lost(handler, exc)
        self._on_connection(-1)


class Counting:
    """The counting half of [MockServer][llmfast.testing.MockServer] (a base class)."""

    record: bool
    _requests: list[RecordedRequest]
    _request_count: int
    _connection_count: int
    _open_connections: int
    _open_changed: asyncio.Event
    _waiters: list[tuple[int, asyncio.Future[None]]]
    _home: asyncio.AbstractEventLoop | None

    async def _on_home(self, coro: Coroutine[Any, Any, None]) -> None:
        """Await ``coro`` on the server's own loop (``in_thread``) if that is not this one."""
        home = self._home
        if home is None or home is asyncio.get_running_loop():
            await coro
        else:
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, home))

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received (all paths), in arrival order."""
        return self._requests

    def arrivals(self, path: str | None = None) -> list[float]:
        """When each recorded request arrived (`time.monotonic()`, sorted), optionally only
        those to `path`: the clock a provider's rate limit counts by. The monotonic clock
        is shared by the processes of one machine, so clients elsewhere can compare."""
        return sorted(r.arrived for r in self._requests if path is None or r.path == path)

    @property
    def request_count(self) -> int:
        """How many requests arrived (since start or the last `reset()`)."""
        return self._request_count

    @property
    def connection_count(self) -> int:
        """How many TCP connections were accepted (since start or the last `reset()`)."""
        return self._connection_count

    @property
    def open_connections(self) -> int:
        """How many TCP connections are open now."""
        return self._open_connections

    async def wait_open_connections(self, n: int, timeout: float = 5.0) -> None:
        """Return once exactly `n` connections are open; raise `TimeoutError` otherwise."""
        await self._on_home(self._wait_open_connections(n, timeout))

    async def _wait_open_connections(self, n: int, timeout: float) -> None:

        async def settle() -> None:
            while self._open_connections != n:
                self._open_changed.clear()
                await self._open_changed.wait()

        try:
            await asyncio.wait_for(settle(), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(
                f"{self._open_connections} connections open, not {n}, after {timeout} s"
            ) from None

    async def wait_for_requests(self, n: int, timeout: float = 5.0) -> None:
        """Return once `request_count >= n`; raise `TimeoutError` after `timeout` seconds."""
        await self._on_home(self._wait_for_requests(n, timeout))

    async def _wait_for_requests(self, n: int, timeout: float) -> None:
        if self._request_count >= n:
            return
        entry = (n, asyncio.get_running_loop().create_future())
        self._waiters.append(entry)
        try:
            await asyncio.wait_for(entry[1], timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(
                f"got {self._request_count} of {n} requests within {timeout} s"
            ) from None
        finally:
            self._waiters.remove(entry)

    def _count_connection(self, change: int) -> None:
        if change > 0:
            self._connection_count += 1
        self._open_connections += change
        self._open_changed.set()

    def _arrive(self, request: web.BaseRequest, body: Any, arrived: float) -> int:
        """Count (and record) a request; wake the waits it satisfies; its number."""
        self._request_count += 1
        number = self._request_count
        if self.record:
            headers = {k.lower(): v for k, v in request.headers.items()}
            self._requests.append(
                RecordedRequest(
                    request.method, request.path, headers, body, request.query_string, arrived
                )
            )
        if self._waiters:
            for n, future in self._waiters:
                if number >= n:
                    _resolve(future)
        return number
