"""``Stats``: an event hook that sums up what the calls did, where the time went and
what it cost.

::

    stats = Stats(prices={"gpt-4o-mini": Price(input=0.15, output=0.60)})
    client = llmfast.Client(model="gpt-4o-mini", on_event=stats)
    ...
    print(stats.snapshot())  # counts, latency p50/p90/p99, tokens, cost, cache, retries

Latencies go into a bounded log-scale [`Histogram`][llmfast.stats.Histogram] (fixed memory, O(1) per
call), so a client may run for months. Events arrive on the event loop; a snapshot may
be taken from any thread (a lock keeps it consistent). See ``docs/observability.md``.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import NamedTuple

from llmfast.errors import ConfigurationError
from llmfast.events import Event
from llmfast.histogram import Histogram, Percentiles
from llmfast.redact import redact_text
from llmfast.snapshot import (
    BreakerStats,
    CacheStats,
    ModelUsage,
    RateLimitStats,
    RetryStats,
    StatsSnapshot,
)
from llmfast.transport import Request

__all__ = [
    "BreakerStats",
    "CacheStats",
    "Histogram",
    "ModelUsage",
    "Percentiles",
    "Price",
    "RateLimitStats",
    "RetryStats",
    "Stats",
    "StatsSnapshot",
]

_PENDING_LIMIT = 10_000  # calls remembered between a cache hit / coalesced join and `done`


class Price(NamedTuple):
    """What a model costs per million tokens; the estimated cost is in the same unit."""

    input: float
    output: float


class Stats:
    """An event hook (pass it as ``Client(on_event=...)``) that aggregates every call.

    Args:
        prices: per model, a [`Price`][llmfast.stats.Price] (or ``(input, output)``) per million
            tokens. A model not in it gets no cost (``None``), never a guess.
        histogram: builds each latency histogram (default [`Histogram`][llmfast.stats.Histogram]).
    """

    def __init__(
        self,
        *,
        prices: Mapping[str, Price | tuple[float, float]] | None = None,
        histogram: Callable[[], Histogram] = Histogram,
    ) -> None:
        self.prices: Mapping[str, Price] = MappingProxyType(_check_prices(prices or {}))
        self._histogram = histogram
        self._lock = threading.Lock()
        self._handlers: dict[str, Callable[[Event], None]] = {
            "done": self._on_done,
            "first_chunk": self._on_first_chunk,
            "attempt": self._on_attempt,
            "attempt.failed": self._on_attempt_failed,
            "retry": self._on_retry,
            "ratelimit.wait": self._on_ratelimit_wait,
            "cache.hit": self._on_cache_hit,
            "cache.miss": self._on_cache_miss,
            "cache.store": self._on_cache_store,
            "cache.error": self._on_cache_error,
            "coalesce.join": self._on_coalesce_join,
            "breaker.state": self._on_breaker_state,
            "fallback": self._on_fallback,
        }
        self.reset()

    def __call__(self, event: Event) -> None:
        handler = self._handlers.get(event.name)
        if handler is not None:
            with self._lock:
                handler(event)

    def reset(self) -> None:
        """Start counting afresh."""
        with self._lock:
            self._since = time.time()
            self._started = time.monotonic()
            self._outcomes: dict[str, dict[str, int]] = {}
            self._latency = self._histogram()
            self._ttfc = self._histogram()
            self._max_gap: float | None = None
            self._models: dict[str, list[int]] = {}  # model -> [calls, input, output]
            self._free: dict[Request, None] = {}  # served by the cache or a shared call
            self._cache = [0, 0, 0, 0]  # hits, misses, stores, errors
            self._coalesced = 0
            self._attempts = self._failed = self._retries = 0
            self._attempt_errors: dict[str, int] = {}
            self._retry_wait = 0.0
            self._admitted = self._waited = 0
            self._wait = self._longest_wait = 0.0
            self._breaker_changes = 0
            self._breaker_states: dict[str, str] = {}
            self._fallbacks = 0

    # -- the events ---------------------------------------------------------------------

    def _on_done(self, event: Event) -> None:
        data = event.data
        kind = data.get("kind", "?")
        outcome = data.get("outcome", "?")
        by_outcome = self._outcomes.setdefault(kind, {})
        by_outcome[outcome] = by_outcome.get(outcome, 0) + 1
        if event.elapsed is not None:
            self._latency.record(event.elapsed)
        gap = data.get("max_gap")
        if gap is not None and data.get("chunks", 0) > 1:
            self._max_gap = gap if self._max_gap is None else max(self._max_gap, gap)
        model = self._models.setdefault(str(data.get("model")), [0, 0, 0])
        model[0] += 1
        free = self._free
        if free and event.request in free:
            del free[event.request]
            return
        model[1] += data.get("prompt_tokens") or 0
        model[2] += data.get("completion_tokens") or 0

    def _on_first_chunk(self, event: Event) -> None:
        if event.elapsed is not None:
            self._ttfc.record(event.elapsed)

    def _on_attempt(self, event: Event) -> None:
        self._attempts += 1

    def _on_attempt_failed(self, event: Event) -> None:
        self._failed += 1
        error = redact_text(str(event.data.get("error", "?")))
        self._attempt_errors[error] = self._attempt_errors.get(error, 0) + 1

    def _on_retry(self, event: Event) -> None:
        self._retries += 1
        self._retry_wait += event.elapsed or 0.0

    def _on_ratelimit_wait(self, event: Event) -> None:
        self._admitted += 1
        wait = event.elapsed or 0.0
        if wait > 0:
            self._waited += 1
            self._wait += wait
            self._longest_wait = max(self._longest_wait, wait)

    def _on_cache_hit(self, event: Event) -> None:
        self._cache[0] += 1
        self._mark_free(event.request)

    def _on_cache_miss(self, event: Event) -> None:
        self._cache[1] += 1

    def _on_cache_store(self, event: Event) -> None:
        self._cache[2] += 1

    def _on_cache_error(self, event: Event) -> None:
        self._cache[3] += 1

    def _on_coalesce_join(self, event: Event) -> None:
        self._coalesced += 1
        self._mark_free(event.request)

    def _on_breaker_state(self, event: Event) -> None:
        self._breaker_changes += 1
        self._breaker_states[str(event.data.get("backend"))] = str(event.data.get("state"))

    def _on_fallback(self, event: Event) -> None:
        self._fallbacks += 1

    def _mark_free(self, request: Request) -> None:
        free = self._free
        if len(free) >= _PENDING_LIMIT:  # calls whose `done` never came (client.send)
            del free[next(iter(free))]
        free[request] = None

    # -- reading --------------------------------------------------------------------------

    def snapshot(self) -> StatsSnapshot:
        """An immutable, consistent copy of the figures so far (safe from any thread)."""
        with self._lock:
            models: dict[str, ModelUsage] = {}
            unpriced: list[str] = []
            total_cost: float | None = 0.0
            for name, (calls, input_tokens, output_tokens) in self._models.items():
                price = self.prices.get(name)
                cost = None
                if price is not None:
                    cost = (input_tokens * price.input + output_tokens * price.output) / 1e6
                elif input_tokens or output_tokens:
                    unpriced.append(name)
                models[name] = ModelUsage(calls, input_tokens, output_tokens, cost)
                if cost is not None and total_cost is not None:
                    total_cost += cost
            if unpriced:
                total_cost = None
            hits, misses, stores, cache_errors = self._cache
            lookups = hits + misses
            calls = errors = 0
            for by_outcome in self._outcomes.values():
                for outcome, n in by_outcome.items():
                    calls += n
                    if outcome not in ("ok", "closed"):
                        errors += n
            return StatsSnapshot(
                since=self._since,
                duration=time.monotonic() - self._started,
                calls=calls,
                errors=errors,
                outcomes=MappingProxyType(
                    {k: MappingProxyType(dict(v)) for k, v in self._outcomes.items()}
                ),
                latency=self._latency.summary(),
                first_chunk=self._ttfc.summary(),
                max_gap=self._max_gap,
                input_tokens=sum(m.input_tokens for m in models.values()),
                output_tokens=sum(m.output_tokens for m in models.values()),
                cost=total_cost,
                unpriced_models=tuple(unpriced),
                models=MappingProxyType(models),
                cache=CacheStats(
                    hits, misses, stores, cache_errors, hits / lookups if lookups else None
                ),
                coalesced=self._coalesced,
                retry=RetryStats(
                    self._attempts,
                    self._failed,
                    self._retries,
                    self._retry_wait,
                    MappingProxyType(dict(self._attempt_errors)),
                ),
                ratelimit=RateLimitStats(
                    self._admitted, self._waited, self._wait, self._longest_wait
                ),
                breakers=BreakerStats(
                    self._breaker_changes, MappingProxyType(dict(self._breaker_states))
                ),
                fallbacks=self._fallbacks,
            )

    def __repr__(self) -> str:
        return f"<Stats prices for {len(self.prices)} models>"


def _check_prices(prices: Mapping[str, Price | tuple[float, float]]) -> dict[str, Price]:
    checked: dict[str, Price] = {}
    for model, price in prices.items():
        try:
            input_price, output_price = price
            price = Price(float(input_price), float(output_price))
        except (TypeError, ValueError):
            raise ConfigurationError(
                f"the price of {model!r} must be Price(input=..., output=...)"
            ) from None
        if not all(math.isfinite(p) and p >= 0 for p in price):
            raise ConfigurationError(f"the price of {model!r} must be finite and >= 0")
        checked[str(model)] = price
    return checked
