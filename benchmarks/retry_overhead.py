"""CPU overhead per call of the default Client's Retry layer when nothing fails.

Run: python benchmarks/retry_overhead.py  (prints µs per call, best of 7 runs)

A ``Client()`` made without ``layers=`` wraps its backend in ``Retry(max_attempts=3)``;
this measures that layer around a transport that answers at once (a plain call,
streams of 3 and 67 chunks read to their end, and a call with an event hook, whose
attempt events the layer then reports), against the same chain without it.
``benchmarks/run.py --clients raw,raw_bulk,llmfast,llmfast_bare`` shows the same cost
over real HTTP, as a ratio to the hand-written lower bound.
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

CALLS = 20_000
BODY = ChatRequest(
    model="m", messages=[{"role": "user", "content": "Hello there, how are you?"}], max_tokens=20
)
RESULT = ChatCompletion(usage=Usage(prompt_tokens=10, completion_tokens=20, total_tokens=30))
CHUNK = ChatCompletionChunk()


class Instant:
    """A transport that answers at once, so only the layer's own work is measured."""

    async def send(self, request: Request, /) -> Response:
        if request.stream:
            context = request.context or {}
            return Response(request, chunks=_chunks(context["chunks"]))
        return Response(request, result=RESULT)

    async def aclose(self) -> None:
        return None


async def _chunks(count: int) -> AsyncIterator[ChatCompletionChunk]:
    for _ in range(count):
        yield CHUNK


async def run(transport: Transport, chunks: int, hook: bool) -> float:
    """One run of ``CALLS`` calls (streams of ``chunks`` chunks if not 0); seconds."""
    events: list[object] = []
    on_event = events.append if hook else None
    context = {"chunks": chunks}
    started = time.perf_counter()
    for _ in range(CALLS):
        request = Request(BODY, stream=bool(chunks), on_event=on_event, context=context)
        response = await transport.send(request)
        async for _chunk in response:
            pass
    return time.perf_counter() - started


async def per_call(*, chunks: int = 0, hook: bool = False) -> tuple[float, float]:
    """Best of 7 runs each, without and with the layer interleaved, in µs per call."""
    bare: Transport = Instant()
    layered: Transport = Retry(max_attempts=3)(Instant())
    best = [float("inf"), float("inf")]
    for _ in range(7):
        for i, transport in enumerate((bare, layered)):
            best[i] = min(best[i], await run(transport, chunks, hook))
    return best[0] / CALLS * 1e6, best[1] / CALLS * 1e6


async def main() -> None:
    cases = [("chat", 0, False), ("stream, 3 chunks", 3, False), ("stream, 67 chunks", 67, False)]
    for name, chunks, hook in [*cases, ("chat, event hook", 0, True)]:
        base, took = await per_call(chunks=chunks, hook=hook)
        print(f"{name:20} no layer {base:6.2f} µs   Retry {took:6.2f} µs  (+{took - base:.2f} µs)")


if __name__ == "__main__":
    asyncio.run(main())
