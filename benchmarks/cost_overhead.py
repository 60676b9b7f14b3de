"""CPU cost of pricing and budgets: per usage priced, per ``done`` event, per call.

Run: python benchmarks/cost_overhead.py  (µs each, median of 7 interleaved runs)

- pricing one usage: llmfast's ``Prices.cost`` (the built-in table's price turned into
  floats once) against ``genai_prices.calc_price``, what a user would call instead;
- ``Stats`` handling one ``done`` event, with and without prices;
- a call through the ``Budget`` layer (a local budget in tokens and one in dollars)
  around a transport that answers at once, against the same call without it.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable

from llmfast import Budget, ChatCompletion, ChatRequest, Price, Prices, Request, Response, Stats
from llmfast import Usage as LLMUsage
from llmfast.events import Event, call_summary

N = 20_000
USAGE = LLMUsage(2006, 300, 2306, {"cached_tokens": 1920})
BODY = ChatRequest(
    model="gpt-4o", messages=[{"role": "user", "content": "Hi there"}], max_tokens=20
)
RESULT = ChatCompletion(usage=LLMUsage(10, 20, 30))


class Instant:
    async def send(self, request: Request, /) -> Response:
        return Response(request, result=RESULT)

    async def aclose(self) -> None:
        return None


def timed(work: Callable[[], object], n: int = N) -> float:
    started = time.perf_counter()
    for _ in range(n):
        work()
    return (time.perf_counter() - started) / n * 1e6


async def timed_calls(transport: object) -> float:
    send = transport.send  # type: ignore[attr-defined]
    started = time.perf_counter()
    for _ in range(N):
        await send(Request(BODY))
    return (time.perf_counter() - started) / N * 1e6


def median_of(runs: dict[str, list[float]]) -> dict[str, float]:
    return {name: statistics.median(values) for name, values in runs.items()}


async def main() -> None:
    import genai_prices

    prices = Prices()
    theirs = genai_prices.Usage(input_tokens=2006, cache_read_tokens=1920, output_tokens=300)
    request = Request(BODY)
    event = Event("done", request, 0.01, call_summary(request, None, USAGE))
    priced = Stats(prices={"gpt-4o": Price(2.5, 10.0)}, builtin_prices=False)
    table = Stats()
    bare = Stats(builtin_prices=False)
    tokens = Budget(tokens=10**12, estimator=lambda body: 30)(Instant())
    dollars = Budget(usd=1e9, prices=prices, estimator=lambda body: 30)(Instant())
    runs: dict[str, list[float]] = {}
    for _ in range(7):
        for name, work, n in (
            ("Prices.cost (llmfast)", lambda: prices.cost(USAGE, "gpt-4o"), N),
            ("genai_prices.calc_price", lambda: genai_prices.calc_price(theirs, "gpt-4o"), 500),
            ("Stats done, no price", lambda: bare(event), N),
            ("Stats done, override price", lambda: priced(event), N),
            ("Stats done, built-in table", lambda: table(event), N),
        ):
            runs.setdefault(name, []).append(timed(work, n))
        for name, transport in (
            ("call, no layer", Instant()),
            ("call, Budget(tokens)", tokens),
            ("call, Budget(usd)", dollars),
        ):
            runs.setdefault(name, []).append(await timed_calls(transport))
    medians = median_of(runs)
    for name, value in medians.items():
        print(f"{name:32} {value:8.2f} µs")
    ratio = medians["genai_prices.calc_price"] / medians["Prices.cost (llmfast)"]
    print(f"pricing: genai_prices.calc_price / Prices.cost = {ratio:.0f}x")
    extra = medians["call, Budget(usd)"] - medians["call, no layer"]
    print(f"Budget(usd) adds {extra:.2f} µs per call")


if __name__ == "__main__":
    asyncio.run(main())
