"""One coalesced call shared across processes through a
[`RedisFlightStore`][llmfast.layers.RedisFlightStore] (used by the coalescing layer when
it has a ``store``).

In each process the callers of one key share one local flight, as without a store;
that flight's task then claims the key in Redis. The process that wins the claim is
the leader: it calls upstream, serves its own callers first, and publishes each frame
for the followers. A follower's flight reads the leader's frames into the same
buffer its callers read, so they get the same typed result, or the chunks as the
leader receives them. Which outcome reaches a follower:

- the leader's result or chunks: the same result, the same chunks in order;
- the leader's error: the same error class (an API error with its status, body and
  headers); an error that cannot be rebuilt, or a result of a type that cannot travel,
  makes each follower call upstream itself;
- the leader's callers all left: while a follower waits, the leader's call goes on for
  it (followers say so in Redis: see the store), so it is never called twice; with
  no follower left the leader cancels it, as without a store;
- the leader cancelled (its process closing) or dead (its lease expired): a follower
  that has delivered nothing claims the key again, and one of them leads; one whose
  callers already got chunks ends them with
  [`StreamInterruptedError`][llmfast.errors.StreamInterruptedError] (also a
  ``ReadError``): a stream is never completed from two upstream calls;
- Redis unreachable: the store's ``on_error`` (by default this process goes on alone).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import msgspec

from llmfast.errors import CoalesceUnavailableError, ReadError, StreamInterruptedError
from llmfast.events import emit
from llmfast.layers import flight_frames as f
from llmfast.layers.coalesce import _Flight
from llmfast.layers.flight_followers import FollowedFlight, cancel_pending
from llmfast.layers.flight_publisher import Publisher
from llmfast.layers.flight_store import RedisFlightStore
from llmfast.transport import Request, Response, Transport
from llmfast.types import ChatCompletionChunk

__all__ = ["SharedFlight"]

_DONE, _ALONE, _TAKEOVER = range(3)


class SharedFlight(FollowedFlight):
    """A local flight whose upstream call is shared with other processes (see the module)."""

    def __init__(
        self,
        flights: dict[str, _Flight],
        key: str,
        inner: Transport,
        request: Request,
        store: RedisFlightStore,
    ) -> None:
        super().__init__(flights, key, inner, request, store)
        store.track(self.task)

    async def _run(self, inner: Transport, request: Request) -> None:
        try:
            await self._share(inner, request)
        finally:
            self.finish()  # also when cancelled while following

    async def _share(self, inner: Transport, request: Request) -> None:
        self.upstream = request
        store = self.store
        for _ in range(100):  # each round: one leader's claim was taken over
            if not store.available:
                if self._unavailable(request, None):
                    break
                return
            try:
                leader, token = await store.claim(self.key, self.member)
            except store.errors as exc:
                if self._unavailable(request, exc):
                    break
                return
            if leader:
                self.leading = token
                await self._lead(inner, request, token)
                return
            emit(request, "coalesce.join", key=self.key, remote=True)
            try:
                outcome = await self._follow(request, token)
            except BaseException:  # cancelled: the leader need not go on for us
                with contextlib.suppress(*store.errors):
                    await store.unfollow(self.key, token, self.member)
                raise
            if outcome == _DONE:
                return
            if outcome == _ALONE:
                break
        await super()._run(inner, request)

    def _unavailable(self, request: Request, exc: BaseException | None) -> bool:
        """Redis failed (``exc``; ``None``: it did lately): True to go on alone, False
        when the call failed with ``CoalesceUnavailableError`` (``on_error="fail"``)."""
        if exc is not None:
            self._store_failed(request, exc)
        if self.store.on_error == "local":
            return True
        why = "lately" if exc is None else type(exc).__name__
        self.error = CoalesceUnavailableError(f"the shared coalescing store is unreachable: {why}")
        self.error.__cause__ = exc
        return False

    # -- the leader ------------------------------------------------------------------

    async def _lead(self, inner: Transport, request: Request, token: str) -> None:
        publisher = Publisher(
            self.store, self.key, token, lambda exc: self._store_failed(request, exc)
        )
        final: f.Frame | None = f.Frame(f.ABANDONED)  # unless the call ends
        response: Response | None = None
        try:
            response = await inner.send(request)
            status, headers = response.status, response.headers
            self.status, self.headers = status, headers
            if response.stream:
                chunks: list[Any] = []
                self.chunks = chunks
                self.ready.set()
                publisher.add(f.Frame(f.HEAD, status, dict(headers)))
                progress = self.progress
                async for chunk in response:
                    chunks.append(chunk)
                    progress.set()
                    progress.clear()
                    if publisher.sharing:
                        if type(chunk) is ChatCompletionChunk:
                            publisher.add(f.Frame(f.CHUNK, chunk=chunk))
                        else:
                            publisher.alone()
                final = f.Frame(f.END)
            else:
                self.result = await response.collect()
                final = f.result_frame(status, headers, self.result)
            self.finished = True
            self.finish()  # this process's callers first
        except Exception as exc:
            self.error, self.error_tb = exc, exc.__traceback__
            info = f.error_info(exc)
            final = None if info is None else f.Frame(f.ERROR, error=info)
        finally:
            try:
                if response is not None:
                    await response.aclose()
            finally:
                self.finish()
                await publisher.close(final)

    def _store_failed(self, request: Request, exc: BaseException) -> None:
        emit(request, "coalesce.error", key=self.key, error=exc)
        self.store.failed(exc)

    # -- a follower ------------------------------------------------------------------

    async def _follow(self, request: Request, token: str) -> int:
        """Read the leader's frames into this flight until its outcome is known."""
        store, key = self.store, self.key
        after = b"0-0"
        refresh_at = time.monotonic() + store.poll  # the claim said we follow
        while True:
            if self.abandoned or cancel_pending():  # a cancel redis-py let pass
                raise asyncio.CancelledError
            try:
                if time.monotonic() >= refresh_at:
                    await store.follow(key, token, self.member)
                    refresh_at = time.monotonic() + store.poll
                entries = await store.read(key, token, after)
                if not entries and await store.holder(key) != token:
                    entries = await store.read(key, token, after, block=False)
                    if not entries:  # the leader is gone without a word
                        return self._lost("the process leading the shared call was lost")
            except store.errors as exc:
                if self._delivered():
                    self._store_failed(request, exc)
                    return self._lost("the shared call's store (Redis) became unreachable")
                return _ALONE if self._unavailable(request, exc) else _DONE
            for entry_id, data in entries:
                after = entry_id
                try:
                    frame = f.decode_frame(data)
                except (msgspec.DecodeError, msgspec.ValidationError):
                    return self._lost("a frame of the shared call could not be decoded")
                outcome = self._apply(frame)
                if outcome is not None:
                    return outcome

    def _apply(self, frame: f.Frame) -> int | None:
        kind = frame.kind
        if kind == f.CHUNK and self.chunks is not None and frame.chunk is not None:
            self.chunks.append(frame.chunk)
            self.ready.set()  # callers listen from the first chunk: until then a takeover
            self.progress.set()  # (or a call of our own) may still replace the buffer
            self.progress.clear()
            return None
        if kind == f.HEAD:
            self.status, self.headers = frame.status, frame.headers or {}
            self.chunks = []
            return None
        if kind == f.END and self.chunks is not None:
            self.finished = True
            return _DONE
        if kind == f.RESULT and self.chunks is None:
            self.status, self.headers = frame.status, frame.headers or {}
            self.result = frame.completion if frame.completion is not None else frame.embeddings
            self.finished = True
            return _DONE
        if kind == f.ERROR and frame.error is not None:
            error = f.rebuild_error(frame.error, self.chunks)
            if error is not None:
                self.error = error
                return _DONE
        if kind == f.ABANDONED and not self._delivered():
            return _TAKEOVER
        if not self._delivered():
            return _ALONE
        return self._lost("the shared call could not be followed to its end")

    def _delivered(self) -> bool:
        return bool(self.chunks)

    def _lost(self, why: str) -> int:
        """The leader is gone: take over if nothing was delivered, else end the stream."""
        if not self._delivered():
            return _TAKEOVER
        self.error = StreamInterruptedError.from_cause(
            ReadError(why), why, chunks=list(self.chunks or ())
        )
        return _DONE
