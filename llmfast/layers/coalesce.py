"""The coalescing layer: identical requests in flight at the same time share one call.

Go's ``singleflight``, keyed like the cache ([`request_key`][llmfast.layers.request_key]):
the first request for a key starts the upstream call in a task of its own; identical
requests arriving while it runs join it (a ``coalesce.join`` event, data ``key``).
Plain callers share one result object (read-only). A stream's chunks are kept in a
replay buffer: a late joiner gets every chunk from the first, then the live ones.
A caller cancelling, closing early or passing its own deadline leaves the others
untouched; the upstream call is cancelled, its response closed, only when the last
caller has left. An error reaches every caller still listening. A stream and a plain
call never share (their keys differ). The shared call carries the first caller's
headers, hook and a copy of its context, but no deadline: each caller keeps its own.
By default only deterministic requests are coalesced (parallel identical samples are
usually meant to differ); ``request.context["coalesce"] = "bypass"`` opts a call out.
With a ``store``, across processes too (see ``llmfast.layers.coalesce_shared``).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from llmfast.errors import ClientClosedError, DeadlineExceeded
from llmfast.events import emit
from llmfast.layers.keys import backend_identity, is_deterministic, request_key
from llmfast.transport import Request, Response, Transport, TransportLayer

if TYPE_CHECKING:
    from llmfast.layers.flight_store import RedisFlightStore

__all__ = ["Coalesce", "CoalesceLayer"]


class Coalesce:
    """Configuration of the coalescing layer; ``Coalesce(...)(inner)`` builds the layer.

    Args:
        coalescable: which requests may share a call (default
            [`is_deterministic`][llmfast.layers.is_deterministic]).
        identity: the backend's part of every key (default: derived from the backend).
        store: a [`RedisFlightStore`][llmfast.layers.RedisFlightStore] to share calls
            with other processes (default: none); the layer closes it.
    """

    def __init__(
        self,
        *,
        coalescable: Callable[[Request], bool] = is_deterministic,
        identity: str | None = None,
        store: RedisFlightStore | None = None,
    ) -> None:
        self.coalescable = coalescable
        self.identity = identity
        self.store = store

    def __call__(self, inner: Transport) -> CoalesceLayer:
        return CoalesceLayer(inner, self)

    def __repr__(self) -> str:
        return "Coalesce()" if self.store is None else f"Coalesce(store={self.store!r})"


class CoalesceLayer(TransportLayer):
    """Shares one upstream call among identical requests in flight (see the module)."""

    def __init__(self, inner: Transport, config: Coalesce) -> None:
        super().__init__(inner)
        self._coalescable = config.coalescable
        self._identity = config.identity if config.identity is not None else backend_identity(inner)
        self._flights: dict[str, _Flight] = {}
        self._store = store = config.store
        self._make_flight: Callable[[dict[str, _Flight], str, Transport, Request], _Flight] = (
            _Flight
        )
        if store is not None:  # imported when the layer is built, never on a call
            from llmfast.layers.coalesce_shared import SharedFlight

            self._make_flight = functools.partial(SharedFlight, store=store)

    @property
    def in_flight(self) -> int:
        """How many shared calls are running now."""
        return len(self._flights)

    async def send(self, request: Request, /) -> Response:
        context = request.context
        if (context is not None and context.get("coalesce") == "bypass") or not (
            self._coalescable(request)
        ):
            return await self.inner.send(request)
        try:
            key = request_key(request, self._identity)
        except (TypeError, ValueError):  # a body msgspec cannot encode: the backend will say
            return await self.inner.send(request)
        flight = self._flights.get(key)
        if flight is None:
            flight = self._flights[key] = self._make_flight(self._flights, key, self.inner, request)
        else:
            emit(request, "coalesce.join", key=key)
        return await flight.join(request)

    async def aclose(self) -> None:
        """Cancel the shared calls (their callers get ``ClientClosedError``), then close."""
        flights = list(self._flights.values())
        self._flights.clear()
        for flight in flights:
            flight.task.cancel()
        if flights:
            await asyncio.wait([flight.task for flight in flights])
        for flight in flights:
            flight.finish()  # a task cancelled before it started never ran its own finish
        try:
            await self.inner.aclose()
        finally:
            if self._store is not None:
                await self._store.aclose()


async def _wait(event: asyncio.Event, deadline: float | None) -> None:
    """Wait for ``event`` until ``deadline`` (``time.monotonic()``), then raise."""
    if deadline is None:
        await event.wait()
        return
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise DeadlineExceeded("the call's deadline passed while waiting for a shared call")
    try:
        await asyncio.wait_for(event.wait(), remaining)
    except asyncio.TimeoutError:
        raise DeadlineExceeded("the call's deadline passed waiting for a shared call") from None


class _Flight:
    """One shared upstream call and the callers listening to it."""

    def __init__(
        self, flights: dict[str, _Flight], key: str, inner: Transport, request: Request
    ) -> None:
        self.flights = flights
        self.key = key
        self.listeners = 0
        self.status = 200
        self.headers: Mapping[str, str] = {}
        self.result: Any = None
        self.chunks: list[Any] | None = None  # set once a streamed body starts
        self.error: BaseException | None = None
        self.error_tb: TracebackType | None = None
        self.finished = False
        self.ready = asyncio.Event()  # the response started, or the call failed
        self.progress = asyncio.Event()  # set and cleared at every chunk and at the end
        context = request.context
        upstream = Request(
            request.body,
            stream=request.stream,
            headers=request.headers,
            on_event=request.on_event,
            context=None if context is None else dict(context),
        )
        self.task = asyncio.get_running_loop().create_task(self._run(inner, upstream))

    async def _run(self, inner: Transport, request: Request) -> None:
        response: Response | None = None
        completed = False
        try:
            response = await inner.send(request)
            self.status, self.headers = response.status, response.headers
            if response.stream:
                chunks: list[Any] = []
                self.chunks = chunks
                self.ready.set()
                progress = self.progress
                async for chunk in response:
                    chunks.append(chunk)
                    progress.set()
                    progress.clear()
            else:
                self.result = await response.collect()
            completed = True
        except Exception as exc:
            self.error, self.error_tb = exc, exc.__traceback__
        finally:
            try:
                if response is not None:
                    await response.aclose()
            finally:
                if completed:
                    self.finished = True
                self.finish()

    def finish(self) -> None:
        """Mark the call over (failed, unless it completed) and wake every listener."""
        if not self.finished and self.error is None:
            self.error = ClientClosedError("the shared call was cancelled")
        self.finished = True
        if self.flights.get(self.key) is self:
            del self.flights[self.key]
        self.ready.set()
        self.progress.set()

    async def join(self, request: Request) -> Response:
        """Listen to this call: the whole result, or a stream replaying every chunk."""
        self.listeners += 1
        try:
            if not self.ready.is_set():
                await _wait(self.ready, request.deadline)
        except BaseException:
            await self.leave()
            raise
        if self.chunks is None:
            await self.leave()
            self.raise_error()
            return Response(request, status=self.status, headers=self.headers, result=self.result)
        chunks = _Listener(self, request.deadline)
        return Response(request, status=self.status, headers=self.headers, chunks=chunks)

    def raise_error(self) -> None:
        error = self.error
        if error is not None:
            raise error.with_traceback(self.error_tb)

    async def leave(self) -> None:
        """One listener is gone; the last one to leave cancels an unfinished call."""
        self.listeners -= 1
        if self.listeners or self.finished:
            return
        await self.abandon()

    async def abandon(self) -> None:
        """Cancel the call (nobody listens any more) and wait for its task to end."""
        if self.flights.get(self.key) is self:
            del self.flights[self.key]
        task = self.task
        task.cancel()
        await asyncio.wait([task])


class _Listener:
    """One caller's view of a shared stream: the buffer from the start, then live chunks."""

    __slots__ = ("_deadline", "_flight", "_left", "_position")

    def __init__(self, flight: _Flight, deadline: float | None) -> None:
        self._flight = flight
        self._deadline = deadline
        self._position = 0
        self._left = False

    def __aiter__(self) -> _Listener:
        return self

    async def __anext__(self) -> Any:
        flight = self._flight
        chunks = flight.chunks
        assert chunks is not None
        while True:
            position = self._position
            if position < len(chunks):
                self._position = position + 1
                return chunks[position]
            if self._left:
                raise StopAsyncIteration
            if flight.finished:
                await self.aclose()
                flight.raise_error()
                raise StopAsyncIteration
            try:
                await _wait(flight.progress, self._deadline)
            except BaseException:
                await self.aclose()
                raise

    async def aclose(self) -> None:
        if not self._left:
            self._left = True
            await self._flight.leave()
