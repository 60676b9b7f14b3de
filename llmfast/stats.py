"""``Stats``: an event hook that sums up what the calls did, where the time went and
what it cost.

::

    stats = Stats(prices={"my-finetune": Price(input=0.30, output=1.20)})
    client = llmfast.Client(model="gpt-4o-mini", on_event=stats)
    ...
    print(stats.snapshot())  # counts, latency p50/p90/p99, tokens, cost, cache, retries

Cost comes from your prices, else from the built-in table (``llmfast[prices]``, see
[`Prices`][llmfast.prices.Prices]), priced per attempt (so long-context tiers and batch
rates apply per request) and summed over every attempt of a call. Provider-batch items
(``client.map(..., via="batch")``) are billed at the batch price, and ``batch_saved``
says what that saved against the online price.

Latencies go into a bounded log-scale [`Histogram`][llmfast.stats.Histogram] (fixed memory, O(1) per
call), so a client may run for months. Events arrive on the event loop; a snapshot may
be taken from any thread (a lock keeps it consistent). See ``docs/observability.md``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType

from llmfast._tally import Tally as _Tally
from llmfast._tally import total as _total
from llmfast.events import Event
from llmfast.histogram import Histogram, Percentiles
from llmfast.prices import Price, Prices, builtin_loaded
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
from llmfast.types import Usage

__all__ = [
    "BreakerStats",
    "CacheStats",
    "Histogram",
    "ModelUsage",
    "Percentiles",
    "Price",
    "Prices",
    "RateLimitStats",
    "RetryStats",
    "Stats",
    "StatsSnapshot",
]

_PENDING_LIMIT = 10_000  # calls remembered between a cache hit / coalesced join and `done`


class Stats:
    """An event hook (pass it as ``Client(on_event=...)``) that aggregates every call.

    Args:
        prices: per model, a [`Price`][llmfast.prices.Price] (or ``(input, output)``) per
            million tokens; they win over the built-in table.
        builtin_prices: also price models from the built-in table when genai-prices is
            installed (``llmfast[prices]``; loaded once, here). A model priced nowhere
            gets no cost (``None``), never a guess. Or pass your own
            [`Prices`][llmfast.prices.Prices] as ``prices``.
        histogram: builds each latency histogram (default [`Histogram`][llmfast.stats.Histogram]).
    """

    def __init__(
        self,
        *,
        prices: Prices | Mapping[str, Price | tuple[float, float]] | None = None,
        builtin_prices: bool = True,
        histogram: Callable[[], Histogram] = Histogram,
    ) -> None:
        # Made inside a running loop (``Client(stats=True)`` in async code), the table is
        # not imported there: calls are priced when it loads (``load_prices``, or the
        # first ``snapshot``).
        defer = builtin_prices and not isinstance(prices, Prices) and not builtin_loaded()
        defer = defer and _loop_running()
        table = (
            prices
            if isinstance(prices, Prices)
            else Prices(prices, builtin=builtin_prices and not defer)
        )
        self.price_table = table
        self._deferred = defer
        self._unpriced: list[tuple[_Tally, Usage, str]] = []  # priced when the table loads
        self.prices: Mapping[str, Price] = MappingProxyType(table.overrides)
        self._histogram = histogram
        self._lock = threading.Lock()
        self._handlers: dict[str, Callable[[Event], None]] = {
            "done": self._on_done,
            "first_chunk": self._on_first_chunk,
            "attempt": self._on_attempt,
            "attempt.failed": self._on_attempt_failed,
            "retry": self._on_retry,
            "resume": self._on_resume,
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
            self._models: dict[str, _Tally] = {}
            self._free: dict[Request, None] = {}  # served by the cache or a shared call
            self._cache = [0, 0, 0, 0]  # hits, misses, stores, errors
            self._coalesced = 0
            self._attempts = self._failed = self._retries = self._resumes = 0
            self._attempt_errors: dict[str, int] = {}
            self._retry_wait = 0.0
            self._admitted = self._waited = 0
            self._wait = self._longest_wait = 0.0
            self._breaker_changes = 0
            self._breaker_states: dict[str, str] = {}
            self._fallbacks = 0
            self._unpriced.clear()

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
        name = str(data.get("model"))
        tally = self._models.get(name)
        if tally is None:
            tally = self._models[name] = _Tally()
        tally.calls += 1
        if data.get("batch"):
            tally.batch_calls += 1
        free = self._free
        if free and event.request in free:
            del free[event.request]
            return
        if "usage" not in data:  # a `done` made without llmfast's call_summary
            usage = Usage(data.get("prompt_tokens") or 0, data.get("completion_tokens") or 0)
            self._add(tally, usage, name)
            return
        for reported in (data["usage"], data.get("earlier_usage")):  # each priced apart
            if reported is None:
                continue
            if type(reported) is not Usage:  # embeddings: input tokens only
                reported = Usage(getattr(reported, "prompt_tokens", 0) or 0)
            self._add(tally, reported, name)

    def _add(self, tally: _Tally, usage: Usage, model: str) -> None:
        if self._deferred and model not in self.prices:  # priced once the table loads
            if len(self._unpriced) < _PENDING_LIMIT:
                tally.add(usage, 0.0, 0.0)
                self._unpriced.append((tally, usage, model))
            else:
                tally.add(usage, None, None if usage.batch else 0.0)
            return
        tally.add(usage, *self._price(usage, model))

    def _price(self, usage: Usage, model: str) -> tuple[float | None, float | None]:
        """What ``usage`` cost, and what it saved against the online price (batch usage;
        ``None`` when either price is unknown)."""
        cost = self.price_table.cost(usage, model)
        if not usage.batch:
            return cost, 0.0
        online = self.price_table.cost(usage, model, batch=False)
        return cost, None if cost is None or online is None else online - cost

    def load_prices(self) -> None:
        """Load the built-in price table now, if this ``Stats`` was made inside a running
        event loop (where importing it would stall the loop): e.g.
        ``await asyncio.to_thread(stats.load_prices)``. The first ``snapshot`` does it
        otherwise. Calls made meanwhile are priced then."""
        if not self._deferred:
            return
        self.price_table.use_builtin()  # the import, outside the lock
        with self._lock:
            self._deferred = False
            for tally, usage, model in self._unpriced:
                tally.charge(*self._price(usage, model), usage.batch)
            self._unpriced.clear()

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

    def _on_resume(self, event: Event) -> None:
        self._resumes += 1

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
        self.load_prices()
        with self._lock:
            models: dict[str, ModelUsage] = {}
            unpriced: list[str] = []
            total_cost: float | None = 0.0
            for name, t in self._models.items():
                cost = t.cost
                if not (t.input or t.output) and self.price_table.price(name) is None:
                    cost = None  # nothing billed, but no price either: not a known 0
                if cost is None and (t.input or t.output):
                    unpriced.append(name)
                models[name] = ModelUsage(
                    t.calls,
                    t.input,
                    t.output,
                    cost,
                    t.cache_read,
                    t.cache_write,
                    t.reasoning,
                    t.cache_read / t.input if t.input else None,
                    t.batch_calls,
                    t.batch_cost,
                    t.saved,
                )
                if cost is not None and total_cost is not None:
                    total_cost += cost
            if unpriced:
                total_cost = None
            input_total = sum(m.input_tokens for m in models.values())
            cache_read = sum(m.cache_read_tokens for m in models.values())
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
                input_tokens=input_total,
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
                    self._resumes,
                ),
                ratelimit=RateLimitStats(
                    self._admitted, self._waited, self._wait, self._longest_wait
                ),
                breakers=BreakerStats(
                    self._breaker_changes, MappingProxyType(dict(self._breaker_states))
                ),
                fallbacks=self._fallbacks,
                cache_read_tokens=cache_read,
                cache_write_tokens=sum(m.cache_write_tokens for m in models.values()),
                reasoning_tokens=sum(m.reasoning_tokens for m in models.values()),
                prompt_cache_hit_ratio=cache_read / input_total if input_total else None,
                price_data=self.price_table.version,
                batch_calls=sum(m.batch_calls for m in models.values()),
                batch_cost=_total(m.batch_cost for m in models.values()),
                batch_saved=_total(m.batch_saved for m in models.values()),
            )

    def __repr__(self) -> str:
        return f"<Stats prices for {len(self.prices)} models, table={self.price_table.version}>"


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
