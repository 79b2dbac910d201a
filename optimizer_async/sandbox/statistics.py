"""CloudWatch statistics over one period of a metric, whatever wrote its data.

A period's data may come from PutMetricData (single values, values with counts, statistic
sets), from the workload model (what Lambda publishes for a modelled function) and from
log ingestion (AWS/Logs). CloudWatch's rules, from its "CloudWatch statistics definitions"
and PutMetricData pages: SampleCount, Sum, Minimum, Maximum and Average over everything;
a percentile needs raw values, so data published as statistic sets has none unless a set
is one value repeated (its Minimum equals its Maximum and its Sum is that value times its
SampleCount): then the percentile has no datapoint, as CloudWatch answers (not an error).
Other extended statistics (trimmed means, ranks) have no datapoint here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

PERCENTILE: Final = re.compile(r"^p(\d{1,2}(?:\.\d+)?|100)$")
_BISECTIONS: Final = 100


@dataclass(frozen=True)
class Distribution:
    """Samples known by their distribution (the model's durations): count and CDF."""

    count: float
    cdf: Callable[[float], float]
    low: float
    high: float


@dataclass
class Samples:
    """What one period holds, from every source."""

    count: float = 0.0
    total: float = 0.0
    low: float | None = None
    high: float | None = None
    raw: list[tuple[float, float]] = field(default_factory=list)  # (value, how many)
    distributions: list[Distribution] = field(default_factory=list)
    blocks_percentiles: bool = False  # a statistic set percentiles cannot use

    @property
    def empty(self) -> bool:
        return self.count <= 0 and not self.raw and not self.distributions

    def _bounds(self, low: float, high: float) -> None:
        self.low = low if self.low is None else min(self.low, low)
        self.high = high if self.high is None else max(self.high, high)

    def add_value(self, value: float, count: float = 1.0) -> None:
        self.count += count
        self.total += value * count
        self.raw.append((value, count))
        self._bounds(value, value)

    def add_set(self, count: float, total: float, low: float, high: float) -> None:
        if low == high and abs(total - low * count) <= 1e-9 * max(1.0, abs(total)):
            self.add_value(low, count)
            return
        self.count += count
        self.total += total
        self._bounds(low, high)
        self.blocks_percentiles = True

    def add_distribution(self, distribution: Distribution, total: float) -> None:
        self.count += distribution.count
        self.total += total
        self.distributions.append(distribution)
        self._bounds(distribution.low, distribution.high)

    def merge(self, other: Samples) -> None:
        self.count += other.count
        self.total += other.total
        if other.low is not None and other.high is not None:
            self._bounds(other.low, other.high)
        self.raw += other.raw
        self.distributions += other.distributions
        self.blocks_percentiles = self.blocks_percentiles or other.blocks_percentiles

    def statistic(self, stat: str) -> float | None:
        if self.empty:
            return None
        if stat == "SampleCount":
            return self.count
        if stat == "Sum":
            return self.total
        if stat == "Average":
            return self.total / self.count if self.count else None
        if stat == "Minimum":
            return self.low
        if stat == "Maximum":
            return self.high
        match = PERCENTILE.match(stat)
        if match is None or self.blocks_percentiles:
            return None
        return self._quantile(float(match.group(1)) / 100.0)

    def _quantile(self, q: float) -> float | None:
        raw = sorted(self.raw)
        if not self.distributions:
            if not raw:
                return None
            target = sum(count for _, count in raw) * q * (1.0 - 1e-9)
            running = 0.0
            for value, count in raw:
                running += count
                if running >= target:
                    return value
            return raw[-1][0]
        whole = sum(d.count for d in self.distributions) + sum(c for _, c in raw)

        def cdf(x: float) -> float:
            known = sum(d.count * d.cdf(x) for d in self.distributions)
            return (known + sum(c for v, c in raw if v <= x)) / whole

        low = min([d.low for d in self.distributions] + [v for v, _ in raw])
        high = max([d.high for d in self.distributions] + [v for v, _ in raw])
        for _ in range(_BISECTIONS):
            middle = (low + high) / 2
            if cdf(middle) >= q:
                high = middle
            else:
                low = middle
        return high
