"""What ``Stats.snapshot()`` returns: immutable, typed figures with a readable ``str()``."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import msgspec

from llmfast.histogram import Percentiles

__all__ = [
    "BreakerStats",
    "CacheStats",
    "ModelUsage",
    "RateLimitStats",
    "RetryStats",
    "StatsSnapshot",
]


class ModelUsage(msgspec.Struct, frozen=True):
    """One model's calls, the tokens they were billed (every attempt's) and their cost
    (``None`` when the model has no price). ``cache_read_tokens``, ``cache_write_tokens``
    are parts of ``input_tokens``, ``reasoning_tokens`` of ``output_tokens``;
    ``prompt_cache_hit_ratio`` is cache_read_tokens / input_tokens. ``batch_calls`` are
    the calls run through a provider batch, ``batch_cost`` their part of ``cost`` (at
    the batch price) and ``batch_saved`` the dollars that saved against the online
    price (``None`` when either price is unknown)."""

    calls: int
    input_tokens: int
    output_tokens: int
    cost: float | None
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    prompt_cache_hit_ratio: float | None = None
    batch_calls: int = 0
    batch_cost: float | None = 0.0
    batch_saved: float | None = 0.0


class CacheStats(msgspec.Struct, frozen=True):
    """Cache lookups: ``hit_ratio`` is hits / (hits + misses), ``None`` before any."""

    hits: int = 0
    misses: int = 0
    stores: int = 0
    errors: int = 0
    hit_ratio: float | None = None


class RetryStats(msgspec.Struct, frozen=True):
    """Attempts sent, how many failed (by error class), retries and their total delay,
    and how many dropped streams re-attached to their response (``resumes``)."""

    attempts: int = 0
    failed: int = 0
    retries: int = 0
    wait: float = 0.0
    errors: Mapping[str, int] = MappingProxyType({})
    resumes: int = 0


class RateLimitStats(msgspec.Struct, frozen=True):
    """Admissions by a rate limiter, how many had to wait, the total and longest wait."""

    admitted: int = 0
    waited: int = 0
    wait: float = 0.0
    longest: float = 0.0


class BreakerStats(msgspec.Struct, frozen=True):
    """Circuit-breaker state changes and each backend's last known state."""

    changes: int = 0
    states: Mapping[str, str] = MappingProxyType({})


