"""The commit point of a stream: [`commit_first_chunk`][llmfast.commit.commit_first_chunk].

A layer that may retry or fail over a stream (retry, the router) waits here for the
stream's first chunk with something in it; after that the stream belongs to the caller.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from typing import Any

from llmfast.raw_events import RawEvents
from llmfast.transport import Response
from llmfast.types import ChatCompletionChunk
from llmfast.watched import Ended

__all__ = ["commit_first_chunk"]


async def commit_first_chunk(response: Response) -> Response:
    """Wait for a streamed response's first chunk and return a response that yields it
    and then the rest; a failure before it closes ``response`` and propagates.

    After this, the stream is committed: its first chunk can reach the caller, so it
    may no longer be retried or failed over. Leading chunks that carry nothing (only a
    role, or empty text; at most 16) are held back until a chunk with something in it
    arrives, so a stream that fails after only those is still retryable. A
    non-streaming response, and one this function committed already (a router's, inside
    a retry layer: waiting again would find the same first chunk), is returned as is.
    """
    if not response.stream or type(response._chunks) is _CommittedBatches:
        return response
    if getattr(response._chunks, "batches", None) is not None:
        return await _commit_batches(response)
    iterator = aiter(response)
    held: list[Any] = []
    try:
        first = await anext(iterator)
        # Chunks that carry nothing yet (a role, empty text) are held back: a stream
        # that fails after only those is still retried (llama.cpp's server answers
        # a role chunk and [DONE] when it interrupts a request).
        while _is_empty(first) and len(held) < _MAX_HELD:
            held.append(first)
            first = await anext(iterator)
    except StopAsyncIteration:
        await response.aclose()
        return Response(
            response.request,
            status=response.status,
            headers=response.headers,
            chunks=_replay(held),
        )
    except BaseException:
        await response.aclose()
        raise
    held.append(first)
    return Response(
        response.request,
        status=response.status,
        headers=response.headers,
        chunks=_prepend(held, iterator, response),
    )


_MAX_HELD = 16


async def _commit_batches(response: Response) -> Response:
    """``commit_first_chunk`` for a body that comes a read at a time (a backend's
    stream): the result keeps offering ``batches()``, so a committed stream still costs
    one async step per read, not per chunk (every default ``Client`` commits here).
    The batches read are held as they came (a [`RawEvents`][llmfast.raw_events.RawEvents]
    stays one)."""
    batches = response.batches()
    assert batches is not None
    held: list[Any] = []
    count = 0
    try:
        while True:
            batch = await anext(batches)
            held.append(batch)
            count += len(batch)
            if count > _MAX_HELD or not _all_empty(batch):
                break
    except StopAsyncIteration:
        await response.aclose()
    except BaseException:
        await response.aclose()
        raise
    return Response(
        response.request,
        status=response.status,
        headers=response.headers,
        chunks=_CommittedBatches(held, batches, response),
    )


def _all_empty(batch: Any) -> bool:
    """True when no chunk of ``batch`` carries anything yet (see ``_is_empty``)."""
    if type(batch) is RawEvents:  # its text deltas are not typed: only notable ones can be empty
        notable = batch.notable
        return len(notable) == len(batch) and all(_is_empty(c) for c in notable.values())
    return all(_is_empty(chunk) for chunk in batch)


class _CommittedBatches:
    """A committed stream read a batch at a time: the batches already read, then the
    rest, as ``batches()`` (one list per read) or one chunk at a time."""

    __slots__ = ("_batches", "_flat", "_held", "_response")

    def __init__(
        self, held: list[Any], batches: AsyncIterator[list[Any]], response: Response
    ) -> None:
        self._held = held
        self._batches = batches
        self._response = response
        self._flat: AsyncIterator[Any] | None = None

    def batches(self) -> AsyncIterator[list[Any]]:
        return _batches_after(self._held, self._batches, self._response)

    def on_end(self, ended: Ended) -> bool:
        """Its end is its source's: ``ended`` waits there, if the source reports it (see
        [`watched`][llmfast.watched.watched])."""
        on_end = getattr(self._response._chunks, "on_end", None)
        return on_end is not None and bool(on_end(ended))

    def __aiter__(self) -> AsyncIterator[Any]:
        if self._flat is None:
            first = [chunk for batch in self._held for chunk in batch]
            self._flat = _prepend(first, _flatten(self._batches), self._response)
        return self._flat

    def __anext__(self) -> Awaitable[Any]:
        return self.__aiter__().__anext__()

    async def aclose(self) -> None:
        flat = self._flat
        if flat is not None:
            await flat.aclose()  # type: ignore[attr-defined]
        await self._response.aclose()


async def _batches_after(
    held: list[Any], batches: AsyncIterator[list[Any]], response: Response
) -> AsyncIterator[list[Any]]:
    try:
        for batch in held:
            yield batch
        async for batch in batches:
            yield batch
    finally:
        await response.aclose()


async def _flatten(batches: AsyncIterator[list[Any]]) -> AsyncIterator[Any]:
    async for batch in batches:
        for chunk in batch:
            yield chunk


def _is_empty(chunk: Any) -> bool:
    """True for a streamed chunk with nothing in it but a role (or empty text)."""
    if type(chunk) is not ChatCompletionChunk or chunk.usage is not None:
        return False
    for choice in chunk.choices:
        delta = choice.delta
        if (
            choice.finish_reason is not None
            or choice.logprobs is not None
            or delta.content
            or delta.tool_calls
            or delta.refusal
            or delta.reasoning_content
            or delta.reasoning_signature
        ):
            return False
    return True


async def _replay(chunks: list[Any]) -> AsyncIterator[Any]:
    for chunk in chunks:
        yield chunk


async def _prepend(
    first: list[Any], rest: AsyncIterator[Any], response: Response
) -> AsyncIterator[Any]:
    try:
        for chunk in first:
            yield chunk
        async for chunk in rest:
            yield chunk
    finally:
        await response.aclose()
