"""The stream plumbing and decode helpers every backend shares.

A streamed body becomes typed chunks through a `StreamParser` (an I/O-free object fed
the raw bytes) and `read_stream`; `decode` and `ChunkParser` turn any decoding failure
into ``DecodeError``. Taking a whole response in is ``_respond.respond``'s job.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import msgspec
import yarl

from llmfast.backends._intake import ErrorBody
from llmfast.backends.watchdog import StreamWatchdog
from llmfast.errors import DecodeError, LLMFastError, StreamTruncatedError
from llmfast.pool import map_transport_error
from llmfast.types import ChatCompletionChunk
from llmfast.watched import Ended, Ends

if TYPE_CHECKING:
    import aiohttp

__all__ = [
    "ChunkParser",
    "ChunkStream",
    "ErrorBody",
    "StreamParser",
    "as_decode_error",
    "decode",
    "decode_error_body",
    "read_stream",
    "url",
]

_T = TypeVar("_T")
_decode_any = msgspec.json.Decoder().decode
_DONE_GRACE_SECONDS = 2.0


class StreamParser(Protocol):
    """Turns a streamed body into chunks, fed the raw bytes as they arrive."""

    done: bool
    """True once the provider's end-of-stream marker has been seen."""
    failure: LLMFastError | None
    """An error met after some chunks of the same slice (raise it once they are passed on)."""

    def feed(self, data: bytes) -> list[ChatCompletionChunk]:
        """The chunks completed by the next slice of the body."""
        ...

    def close(self) -> list[ChatCompletionChunk]:
        """At end of body: the last chunks; ``StreamTruncatedError`` if incomplete."""
        ...


class ChunkParser:
    """Base of the stream parsers: a failure never loses the chunks completed before it.

    Subclasses implement `parse` (and `finish`), appending to ``out`` and
    raising llmfast errors; `feed` returns what was appended before an error and
    keeps the error in ``failure``, to be raised once those chunks are passed on.
    """

    __slots__ = ("_finished", "_opened", "done", "failure")

    end_marker = "its end marker"
    """How the provider's end of stream is named in a truncation error."""

    def __init__(self) -> None:
        self.done = False
        self.failure: LLMFastError | None = None
        self._opened: set[int] = set()  # choice indices seen without a finish reason
        self._finished: set[int] = set()  # choice indices seen with one

    def parse(self, data: bytes, out: list[ChatCompletionChunk]) -> None:
        """Append the chunks completed by ``data`` to ``out``."""
        raise NotImplementedError

    def finish(self, out: list[ChatCompletionChunk]) -> None:
        """At end of body: append the last chunks; raise if the stream is incomplete."""

    def feed(self, data: bytes) -> list[ChatCompletionChunk]:
        if self.failure is not None:
            raise self.failure
        out: list[ChatCompletionChunk] = []
        try:
            self.parse(data, out)
        except Exception as exc:
            error = as_decode_error(exc, "stream data")
            if not out:
                if error is exc:
                    raise
                raise error from exc
            self.failure = error
        self._note(out)
        return out

    def close(self) -> list[ChatCompletionChunk]:
        if self.failure is not None:
            raise self.failure
        out: list[ChatCompletionChunk] = []
        try:
            self.finish(out)
            self._note(out)
            if self.done:
                self._check_finished()
        except Exception as exc:
            error = as_decode_error(exc, "stream data")
            if not out:
                if error is exc:
                    raise
                raise error from exc
            self.failure = error
        return out

    def _note(self, out: Iterable[ChatCompletionChunk]) -> None:
        """Track which choices have their finish reason (one set insert per choice)."""
        opened = self._opened
        finished = self._finished
        for chunk in out:
            for choice in chunk.choices:
                if choice.finish_reason is None:
                    opened.add(choice.index)
                else:
                    finished.add(choice.index)

    def _check_finished(self) -> None:
        """At the end marker: raise ``StreamTruncatedError`` unless every choice finished.

        A stream that ends "cleanly" while a choice has no finish reason was cut short
        (llama.cpp's server does this to interrupt a request for the next one); so is one
        that ends without any finished choice.
        """
        finished = self._finished
        missing = self._opened - finished
        if finished and not missing:
            return
        if missing:
            which = ", ".join(map(str, sorted(missing)))
            detail = f"choice {which} had no finish reason"
        else:
            detail = "no choice had a finish reason"
        raise StreamTruncatedError(
            f"the stream ended with {self.end_marker} but was unfinished: {detail}"
        )


def url(text: str) -> Any:
    """A parsed URL (parsed once per endpoint, so aiohttp need not parse it per call)."""
    return yarl.URL(text)


def as_decode_error(exc: Exception, what: str) -> LLMFastError:
    """``exc`` if it is an llmfast error, else a ``DecodeError`` saying what it was
    (hostile input: ``RecursionError`` from deep nesting, bad base64, bad UTF-8...)."""
    if isinstance(exc, LLMFastError):
        return exc
    if isinstance(exc, (msgspec.DecodeError, msgspec.ValidationError)):
        return DecodeError(f"malformed {what}: {exc}")
    return DecodeError(f"undecodable {what}: {type(exc).__name__}: {str(exc)[:200]}")


