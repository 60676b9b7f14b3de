"""A Responses stream that re-attaches when its connection drops.

`resumable` reads a stream's batches; when the connection breaks (a reset, a clean end
before ``response.completed``, the server going silent) and the parser knows the
response id and the last ``sequence_number`` it took in, it asks the backend to
re-attach (``GET /responses/{id}?stream=true&starting_after=N``) and goes on with the
same parser, which skips any event it has already seen: no delta is duplicated or lost.
Only when re-attaching is impossible or fails (no id yet, resuming off, the attempts
or the call's deadline used up, the server refusing) does the original error go up, to
become ``StreamInterruptedError`` (with the partial) once chunks have reached the caller.

When the caller leaves a background stream before its end (closes it, or is cancelled),
the backend is told to cancel the response on the server.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any

from llmfast.backends._responses_stream import ResponsesStreamParser
from llmfast.errors import DeadlineExceeded, QueueTimeout, StreamTruncatedError, TransportError
from llmfast.types import ChatCompletionChunk

__all__ = ["resumable"]

Reattach = Callable[[ResponsesStreamParser, BaseException, int], Awaitable[Any]]
"""Re-attach to the parser's response after the drop ``exc`` (the ``n``-th resume of the
stream): the continuing chunk stream (raises on failure)."""
Cancel = Callable[[str], None]

_NOT_A_DROP = (DeadlineExceeded, QueueTimeout)


def _batches(stream: Any) -> AsyncIterator[list[ChatCompletionChunk]]:
    """The stream's own batches (no extra async step per read), else one per chunk."""
    batches = getattr(stream, "batches", None)
    if batches is not None:
        result: AsyncIterator[list[ChatCompletionChunk]] = batches()
        return result
    return _one_each(stream)  # pragma: no cover - a body that was sniffed first


async def _one_each(stream: Any) -> AsyncIterator[list[ChatCompletionChunk]]:
    async for chunk in stream:  # pragma: no cover - a body that was sniffed first
        yield [chunk]


def _resumable_error(exc: BaseException) -> bool:
    if isinstance(exc, _NOT_A_DROP):
        return False
    return isinstance(exc, (TransportError, StreamTruncatedError))


async def resumable(
    first: Any,
    parser: ResponsesStreamParser,
    reattach: Reattach,
    cancel: Cancel,
    *,
    attempts: int,
    deadline: float | None,
) -> AsyncGenerator[list[ChatCompletionChunk], None]:
    """The batches of ``first`` and, after each drop, of the re-attached stream."""
    current = first
    left = attempts
    try:
        while True:
            try:
                async for batch in _batches(current):
                    yield batch
                return
            except Exception as exc:
                if (
                    not _resumable_error(exc)
                    or left <= 0
                    or not parser.response_id
                    or parser.last_sequence < 0
                    or (deadline is not None and time.monotonic() >= deadline)
                ):
                    raise
                left -= 1
                await _close(current)
                try:
                    current = await reattach(parser, exc, attempts - left)
                except Exception:
                    raise exc from exc.__cause__  # resuming failed: the drop goes up
    except BaseException as exc:
        if (
            not isinstance(exc, Exception)  # the caller left: closed or cancelled
            and parser.background
            and parser.response_id
            and not parser.done
        ):
            cancel(parser.response_id)
        raise
    finally:
        await _close(current)


async def _close(stream: Any) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()
