"""A bounded latency histogram: log-scale buckets, fixed memory, O(1) per record."""

from __future__ import annotations

import math

import msgspec

from llmfast.errors import ConfigurationError

__all__ = ["Histogram", "Percentiles"]


class Percentiles(msgspec.Struct, frozen=True):
    """A distribution of seconds: count, mean, min, p50/p90/p99 and max (``None`` if empty)."""

    count: int = 0
    mean: float | None = None
    min: float | None = None
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    max: float | None = None


class Histogram:
    """Counts of non-negative values in log-scale buckets: fixed memory, O(1) per record.

    Bucket 0 holds values below ``low``; bucket ``i`` holds ``[low * growth**(i-1),
    low * growth**i)``; the last one everything from about ``high`` up. A percentile
    (nearest rank) is reported as its bucket's geometric middle, clamped to the
    smallest and largest values recorded: it always lies in the bucket of the exact
    percentile, so it is off by less than ``growth`` (9 % by default).
    """

    __slots__ = ("_counts", "_growth", "_inverse", "_last", "_low", "count", "max", "min", "total")

    def __init__(self, *, low: float = 1e-4, high: float = 1e4, growth: float = 2 ** (1 / 8)):
        if not (0 < low < high and math.isfinite(high) and 1 < growth <= 2):
            raise ConfigurationError("a Histogram needs 0 < low < high and 1 < growth <= 2")
        self._low = low
        self._growth = growth
        self._inverse = 1 / math.log(growth)
        self._last = math.ceil(math.log(high / low) * self._inverse) + 1
        self._counts = [0] * (self._last + 1)
        self.count = 0
        self.total = 0.0
        self.min = math.inf
        self.max = 0.0

    def bucket(self, value: float) -> int:
        """The index of the bucket ``value`` falls in."""
        if value < self._low:
            return 0
        return min(int(math.log(value / self._low) * self._inverse) + 1, self._last)

    def record(self, value: float) -> None:
        """Count one value (a negative or NaN one counts as 0)."""
        if not value > 0:
            value = 0.0
        self._counts[self.bucket(value)] += 1
        self.count += 1
        self.total += value
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value

    def percentile(self, q: float) -> float | None:
        """The ``q`` quantile (0 < q <= 1), exact to the bucket; ``None`` when empty."""
        if not self.count:
            return None
        rank = max(1, math.ceil(q * self.count))
        if rank == self.count:
            return self.max
        if rank == 1:
            return self.min
        seen = 0
        index = 0
        for index, n in enumerate(self._counts):  # noqa: B007 - index is used below
            seen += n
            if seen >= rank:
                break
        if index == 0:
            middle = self._low / 2
        elif index == self._last:
            middle = self.max
        else:
            middle = self._low * self._growth ** (index - 0.5)
        return min(max(middle, self.min), self.max)

    def summary(self) -> Percentiles:
        """Count, mean, min, p50, p90, p99 and max."""
        if not self.count:
            return Percentiles()
        at = self.percentile
        return Percentiles(
            self.count, self.total / self.count, self.min, at(0.5), at(0.9), at(0.99), self.max
        )
