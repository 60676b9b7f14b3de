"""``ChatStream``: what ``async with client.stream(...) as s`` gives you."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType

from llmfast.accumulate import ChatAccumulator
from llmfast.errors import LLMFastError, StreamConsumedError, StreamInterruptedError
from llmfast.transport import Request, Response
from llmfast.types import ChatCompletion, ChatCompletionChunk

__all__ = ["ChatStream"]


class ChatStream:
    """A streamed chat completion.

    Use it as an async context manager, which guarantees the connection is
    released even on error or cancellation::

        async with client.stream("Tell me a joke") as s:
            async for text in s.text_deltas():
                print(text, end="")
        print(s.completion.usage)

    Iterating ``s`` itself gives typed :class:`ChatCompletionChunk` objects. After
    the last chunk, :attr:`completion` is the accumulated :class:`ChatCompletion`.
    A failure after some chunks arrived raises :class:`StreamInterruptedError`
    carrying everything received.
    """

    __slots__ = (
        "_chunks",
        "_completion",
        "_finished",
        "_request",
        "_response",
        "_send",
        "_started",
    )

    def __init__(self, send: Callable[[Request], Awaitable[Response]], request: Request):
        self._send = send
        self._request = request
        self._response: Response | None = None
        self._chunks: list[ChatCompletionChunk] = []
        self._completion: ChatCompletion | None = None
        self._finished = False
        self._started = False

    async def __aenter__(self) -> ChatStream:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Send the request and wait for the response headers (done by ``async with``)."""
        if self._response is None:
            self._response = await self._send(self._request)

    @property
    def response(self) -> Response:
        """The underlying :class:`Response` (status and headers)."""
        if self._response is None:
            raise RuntimeError("the stream has not started: use `async with client.stream(...)`")
        return self._response

    def __aiter__(self) -> AsyncIterator[ChatCompletionChunk]:
        if self._started:
            raise StreamConsumedError("the stream can be iterated only once")
        self._started = True
        return self._iterate(self.response)

    async def _iterate(self, response: Response) -> AsyncIterator[ChatCompletionChunk]:
        append = self._chunks.append
        try:
            async for chunk in response:
                append(chunk)
                yield chunk
        except LLMFastError as exc:
            if self._chunks and not isinstance(exc, StreamInterruptedError):
                raise StreamInterruptedError(
                    f"the stream failed after {len(self._chunks)} chunks: {exc}",
                    partial=self._accumulate(),
                    chunks=self._chunks,
                ) from exc
            raise
        self._finished = True

    async def text_deltas(self) -> AsyncIterator[str]:
        """The text of choice 0 as it arrives, one fragment at a time."""
        async for chunk in self:
            for choice in chunk.choices:
                if choice.index == 0:
                    text = choice.delta.content
                    if text:
                        yield text

    async def collect(self) -> ChatCompletion:
        """Read what is left of the stream and return the accumulated completion."""
        if not self._started:
            await self.start()
            async for _ in self:
                pass
        return self.completion

    @property
    def completion(self) -> ChatCompletion:
        """The accumulated completion; available once the stream has been read to the end."""
        completion = self._completion
        if completion is None:
            if not self._finished:
                raise StreamConsumedError("the stream has not been read to the end")
            completion = self._completion = self._accumulate()
        return completion

    @property
    def chunks(self) -> list[ChatCompletionChunk]:
        """Every chunk received so far."""
        return self._chunks

    def _accumulate(self) -> ChatCompletion:
        accumulator = ChatAccumulator()
        add = accumulator.add
        for chunk in self._chunks:
            add(chunk)
        return accumulator.result()

    async def aclose(self) -> None:
        """Release the connection; safe to call more than once."""
        if self._response is not None:
            await self._response.aclose()

    def __repr__(self) -> str:
        return f"<ChatStream {self._request!r} chunks={len(self._chunks)}>"
