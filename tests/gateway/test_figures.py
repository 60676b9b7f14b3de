"""The gateway's plain figures read out exactly as prometheus-client's own counters and
histograms would, for the same updates."""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from llmfast.gateway.figures import Spread, Tally

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class _One:
    def __init__(self, family: Tally | Spread) -> None:
        self._family = family

    def collect(self):  # type: ignore[no-untyped-def]
        yield self._family.family()


def _text(registry: CollectorRegistry) -> str:
    return re.sub(r"(_created\{[^}]*\}) \S+", r"\1 T", generate_latest(registry).decode())


def test_a_spread_reads_as_a_histogram() -> None:
    observed = [0.0, 0.005, 0.0051, 0.01, 0.7, 1.0, 119.9, 120.0, 120.1, 1e9, 3.0]
    theirs = CollectorRegistry()
    histogram = Histogram("h_seconds", "Doc.", ("a", "b"), buckets=_BUCKETS, registry=theirs)
    ours = CollectorRegistry()
    spread = Spread("h_seconds", "Doc.", ("a", "b"), _BUCKETS)
    ours.register(_One(spread))
    for i, value in enumerate(observed):
        labels = ("x", str(i % 2))
        histogram.labels(*labels).observe(value)
        spread.observe(labels, value)
    assert _text(ours) == _text(theirs)


def test_a_tally_reads_as_a_counter() -> None:
    theirs = CollectorRegistry()
    counter = Counter("c", "Doc.", ("a", "b"), registry=theirs)
    ours = CollectorRegistry()
    tally = Tally("c", "Doc.", ("a", "b"))
    ours.register(_One(tally))
    for labels, amount in [(("x", "1"), 1), (("y", "2"), 5), (("x", "1"), 2.5), (("z", "0"), 0)]:
        counter.labels(*labels).inc(amount)
        tally.add(labels, amount)
    assert _text(ours) == _text(theirs)
