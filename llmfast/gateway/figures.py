"""The figures the gateway counts on every request, kept as plain numbers and shown in
prometheus-client's families when ``/metrics`` is read.

prometheus-client's own ``Counter`` and ``Histogram`` take a lock and three Python
calls per increment (five and a bucket loop per observation), made for updates from
any thread; the gateway updates its figures on its event loop only, so a dict entry
and, for a histogram, a ``bisect`` do. The exposition is the same: the same families,
samples and ``_created`` times.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable, Sequence

from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

_go_string: Callable[[float], str] = floatToGoString  # untyped upstream

__all__ = ["Spread", "Tally"]

Key = tuple[str, ...]


class Tally:
    """A counter family: a running total (and its creation time) per label values."""

    __slots__ = ("documentation", "labels", "name", "values")

    def __init__(self, name: str, documentation: str, labels: Sequence[str]) -> None:
        self.name = name
        self.documentation = documentation
        self.labels = tuple(labels)
        self.values: dict[Key, list[float]] = {}  # key -> [total, created]

    def add(self, key: Key, amount: float = 1.0) -> None:
        entry = self.values.get(key)
        if entry is None:
            entry = self.values[key] = [0.0, time.time()]
        entry[0] += amount

    def family(self) -> Metric:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labels)
        for key, (total, created) in self.values.items():
            family.add_metric(key, total, created=created)
        return family


class _Counts:
    __slots__ = ("buckets", "created", "sum")

    def __init__(self, size: int) -> None:
        self.buckets = [0] * size
        self.sum = 0.0
        self.created = time.time()


class Spread:
    """A histogram family: per label values, the observations in each bucket (the first
    whose bound is at least the value, as prometheus-client counts), their sum and its
    creation time."""

    __slots__ = ("_bounds", "_les", "documentation", "labels", "name", "values")

    def __init__(
        self, name: str, documentation: str, labels: Sequence[str], buckets: Sequence[float]
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labels = tuple(labels)
        self._bounds = tuple(float(b) for b in buckets)
        self._les = [_go_string(b) for b in self._bounds] + ["+Inf"]
        self.values: dict[Key, _Counts] = {}

    def observe(self, key: Key, amount: float) -> None:
        counts = self.values.get(key)
        if counts is None:
            counts = self.values[key] = _Counts(len(self._bounds) + 1)
        counts.buckets[bisect_left(self._bounds, amount)] += 1
        counts.sum += amount

    def family(self) -> Metric:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labels)
        for key, counts in self.values.items():
            running = 0
            cumulative = []
            for le, count in zip(self._les, counts.buckets, strict=True):
                running += count
                cumulative.append((le, float(running)))
            family.add_metric(key, cumulative, counts.sum)
            labels = dict(zip(self.labels, key, strict=True))
            family.samples.append(Sample(self.name + "_created", labels, counts.created))
        return family
