"""What a [SyncClient][llmfast.SyncClient] hands back for a stream or a batch: the
async iterator read a step at a time on the client's loop thread (import them from
``llmfast.sync``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from llmfast.stream import ChatStream
from llmfast.transport import Response
from llmfast.types import ChatCompletion, ChatCompletionChunk

if TYPE_CHECKING:
    from typing_extensions import Self

    from llmfast.batch import Batch, BatchResult
    from llmfast.batch.provider import ProviderBatch
    from llmfast.sync import SyncClient

__all__ = ["SyncBatch", "SyncChatStream"]

T = TypeVar("T")
_END: Any = object()
Run = Callable[[Coroutine[Any, Any, Any]], Any]
"""Runs a coroutine on the loop thread and returns its result (``SyncClient._run``)."""


async def _next(iterator: AsyncIterator[T]) -> T:
    """The next item or ``_END``; awaited on the loop, so async generators are
    registered with that loop's hooks."""
    try:
        return await iterator.__anext__()
    except StopAsyncIteration:
        return _END  # type: ignore[no-any-return]


def steps(run: Run, iterator: AsyncIterator[T]) -> Iterator[T]:
    """The items of ``iterator``, each step awaited on the loop thread by ``run``."""
    while True:
        item = run(_next(iterator))
        if item is _END:
            return
        yield item


class Closing:
    """``with`` closes it on the way out (a base class of the blocking wrappers)."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


async def _aclose(iterator: AsyncIterator[Any] | None, closer: Any) -> None:
    try:
        if iterator is not None:
            await iterator.aclose()  # type: ignore[attr-defined]
    finally:
        await closer()


class SyncChatStream(Closing):
    """A streamed chat completion, read from a plain thread.

    Iterate it for typed chunks, or ``text_deltas()`` for text. Use it as a context
    manager, or just iterate it: the stream is closed when the iteration ends, raises,
    or is abandoned (``break``). After the end, ``completion`` is the result.
    """

    def __init__(self, owner: SyncClient, stream: ChatStream) -> None:
        self._owner = owner
        self._stream = stream
        self._iterator: AsyncIterator[ChatCompletionChunk] | None = None
        self._started = False
        self._closed = False

    def __enter__(self) -> Self:
        self.start()
        return self

    def start(self) -> None:
        """Send the request and wait for the response headers (done by ``with``)."""
        if not self._started:
            self._started = True
            self._owner._run(self._stream.start())

    def __iter__(self) -> Iterator[ChatCompletionChunk]:
        self.start()
        iterator = self._iterator = self._stream.__aiter__()
        try:
            yield from steps(self._owner._run, iterator)
        finally:
            self.close()

    def text_deltas(self) -> Iterator[str]:
        """The text of choice 0 as it arrives, one fragment at a time."""
        for chunk in self:
            for choice in chunk.choices:
                if choice.index == 0:
                    text = choice.delta.content
                    if text:
                        yield text

    def collect(self) -> ChatCompletion:
        """Read what is left of the stream and return the accumulated completion."""
        if self._iterator is None:
            for _ in self:
                pass
        return self.completion

    @property
    def completion(self) -> ChatCompletion:
        """The accumulated completion, once the stream has been read to the end."""
        return self._stream.completion

    @property
    def chunks(self) -> list[ChatCompletionChunk]:
        """Every chunk received so far."""
        return self._stream.chunks

    @property
    def response(self) -> Response:
        """The underlying ``Response`` (status and headers)."""
        return self._stream.response

    def close(self) -> None:
        """Release the connection; safe to call more than once, and after the client
        was closed."""
        if self._closed:
            return
        self._closed = True
        if self._owner.closed:
            return
        self._owner._run(_aclose(self._iterator, self._stream.aclose), closing=True)

    def __repr__(self) -> str:
        return f"<SyncChatStream {self._stream!r}>"


class SyncBatch(Closing):
    """A running batch, read from a plain thread: iterate it for
    [`BatchResult`][llmfast.BatchResult] s.

    Use it as a context manager (or iterate it to the end, or ``list()`` it) so that
    stopping early cancels the calls in flight; finished items stay in the checkpoint.
    """

    def __init__(self, owner: SyncClient, batch: Batch | ProviderBatch) -> None:
        self._owner = owner
        self.batch = batch
        """The async [`Batch`][llmfast.Batch] (or, ``via="batch"``,
        [`ProviderBatch`][llmfast.batch.provider.ProviderBatch]), with its counters
        (``succeeded``, ``failed``...)."""

    def __iter__(self) -> Iterator[BatchResult]:
        try:
            yield from steps(self._owner._run, self.batch.__aiter__())
        finally:
            self.close()

    def close(self) -> None:
        """Cancel the calls in flight and close the checkpoint; safe to call twice."""
        if not self._owner.closed:
            self._owner._run(self.batch.aclose(), closing=True)

    def __repr__(self) -> str:
        return f"<SyncBatch {self.batch!r}>"
