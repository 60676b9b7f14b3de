"""[`watched`][llmfast.watched.watched]: a streamed response whose end is reported, that
still offers its source's batches.

A layer that must learn how a stream ended (a circuit breaker counting outcomes, a
router counting calls in flight) wraps the body; wrapping it in a plain async
generator would hide the backend's [`Response.batches`][llmfast.transport.Response.batches]
and cost every consumer one more async step per chunk. ``watched`` keeps the batches
when the source has them, and reports the end exactly once, however the body ends:
read out (``None``), failed (the exception), or closed early or never read (a
``GeneratorExit``, which is not an ``Exception``: it says nothing of the backend).

A body that reports its own end (``on_end``: a backend's stream, or a body already
watched) is not wrapped again: the callback joins the ones it will call, so a stream
watched by a breaker and a router costs one end-watch and no async step per read.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

from llmfast.transport import Response

__all__ = ["Ended", "Ends", "watched"]

Ended = Callable[[BaseException | None], None]
"""Called once when a watched body ends: ``None`` when read to the end, else why not."""


class Ends:
    """The callbacks waiting for one body's end (a body's ``on_end``): each called once,
    in the order they came, when the body reports its end."""

    __slots__ = ("_waiting",)

    def __init__(self) -> None:
        self._waiting: list[Ended] | None = []  # None once the end was reported

    def add(self, ended: Ended) -> bool:
        """Call ``ended`` at the end; False when the end was reported already."""
        waiting = self._waiting
        if waiting is None:
            return False
        waiting.append(ended)
        return True

    def report(self, error: BaseException | None) -> None:
        """The body ended (``None``: read out); the first time only, every callback is
        called, even when one raises (the first exception is raised after them)."""
        waiting, self._waiting = self._waiting, None
        if not waiting:
            return
        failure: Exception | None = None
        for ended in waiting:
            try:
                ended(error)
            except Exception as exc:
                failure = failure or exc
        if failure is not None:
            raise failure


def watched(response: Response, ended: Ended) -> Response:
    """``response`` with the same status, headers and chunks; ``ended`` is called once
    when its body ends, after its connection is released (a body that reports its own
    end takes ``ended`` on, and ``response`` itself is returned)."""
    source = response._chunks
    on_end = getattr(source, "on_end", None)
    if on_end is not None and on_end(ended):
        return response
    body = _Watched(response, ended)
    chunks: AsyncIterator[Any] = body if getattr(source, "batches", None) is not None else body.flat
    return Response(
        response.request, status=response.status, headers=response.headers, chunks=chunks
    )


class _Watched:
    """The body of a watched response whose source reads a batch at a time."""

    __slots__ = ("_ends", "_reported", "_response", "_taken", "flat")

    def __init__(self, response: Response, ended: Ended) -> None:
        self._response = response
        self._ends = Ends()
        self._ends.add(ended)
        self._reported = False
        self._taken: AsyncGenerator[Any, None] | None = None
        self.flat = _Flat(self)

    def on_end(self, ended: Ended) -> bool:
        """Call ``ended`` too when this body ends (False: it has ended)."""
        return self._ends.add(ended)

    def batches(self) -> AsyncGenerator[list[Any], None]:
        taken = self._taken = self._read(True)
        return taken

    def __aiter__(self) -> AsyncIterator[Any]:
        return self.flat.__aiter__()

    async def __anext__(self) -> Any:
        return await self.flat.__anext__()

    async def _read(self, batches: bool) -> AsyncGenerator[Any, None]:
        response = self._response
        error: BaseException | None = None
        try:
            if batches:
                source = response.batches()
                assert source is not None
                try:
                    async for batch in source:
                        yield batch
                finally:
                    aclose = getattr(source, "aclose", None)
                    if aclose is not None:
                        await aclose()
            else:
                async for chunk in response:
                    yield chunk
        except BaseException as exc:
            error = exc
            raise
        finally:
            await self._end(error)

    async def _end(self, error: BaseException | None) -> None:
        if self._reported:
            return
        self._reported = True
        try:
            await self._response.aclose()
        finally:
            self._ends.report(error)

    async def aclose(self) -> None:
        taken = self._taken
        if taken is not None:
            await taken.aclose()  # its ``finally`` reports the end
        await self._end(GeneratorExit())  # never read: closed


class _Flat:
    """A watched body read one chunk at a time."""

    __slots__ = ("_body",)

    def __init__(self, body: _Watched) -> None:
        self._body = body

    def __aiter__(self) -> AsyncIterator[Any]:
        body = self._body
        taken = body._taken
        if taken is None:
            taken = body._taken = body._read(False)
        return taken

    async def __anext__(self) -> Any:
        return await self.__aiter__().__anext__()

    async def aclose(self) -> None:
        await self._body.aclose()