class StatsSnapshot(msgspec.Struct, frozen=True):
    """What [`Stats.snapshot`][llmfast.stats.Stats.snapshot] returns; ``str()`` gives a readable
    summary.

    Attributes:
        since: when counting began (``time.time()``); ``duration``: seconds since.
        calls / errors: calls ended, and those that ended in an error.
        outcomes: calls by kind (``"chat"``, ``"embed"``) then outcome (``"ok"``,
            ``"closed"`` or the error's class name).
        latency: calls' wall time. first_chunk: streams' time to the first chunk.
        max_gap: the longest wait between two chunks of any stream.
        input_tokens / output_tokens: tokens billed, as the provider reported them
            (calls served by the cache or by joining an identical call cost nothing).
        cost: dollars, from your prices or the built-in table, every attempt priced;
            ``None`` when a model with tokens has no price (listed in
            ``unpriced_models``). models: the same, per model.
        cache_read_tokens / cache_write_tokens: the parts of ``input_tokens`` read from
            and written to providers' prompt caches; reasoning_tokens: the part of
            ``output_tokens`` spent reasoning.
        prompt_cache_hit_ratio: cache_read_tokens / input_tokens (``None`` before any).
        price_data: the built-in price data's version (``"genai-prices 0.2.3"``), ``None``
            without it.
        batch_calls: calls run through a provider batch (``client.map(..., via="batch")``).
        batch_cost: their part of ``cost``, at the batch price (``None``: a price unknown).
        batch_saved: dollars the batch price saved against the online price on those
            calls (``None`` when a model's batch or online price is unknown, never 0).
    """

    since: float
    duration: float
    calls: int
    errors: int
    outcomes: Mapping[str, Mapping[str, int]]
    latency: Percentiles
    first_chunk: Percentiles
    max_gap: float | None
    input_tokens: int
    output_tokens: int
    cost: float | None
    unpriced_models: tuple[str, ...]
    models: Mapping[str, ModelUsage]
    cache: CacheStats
    coalesced: int
    retry: RetryStats
    ratelimit: RateLimitStats
    breakers: BreakerStats
    fallbacks: int
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    prompt_cache_hit_ratio: float | None = None
    price_data: str | None = None
    batch_calls: int = 0
    batch_cost: float | None = 0.0
    batch_saved: float | None = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain dicts and lists, e.g. for ``json.dumps``."""
        result: dict[str, Any] = msgspec.to_builtins(self, enc_hook=_plain)
        return result

    def __str__(self) -> str:
        return _describe(self)


def _plain(value: Any) -> Any:
    if isinstance(value, MappingProxyType):
        return dict(value)
    raise NotImplementedError(type(value))


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 1e-3:
        return f"{value * 1e6:.0f} µs"
    if value < 1:
        return f"{value * 1e3:.1f} ms"
    return f"{value:.2f} s"


def _spread(p: Percentiles) -> str:
    if not p.count:
        return "-"
    return (
        f"p50 {_seconds(p.p50)}  p90 {_seconds(p.p90)}  p99 {_seconds(p.p99)}"
        f"  max {_seconds(p.max)}  ({p.count})"
    )


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in sorted(counts.items(), key=lambda i: -i[1]))


def _dollars(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.6g}"


def _batch_line(s: StatsSnapshot) -> list[str]:
    if not s.batch_calls:
        return []
    return [
        f"  batch        {s.batch_calls} calls at the batch price, cost {_dollars(s.batch_cost)},"
        f" saved {_dollars(s.batch_saved)} against the online price"
    ]


def _describe(s: StatsSnapshot) -> str:
    kinds = "; ".join(f"{kind}: {_counts(by)}" for kind, by in s.outcomes.items())
    cost = _dollars(s.cost)
    if s.unpriced_models:
        cost += f" (no price for {', '.join(s.unpriced_models)})"
    c = s.cache
    ratio = "-" if c.hit_ratio is None else f"{c.hit_ratio:.1%}"
    hit = s.prompt_cache_hit_ratio
    prompt_ratio = "-" if hit is None else f"{hit:.1%}"
    r = s.retry
    failed = f" ({_counts(r.errors)})" if r.errors else ""
    limit = s.ratelimit
    breakers = ", ".join(f"{name} {state}" for name, state in s.breakers.states.items())
    lines = [
        f"llmfast stats over {_seconds(s.duration)}: {s.calls} calls, {s.errors} errors"
        + (f" ({kinds})" if kinds else ""),
        f"  latency      {_spread(s.latency)}",
        f"  first chunk  {_spread(s.first_chunk)}",
        f"  max gap      {_seconds(s.max_gap)}",
        f"  tokens       in {s.input_tokens:,}  out {s.output_tokens:,}  cost {cost}"
        + (f" [{s.price_data}]" if s.price_data else ""),
        *_batch_line(s),
        f"  prompt cache {s.cache_read_tokens:,} read ({prompt_ratio} of input),"
        f" {s.cache_write_tokens:,} written; reasoning {s.reasoning_tokens:,}",
        f"  cache        {c.hits} hits, {c.misses} misses ({ratio} hit ratio),"
        f" {c.stores} stores, {c.errors} errors",
        f"  coalesced    {s.coalesced} calls joined one in flight",
        f"  attempts     {r.attempts} sent, {r.failed} failed{failed};"
        f" {r.retries} retries, waiting {_seconds(r.wait)}",
        f"  rate limit   {limit.admitted} admitted, {limit.waited} waited"
        f" ({_seconds(limit.wait)} in all, longest {_seconds(limit.longest)})",
        f"  breakers     {s.breakers.changes} changes" + (f" (now {breakers})" if breakers else ""),
        f"  fallbacks    {s.fallbacks}",
    ]
    return "\n".join(lines)
