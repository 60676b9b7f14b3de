"""Forwarding a streamed call to the caller as it arrives.

The first chunk is awaited before the headers go out, so a call that fails before
producing anything still gets its own status (a 429 stays a 429). After that a failure
becomes the format's error event. When the response offers the backend's batches (the
chunks each network read completed; see
[`Response.batches`][llmfast.transport.Response.batches]) each batch goes out in one
``write``: one send per read, not per chunk. The headers go out with the first write,
and a read that ends the stream (a [`RawEvents`][llmfast.raw_events.RawEvents] with
``end``) with the stream's last bytes: a stream the upstream sent in one read reaches
the caller in one send. ``write`` waits while the caller's socket
is full, so a slow reader holds the upstream back instead of making the gateway
buffer; a caller that goes away cancels the handler, and with it the upstream call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web

from llmfast.gateway.answers import Failure
from llmfast.raw_events import RawEvents
from llmfast.transport import Response
from llmfast.types import ChatCompletionChunk, Usage

if TYPE_CHECKING:
    from llmfast.gateway.app import Call

__all__ = ["Frames", "forward_stream"]


class Frames(Protocol):
    """One stream's translation into a wire format's events."""

    usage: Usage | None
    """The last usage the stream reported (counted once it ends)."""

    def batch(self, chunks: list[ChatCompletionChunk], /) -> bytes:
        """The events of ``chunks``, joined (``b""``: none); a frames class that asks
        for ``raw_events`` takes [`RawEvents`][llmfast.raw_events.RawEvents] too."""
        ...

    def finish(self) -> bytes:
        """The events that end the stream."""
        ...

    def finish_after(self, chunks: list[ChatCompletionChunk], /) -> bytes:
        """``batch(chunks) + finish()``, for the read that ends the stream (in one join,
        where the frames can: the stream's last bytes are not copied once more)."""
        ...


async def forward_stream(
    call: Call, response: Response, frames: Frames, error_event: Callable[[Failure], bytes]
) -> web.StreamResponse:
    """Send ``response``'s chunks as ``frames``, then ``frames.finish()``."""
    batches = response.batches()
    source: AsyncIterator[Any] = batches if batches is not None else _singles(response)
    try:
        batch = await anext(source, None)
        call.note_first_chunk()
        out = await call.start_stream("text/event-stream")
    except BaseException:
        await _close(source, response)
        raise
    held: Any = None  # the read that held the end marker: framed and sent with the end
    try:
        while batch is not None:
            if type(batch) is RawEvents and batch.end:
                held = batch
            else:
                data = frames.batch(batch)
                if data:
                    await out.write(data)  # waits while the caller's socket is full
            batch = await anext(source, None)
        last = frames.finish() if held is None else frames.finish_after(held)
    except Exception as exc:  # after the headers: the format's error event
        last = _events_of(frames, held) + error_event(call.failure(exc))
    finally:
        call.note_usage(frames.usage)
        await _close(source, response)
    await out.write_eof(last)  # one send with the body's end
    return out


def _events_of(frames: Frames, held: Any) -> bytes:
    """The events of the held read, before an error event (none if framing them is
    what failed)."""
    if held is None:
        return b""
    try:
        return frames.batch(held)
    except Exception:
        return b""


async def _singles(response: Response) -> AsyncIterator[list[Any]]:
    """A body some layer wraps, one chunk at a time, as batches of one."""
    async for chunk in response:
        yield [chunk]


async def _close(source: AsyncIterator[Any], response: Response) -> None:
    try:
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            await aclose()
    finally:
        await response.aclose()
