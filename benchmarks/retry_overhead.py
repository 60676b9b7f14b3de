"""CPU overhead per call of the default Client's Retry layer when nothing fails.

Run: python benchmarks/retry_overhead.py  (prints µs per call, best of 7 runs)

A ``Client()`` made without ``layers=`` wraps its backend in ``Retry(max_attempts=3)``;
this measures that layer around a transport that answers at once (a plain call, a
stream opened and read to its end, and one with an event hook), against the same
chain without it. ``benchmarks/run.py --clients raw,llmfast,llmfast_bare`` shows the
same cost over real HTTP, as a ratio to the hand-written lower bound.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from llmfast import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatRequest,
    Request,
    Response,
    Transport,
    Usage,
)
from llmfast.layers import Retry

CALLS = 50_000
BODY = ChatRequest(
    model="m", messages=[{"role": "user", "content": "Hello there, how are you?"}], max_tokens=20
)
RESULT = ChatCompletion(usage=Usage(prompt_tokens=10, completion_tokens=20, total_tokens=30))
CHUNK = ChatCompletionChunk()


class Instant:
    """A transport that answers at once, so only the layer's own work is measured."""

    async def send(self, request: Request, /) -> Response:
        if request.stream:
            return Response(request, chunks=_chunks())
        return Response(request, result=RESULT)

    async def aclose(self) -> None:
        return None


async def _chunks() -> AsyncIterator[ChatCompletionChunk]:
    for _ in range(3):
        yield CHUNK


async def run(transport: Transport, stream: bool, hook: bool) -> float:
    """One run of ``CALLS`` calls; seconds."""
    events: list[object] = []
    on_event = events.append if hook else None
    started = time.perf_counter()
    for _ in range(CALLS):
        response = await transport.send(Request(BODY, stream=stream, on_event=on_event))
        async for _chunk in response:
            pass
    return time.perf_counter() - started


async def per_call(*, stream: bool = False, hook: bool = False) -> tuple[float, float]:
    """Best of 7 runs each, without and with the layer interleaved, in µs per call."""
    bare: Transport = Instant()
    layered: Transport = Retry(max_attempts=3)(Instant())
    best = [float("inf"), float("inf")]
    for _ in range(7):
        for i, transport in enumerate((bare, layered)):
            best[i] = min(best[i], await run(transport, stream, hook))
    return best[0] / CALLS * 1e6, best[1] / CALLS * 1e6


async def main() -> None:
    for name, options in {
        "chat": {},
        "stream (3 chunks)": {"stream": True},
        "chat, event hook": {"hook": True},
    }.items():
        base, took = await per_call(**options)
        print(f"{name:20} no layer {base:6.2f} µs   Retry {took:6.2f} µs  (+{took - base:.2f} µs)")


if __name__ == "__main__":
    asyncio.run(main())
