"""What ``create(stream=True)`` returns: an async iterator of SDK-shaped chunks
(``AsyncStream``), and its blocking twin (``Stream``) for ``OpenAI``."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator
from types import TracebackType

from llmfast.errors import LLMFastError
from llmfast.openai._exceptions import Request, Response, facade_error
from llmfast.openai.types import ChatCompletionChunk
from llmfast.stream import ChatStream
from llmfast.sync_stream import _END, Closing, Run, _next, steps

__all__ = ["AsyncStream", "Stream"]


class AsyncStream:
    """A streamed chat completion: ``async for chunk in stream``, ``async with stream``.

    The request was sent and the headers received when ``create`` returned (so an HTTP
    error was raised there). Chunks are
    [`ChatCompletionChunk`][llmfast.openai.types.ChatCompletionChunk]s; the usage chunk
    (no choices) comes last only with ``stream_options={"include_usage": True}``, as
    in the SDK (llmfast asks for usage anyway, for its layers, and hides it otherwise).
    """

    __slots__ = ("_iterator", "_stream", "_url", "_usage")

    def __init__(self, stream: ChatStream, include_usage: bool, url: str) -> None:
        self._stream = stream
        self._usage = include_usage
        self._url = url
        self._iterator: AsyncGenerator[ChatCompletionChunk, None] | None = None

    async def _iterate(self) -> AsyncGenerator[ChatCompletionChunk, None]:
        stream = self._stream
        hide_usage = not self._usage
        try:
            async for chunk in stream:
                if hide_usage and not chunk.choices and chunk.usage is not None:
                    continue
                yield ChatCompletionChunk(chunk)
        except LLMFastError as exc:
            await stream.aclose()
            raise facade_error(exc, self._url) from exc.__cause__
        except BaseException:
            await stream.aclose()
            raise
        await stream.aclose()

    def __aiter__(self) -> AsyncGenerator[ChatCompletionChunk, None]:
        if self._iterator is None:
            self._iterator = self._iterate()
        return self._iterator

    async def __anext__(self) -> ChatCompletionChunk:
        return await self.__aiter__().__anext__()

    @property
    def response(self) -> Response:
        """The HTTP response's status and headers (``response.status_code``...)."""
        response = self._stream.response
        return Response(response.status, response.headers, None, Request("POST", self._url))

    @property
    def include_usage(self) -> bool:
        """Whether the call asked for usage (``stream_options={"include_usage": True}``)."""
        return self._usage

    @property
    def stream(self) -> ChatStream:
        """The llmfast [`ChatStream`][llmfast.ChatStream] underneath (``.completion``...)."""
        return self._stream

    async def close(self) -> None:
        """Release the connection; safe to call more than once."""
        if self._iterator is not None:
            await self._iterator.aclose()
        await self._stream.aclose()

    async def __aenter__(self) -> AsyncStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class Stream(Closing):
    """The blocking ``AsyncStream`` of ``OpenAI``: ``for chunk in stream``,
    ``with stream``; each step runs on the client's loop thread."""

    def __init__(self, run: Run, stream: AsyncStream) -> None:
        self._run = run
        self._stream = stream
        self._closed = False

    def __iter__(self) -> Iterator[ChatCompletionChunk]:
        try:
            yield from steps(self._run, self._stream.__aiter__())
        finally:
            self.close()

    def __next__(self) -> ChatCompletionChunk:
        chunk: ChatCompletionChunk = self._run(_next(self._stream.__aiter__()))
        if chunk is _END:
            raise StopIteration
        return chunk

    @property
    def response(self) -> Response:
        """The HTTP response's status and headers."""
        return self._stream.response

    def close(self) -> None:
        """Release the connection; safe to call more than once."""
        if not self._closed:
            self._closed = True
            self._run(self._stream.close())
