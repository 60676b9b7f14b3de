"""``PermitStream``: a rate-limited stream that holds its permit until it is over.

The concurrency permit of a streamed call is given back exactly once, when the
stream is read to the end, fails, is cancelled or is closed (whichever comes first),
not when the headers arrive. The ``usage`` chunk, when the stream sends one,
corrects the token estimate the call was admitted with.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from llmfast.limits.budget import Ticket
from llmfast.transport import Response

__all__ = ["PermitStream"]


class PermitStream:
    """The chunks of ``response``; ``release()`` runs once at the end, ``correct``
    with ``(ticket, actual - estimated)`` when usage arrived."""

    __slots__ = (
        "_chunks",
        "_correct",
        "_done",
        "_release",
        "_response",
        "_ticket",
        "_tokens",
        "_usage",
    )

    def __init__(
        self,
        response: Response,
        *,
        release: Callable[[], None],
        correct: Callable[[Ticket, int], Awaitable[None]] | None,
        ticket: Ticket,
        tokens: int,
    ) -> None:
        self._response = response
        self._release = release
        self._correct = correct
        self._ticket = ticket
        self._tokens = tokens
        self._chunks: AsyncIterator[Any] | None = None
        self._usage: int | None = None
        self._done = False

    def __aiter__(self) -> PermitStream:
        return self

    async def __anext__(self) -> Any:
        chunks = self._chunks
        if chunks is None:
            chunks = self._chunks = self._response.__aiter__()
        try:
            chunk = await chunks.__anext__()
        except Exception:  # the end (StopAsyncIteration) or a failure
            await self._finish()
            raise
        except BaseException:  # cancelled: give the permit back, skip the correction
            self._finish_now()
            raise
        usage = chunk.usage
        if usage is not None:
            self._usage = usage.total_tokens
        return chunk

    async def aclose(self) -> None:
        """Close the underlying response and give the permit back."""
        try:
            await self._response.aclose()
        except BaseException:
            self._finish_now()
            raise
        await self._finish()

    def _finish_now(self) -> bool:
        if self._done:
            return False
        self._done = True
        self._release()
        return True

    async def _finish(self) -> None:
        if self._finish_now() and self._usage is not None and self._correct is not None:
            delta = self._usage - self._tokens
            if delta:
                await self._correct(self._ticket, delta)
