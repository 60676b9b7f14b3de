"""The transport core: ``Request`` in, ``Response`` out, layers wrapped like an onion.

Every call is a [`Request`][llmfast.transport.Request] that travels inward through layers to a
backend and comes back as a [`Response`][llmfast.transport.Response] whose body is a stream of typed
chunks. A non-streaming response is a response with one chunk: the whole result. So every layer
handles both cases with one code path.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Literal, Protocol, runtime_checkable

from llmfast.accumulate import ChatAccumulator
from llmfast.errors import StreamConsumedError
from llmfast.events import EventHook
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

    def with_body(self, body: ChatRequest | EmbeddingRequest) -> Request:
        """This request with another ``body``, every other field (``earlier_usage``
        too) kept: what a layer sends on when it rewrites the body."""
        copy = Request(
            body,
            stream=self.stream,
            headers=self.headers,
            deadline=self.deadline,
            on_event=self.on_event,
            context=self.context,
            raw_events=self.raw_events,
        )
        copy.earlier_usage = self.earlier_usage
        return copy

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


def __getattr__(name: str) -> Any:
    # ``commit_first_chunk`` lived here; it is in ``llmfast.commit`` now.
    if name == "commit_first_chunk":
        from llmfast.commit import commit_first_chunk

        return commit_first_chunk
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
