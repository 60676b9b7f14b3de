"""Forwarding a streamed call to the caller, chunk by chunk, as it arrives.

The first chunk is awaited before the headers go out, so a call that fails before
producing anything still gets its own status (a 429 stays a 429). After that a failure
becomes the format's error event. ``write`` waits while the caller's socket is full,
so a slow reader holds the upstream back instead of making the gateway buffer; a
caller that goes away cancels the handler, and with it the upstream call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from llmfast.gateway.answers import Failure
from llmfast.transport import Response

if TYPE_CHECKING:
    from llmfast.gateway.app import Call

__all__ = ["forward_stream"]


async def forward_stream(
    call: Call,
    response: Response,
    translate: Callable[[Any], bytes],
    end: Callable[[], bytes],
    error_event: Callable[[Failure], bytes],
) -> web.StreamResponse:
    """Send ``response``'s chunks through ``translate``, then ``end()``."""
    chunks = aiter(response)
    try:
        chunk = await anext(chunks, None)
        call.note_first_chunk()
        out = await call.start_stream("text/event-stream")
    except BaseException:
        await response.aclose()
        raise
    try:
        while chunk is not None:
            if chunk.usage is not None:
                call.note_usage(chunk.usage)
            data = translate(chunk)
            if data:
                await out.write(data)
            chunk = await anext(chunks, None)
        await out.write(end())
    except Exception as exc:  # after the headers: the format's error event
        await out.write(error_event(call.failure(exc)))
    finally:
        await response.aclose()
    await out.write_eof()
    return out
