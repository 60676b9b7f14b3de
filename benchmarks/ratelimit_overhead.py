"""CPU overhead of the RateLimit layer per call when it is not limiting.

Run: python benchmarks/ratelimit_overhead.py  (prints µs per call, best of 7 runs)
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from llmfast import ChatCompletion, ChatRequest, Request, Response, Transport, Usage
from llmfast.layers.ratelimit import RateLimit
from llmfast.limits import CharEstimator

CALLS = 50_000
BODY = ChatRequest(
    model="m", messages=[{"role": "user", "content": "Hello there, how are you?"}], max_tokens=20
)
CASES: dict[str, dict[str, Any]] = {
    "rpm": {"rpm": 10**9, "adaptive": False},
    "concurrency": {"concurrency": 10**6, "adaptive": False},
    "adaptive (headers) only": {"estimator": CharEstimator()},
    "rpm + tpm + adaptive": {"rpm": 10**9, "tpm": 10**12, "estimator": CharEstimator()},
}


class Instant:
    """A transport that answers at once, so only the layer's own work is measured."""

    result = ChatCompletion(usage=Usage(prompt_tokens=10, completion_tokens=20, total_tokens=30))

    async def send(self, request: Request, /) -> Response:
        return Response(request, result=self.result)

    async def aclose(self) -> None:
        return None


async def per_call(transport: Transport) -> float:
    """Best of 7 runs, in µs per call."""
    best = float("inf")
    for _ in range(7):
        started = time.perf_counter()
        for _ in range(CALLS):
            await transport.send(Request(BODY))
        best = min(best, time.perf_counter() - started)
    return best / CALLS * 1e6


async def main() -> None:
    base = await per_call(Instant())
    print(f"{'no layer':24} {base:6.2f} µs")
    for name, options in CASES.items():
        took = await per_call(RateLimit(**options)(Instant()))
        print(f"{name:24} {took:6.2f} µs  (+{took - base:.2f} µs)")


if __name__ == "__main__":
    asyncio.run(main())
