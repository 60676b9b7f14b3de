"""The transport core: ``Request`` in, ``Response`` out, layers wrapped like an onion.

Every call is a [`Request`][llmfast.transport.Request] that travels inward through layers to a
backend and comes back as a [`Response`][llmfast.transport.Response] whose body is a stream of typed
chunks. A non-streaming response is a response with one chunk: the whole result. So every layer
handles both cases with one code path.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Literal, Protocol, runtime_checkable

from llmfast.accumulate import ChatAccumulator
from llmfast.errors import StreamConsumedError
from llmfast.events import EventHook
from llmfast.raw_events import RawEvents
from llmfast.types import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatRequest,
    EmbeddingRequest,
    EmbeddingResponse,
    Usage,
)

__all__ = [
    "Chunk",
    "Layer",
    "Request",
    "Response",
    "Result",
    "Transport",
    "TransportLayer",
    "commit_first_chunk",
]

Result = ChatCompletion | EmbeddingResponse
"""What a whole response amounts to."""
Chunk = ChatCompletionChunk | ChatCompletion | EmbeddingResponse
"""One item of a response body: a streamed chunk, or the whole result."""

_EMPTY_HEADERS: Mapping[str, str] = {}


class Request:
    """One call as it travels through the layers.

    Attributes:
        body: the typed request (``ChatRequest`` or ``EmbeddingRequest``).
        stream: whether the caller wants chunks as they are generated.
        headers: extra HTTP headers for this call only.
        deadline: when the whole call must be over, in ``time.monotonic()`` seconds
            (covers queueing, every retry and every fallback); ``None``: no deadline.
        on_event: the hook layers report events to (see ``llmfast.events``).
        context: free-form per-call data that layers may read and write.
        earlier_usage: usage the server reported for attempts a layer discarded (a
            retried stream that failed after its usage event, a failover); the client
            puts it on the completion (``ChatCompletion.earlier_usage``).
        raw_events: ask the backend to keep a stream's event payloads as bytes, typed
            only where needed (``batches()`` then yields
            [`RawEvents`][llmfast.raw_events.RawEvents]; iterating still yields every
            typed chunk). Backends that cannot, ignore it.
    """

    __slots__ = (
        "body",
        "context",
        "deadline",
        "earlier_usage",
        "headers",
        "on_event",
        "raw_events",
        "stream",
    )

    def __init__(
        self,
        body: ChatRequest | EmbeddingRequest,
        *,
        stream: bool = False,
        headers: Mapping[str, str] | None = None,
        deadline: float | None = None,
        on_event: EventHook | None = None,
        context: dict[str, Any] | None = None,
        raw_events: bool = False,
    ) -> None:
        self.body = body
        self.stream = stream
        self.raw_events = raw_events
        self.headers = headers
        self.deadline = deadline
        self.on_event = on_event
        self.context = context
        self.earlier_usage: Usage | None = None

    @property
    def kind(self) -> Literal["chat", "embed"]:
        """``"chat"`` or ``"embed"``."""
        return "chat" if type(self.body) is ChatRequest else "embed"

    def __repr__(self) -> str:
        return f"Request({self.kind}, model={self.body.model!r}, stream={self.stream})"


class Response:
    """A response whose body is a stream of typed chunks.

    Iterate it (``async for chunk in response``) to get the chunks, or
    ``await response.collect()`` for the final result. Always ``await
    response.aclose()`` (or read it to the end): an unread body holds a connection.
    A non-streaming response holds its result as its one chunk.
    """

    __slots__ = ("_chunks", "_closed", "_iterated", "_result", "headers", "request", "status")

    def __init__(
        self,
        request: Request,
        *,
        status: int = 200,
        headers: Mapping[str, str] = _EMPTY_HEADERS,
        chunks: AsyncIterator[Any] | None = None,
        result: Any = None,
    ) -> None:
        if (chunks is None) == (result is None):
            raise ValueError("a Response needs exactly one of chunks= or result=")
        self.request = request
        self.status = status
        self.headers = headers
        self._chunks = chunks
        self._result = result
        self._closed = False
        self._iterated = False

    @property
    def stream(self) -> bool:
        """True when the body is a stream of chunks rather than one result."""
        return self._chunks is not None

    @property
    def result(self) -> Any:
        """The whole result of a non-streaming response (``None`` for a stream);
        reading it does not consume the body."""
        return self._result

    @property
    def closed(self) -> bool:
        """True once the body has been closed (a read-out stream closes itself)."""
        return self._closed

    def __aiter__(self) -> AsyncIterator[Any]:
        if self._iterated or self._closed:
            raise StreamConsumedError("the response body was already read or closed")
        self._iterated = True
        chunks = self._chunks
        if chunks is None:
            return self._single()
        return chunks.__aiter__()  # a backend's ChunkStream hands over its generator

    def batches(self) -> AsyncIterator[list[Any]] | None:
        """The streamed body as lists of chunks, one list per network read, if its source
        offers that (a backend's stream that no layer wraps); else ``None``, and the
        body is left unread for ``async for``. One async step per read, not per chunk."""
        batches = getattr(self._chunks, "batches", None)
        if batches is None:
            return None
        if self._iterated or self._closed:
            raise StreamConsumedError("the response body was already read or closed")
        self._iterated = True
        result: AsyncIterator[list[Any]] = batches()
        return result

    async def _single(self) -> AsyncIterator[Any]:
        self._closed = True
        yield self._result

    async def collect(self) -> Any:
        """Read the whole body and return the final result.

        For a stream, the chunks are accumulated into a ``ChatCompletion``.
        """
        if self._chunks is None:
            if self._iterated:
                raise StreamConsumedError("the response body was already read")
            self._iterated = self._closed = True
            return self._result
        accumulator = ChatAccumulator()
        try:
            async for chunk in self:
                accumulator.add(chunk)
        finally:
            await self.aclose()
        return accumulator.result()

    async def aclose(self) -> None:
        """Release the body and its connection; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        chunks = self._chunks
        if chunks is not None:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()

    def __repr__(self) -> str:
        kind = "stream" if self._chunks is not None else "result"
        return f"<Response {self.status} {kind}{' closed' if self._closed else ''}>"


async def commit_first_chunk(response: Response) -> Response:
    """Wait for a streamed response's first chunk and return a response that yields it
    and then the rest; a failure before it closes ``response`` and propagates.

    After this, the stream is committed: its first chunk can reach the caller, so it
    may no longer be retried or failed over. Leading chunks that carry nothing (only a
    role, or empty text; at most 16) are held back until a chunk with something in it
    arrives, so a stream that fails after only those is still retryable. A
    non-streaming response is returned as is.
    """
    if not response.stream:
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


@runtime_checkable
class Transport(Protocol):
    """Anything that turns a Request into a Response: a backend or a layer."""

    async def send(self, request: Request, /) -> Response:
        """Send the request; the caller must close the returned Response."""
        ...

    async def aclose(self) -> None:
        """Release every resource held; called once when the Client closes."""
        ...


Layer = Callable[[Transport], Transport]
"""A layer factory: given the transport inside it, returns the transport that wraps it."""


class TransportLayer:
    """Convenience base for layers: holds ``inner``, forwards ``aclose`` and ``repr``.

    Subclasses override `send`. A layer takes ``inner`` plus keyword
    configuration; pass ``functools.partial(MyLayer, option=...)`` or a factory
    function in ``Client(layers=[...])``.
    """

    def __init__(self, inner: Transport) -> None:
        self.inner = inner

    async def send(self, request: Request, /) -> Response:
        return await self.inner.send(request)

    async def aclose(self) -> None:
        await self.inner.aclose()

    def describe(self) -> str:
        """One link of the chain as ``repr(client)`` shows it."""
        return type(self).__name__

    def __repr__(self) -> str:
        return f"{self.describe()} → {self.inner!r}"
