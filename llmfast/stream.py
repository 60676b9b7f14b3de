"""``ChatStream``: what ``async with client.stream(...) as s`` gives you."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Any

from llmfast.accumulate import ChatAccumulator
from llmfast.errors import LLMFastError, StreamConsumedError, StreamInterruptedError
from llmfast.events import call_summary, emit
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

    Iterating ``s`` itself gives typed [`ChatCompletionChunk`][llmfast.types.ChatCompletionChunk]
    objects. After the last chunk, [`completion`][llmfast.ChatStream.completion] is the accumulated
    [`ChatCompletion`][llmfast.types.ChatCompletion]. A failure after some chunks arrived raises
    [`StreamInterruptedError`][llmfast.errors.StreamInterruptedError] carrying everything received;
    it is also an instance of the failure's own class (an idle timeout is still a ``TimeoutError``).
    A stream that ends while a choice has no finish reason raises
    [`StreamTruncatedError`][llmfast.errors.StreamTruncatedError] (so, after chunks, both).
    """

    __slots__ = (
        "_began",
        "_chunks",
        "_completion",
        "_finished",
        "_iterator",
        "_reported",
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
        self._reported = False
        self._began = 0.0
        self._iterator: AsyncGenerator[Any, None] | None = None

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
        if self._response is not None:
            return
        if self._request.on_event is None:
            self._response = await self._send(self._request)
            return
        self._began = time.monotonic()
        try:
            self._response = await self._send(self._request)
        except BaseException as exc:
            self._report(exc)
            raise

    @property
    def response(self) -> Response:
        """The underlying [`Response`][llmfast.transport.Response] (status and headers)."""
        if self._response is None:
            raise RuntimeError("the stream has not started: use `async with client.stream(...)`")
        return self._response

    def __aiter__(self) -> AsyncIterator[ChatCompletionChunk]:
        return self._start_iterating(texts=False)

    def _start_iterating(self, *, texts: bool) -> AsyncGenerator[Any, None]:
        if self._started:
            raise StreamConsumedError("the stream can be iterated only once")
        self._started = True
        if self._request.on_event is not None:
            observed = self._iterate_observed(self.response)
            self._iterator = _texts_of(observed) if texts else observed
        else:
            self._iterator = self._iterate(self.response, texts)
        return self._iterator

    async def _iterate(self, response: Response, texts: bool) -> AsyncGenerator[Any, None]:
        """The chunks (or, with ``texts``, the text of choice 0: one async step per text
        fragment, not two), kept as they pass."""
        append = self._chunks.append
        batches = response.batches()
        try:
            if batches is None:
                async for chunk in response:
                    append(chunk)
                    if not texts:
                        yield chunk
                    elif text := _text_of(chunk):
                        yield text
            else:  # straight from the backend: one async step per read, not per chunk
                try:
                    if not texts:
                        async for batch in batches:
                            for chunk in batch:
                                append(chunk)
                                yield chunk
                    else:
                        async for batch in batches:
                            for chunk in batch:
                                append(chunk)
                                for choice in chunk.choices:
                                    if choice.index == 0 and choice.delta.content:
                                        yield choice.delta.content
                finally:
                    aclose = getattr(batches, "aclose", None)
                    if aclose is not None:
                        await aclose()
        except LLMFastError as exc:
            raise self._interrupted(exc) from exc
        self._finished = True

    async def _iterate_observed(
        self, response: Response
    ) -> AsyncGenerator[ChatCompletionChunk, None]:
        """``_iterate``, timing the first chunk and the gaps, reporting ``done``."""
        request = self._request
        append = self._chunks.append
        clock = time.monotonic
        last = 0.0
        max_gap = 0.0
        error: BaseException | None = None
        try:
            async for chunk in response:
                now = clock()
                if last:
                    max_gap = max(max_gap, now - last)
                else:
                    emit(request, "first_chunk", now - self._began)
                last = now
                append(chunk)
                yield chunk
            self._finished = True
        except LLMFastError as exc:
            error = self._interrupted(exc)
            raise error from exc
        except BaseException as exc:
            error = None if isinstance(exc, GeneratorExit) else exc  # GeneratorExit: closed
            raise
        finally:
            self._report(error, max_gap=max_gap)

    def _interrupted(self, exc: LLMFastError) -> LLMFastError:
        """``exc``, or a ``StreamInterruptedError`` carrying what arrived before it."""
        if not self._chunks or isinstance(exc, StreamInterruptedError):
            return exc
        return StreamInterruptedError.from_cause(  # also an instance of type(exc)
            exc,
            f"the stream failed after {len(self._chunks)} chunks: {exc}",
            partial=self._accumulate(),
            chunks=self._chunks,
        )

    def _report(self, error: BaseException | None, *, max_gap: float = 0.0) -> None:
        """Report the ``done`` event once (only called when there is a hook)."""
        if self._reported:
            return
        self._reported = True
        usage = next((c.usage for c in reversed(self._chunks) if c.usage is not None), None)
        outcome = None if error is not None or self._finished else "closed"
        reasons = tuple(
            choice.finish_reason
            for chunk in self._chunks
            for choice in chunk.choices
            if choice.finish_reason
        )
        summary = call_summary(self._request, error, usage, outcome, reasons)
        emit(
            self._request,
            "done",
            time.monotonic() - self._began,
            **summary,
            chunks=len(self._chunks),
            max_gap=max_gap,
        )

    def text_deltas(self) -> AsyncIterator[str]:
        """The text of choice 0 as it arrives, one fragment at a time (the stream is
        read through it: iterate one or the other)."""
        iterator: AsyncIterator[str] = self._start_iterating(texts=True)
        return iterator

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
        accumulator.extend(self._chunks)
        result = accumulator.result()
        if self._request.earlier_usage is not None:
            result.earlier_usage = self._request.earlier_usage  # a fresh result: ours
        return result

    async def aclose(self) -> None:
        """Release the connection; safe to call more than once."""
        if self._iterator is not None:
            await self._iterator.aclose()  # a loop left early: end it (and report) now
        if self._response is not None:
            await self._response.aclose()
            if self._request.on_event is not None and not self._started:
                self._report(None)  # opened but never read: closed

    def __repr__(self) -> str:
        return f"<ChatStream {self._request!r} chunks={len(self._chunks)}>"


def _text_of(chunk: ChatCompletionChunk) -> str | None:
    """The text choice 0 adds in ``chunk`` (``None`` or ``""``: none)."""
    for choice in chunk.choices:
        if choice.index == 0:
            return choice.delta.content
    return None


async def _texts_of(
    chunks: AsyncGenerator[ChatCompletionChunk, None],
) -> AsyncGenerator[str, None]:
    try:
        async for chunk in chunks:
            if text := _text_of(chunk):
                yield text
    finally:
        await chunks.aclose()