def decode(decoder: Callable[[bytes], _T], raw: bytes, what: str) -> _T:
    """``decoder(raw)``, with every failure (msgspec's, or ``RecursionError`` for deep
    nesting) raised as ``DecodeError``."""
    try:
        return decoder(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise DecodeError(f"malformed {what}: {exc}; body starts {raw[:200]!r}") from exc
    except (RecursionError, ValueError, TypeError) as exc:
        raise DecodeError(f"undecodable {what}: {type(exc).__name__}: {exc}") from exc


def decode_error_body(raw: bytes) -> Any:
    """An error body as JSON when it is JSON, else as text."""
    try:
        return _decode_any(raw)
    except (msgspec.DecodeError, RecursionError):
        return raw.decode("utf-8", "replace")


class ChunkStream:
    """The chunks of a streamed body (what ``read_stream``
    returns): iterate it for one chunk at a time, or take ``batches()``, the lists of
    chunks each read completed, to pay one async step per read instead of per chunk.
    Either way, once: the body is read only once. With ``ends`` (which ``batches``
    reports to when it ends) it takes [`watched`][llmfast.watched.watched]'s callbacks
    itself (``on_end``), so watching it costs no async step per read.
    """

    __slots__ = ("_batches", "_ends", "_flat")

    def __init__(
        self, batches: AsyncGenerator[list[ChatCompletionChunk], None], ends: Ends | None = None
    ) -> None:
        self._batches = batches
        self._ends = ends
        self._flat: AsyncGenerator[ChatCompletionChunk, None] | None = None

    def on_end(self, ended: Ended) -> bool:
        """Call ``ended`` once when the body ends, with ``None`` (read out) or why not
        (see [`watched`][llmfast.watched.watched]); False when it cannot (it has ended)."""
        return self._ends is not None and self._ends.add(ended)

    def batches(self) -> AsyncGenerator[list[ChatCompletionChunk], None]:
        """The chunks as lists, one per read that completed some."""
        return self._batches

    def __aiter__(self) -> AsyncGenerator[ChatCompletionChunk, None]:
        flat = self._flat
        if flat is None:
            flat = self._flat = _flatten(self._batches)
        return flat

    def __anext__(self) -> Awaitable[ChatCompletionChunk]:
        return self.__aiter__().__anext__()

    async def aclose(self) -> None:
        """Stop reading and release the connection (closes it unless the body was whole)."""
        if self._flat is not None:
            await self._flat.aclose()
        await self._batches.aclose()
        if self._ends is not None:
            self._ends.report(GeneratorExit())  # never read (else reported already)


async def _flatten(
    batches: AsyncGenerator[list[ChatCompletionChunk], None],
) -> AsyncGenerator[ChatCompletionChunk, None]:
    try:
        async for batch in batches:
            for chunk in batch:
                yield chunk
    finally:
        await batches.aclose()  # a loop left early must not wait for the GC to close it


def read_stream(
    resp: aiohttp.ClientResponse,
    parser: StreamParser,
    watchdog: StreamWatchdog | None = None,
    deadline: float | None = None,
) -> ChunkStream:
    """Chunks from a streamed body; closes (or, once complete, releases) the connection.

    A read that completes chunks counts as an event for the ``watchdog`` (first-chunk
    and idle timeouts); keep-alives and pings complete none.
    """
    ends = Ends()
    return ChunkStream(_read_batches(resp, parser, watchdog, deadline, ends), ends)


async def _read_batches(
    resp: aiohttp.ClientResponse,
    parser: StreamParser,
    watchdog: StreamWatchdog | None,
    deadline: float | None,
    ends: Ends,
) -> AsyncGenerator[list[ChatCompletionChunk], None]:
    reader = resp.content
    feed = parser.feed
    complete = False
    error: BaseException | None = None
    grace: asyncio.TimerHandle | None = None
    try:
        while True:
            try:
                data = await reader.readany()
            except Exception as exc:
                if parser.done:  # everything arrived; only the end of the body went wrong
                    break
                if watchdog is not None and watchdog.expired is not None:
                    raise watchdog.expired from exc
                raise map_transport_error(exc, "reading the response stream", deadline) from exc
            if not data:
                break
            if parser.done:
                continue
            chunks = feed(data)
            if chunks:
                if watchdog is not None:
                    watchdog.event()  # once per read: its events arrived together
                yield chunks
            if parser.failure is not None:
                raise parser.failure
            if parser.done and not reader.at_eof():
                # The body's end should follow at once; don't wait long for it.
                grace = asyncio.get_running_loop().call_later(_DONE_GRACE_SECONDS, resp.close)
        chunks = parser.close()
        if chunks:
            yield chunks
        if parser.failure is not None:
            raise parser.failure
        complete = True
    except BaseException as exc:  # for the end's callbacks; a closed stream's GeneratorExit too
        error = exc
        raise
    finally:
        if watchdog is not None:
            watchdog.cancel()
        if grace is not None:
            grace.cancel()
        if complete or parser.done:
            resp.release()
        else:
            resp.close()
        ends.report(error)
