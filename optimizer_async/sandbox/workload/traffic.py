"""When a function is called: whole invocations per hour of the week, and its concurrency.

Traffic repeats weekly (weekdays busier than weekends, a daily swell peaking mid-afternoon
UTC, bursts in a bursty profile's hours) and is spread evenly within each hour. Each hour
holds a whole number of invocations and a week holds exactly 7 x invocations_per_day
(rounded), so any window aligned to the hour counts whole invocations, and any 7- or 14-day
window counts exactly 7 or 14 days' worth, wherever it starts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from optimizer_async.sandbox.once import built_once
from optimizer_async.sandbox.workload.profiles import WorkloadProfile

HOURS_PER_WEEK: Final = 168
EPOCH: Final = datetime(2001, 1, 1, tzinfo=UTC)  # a Monday, 00:00 UTC
_US_PER_HOUR: Final = 3_600_000_000
_US_PER_WEEK: Final = HOURS_PER_WEEK * _US_PER_HOUR
_WEEKEND_LEVEL: Final = 0.6  # a weekend day's traffic against a weekday's
_WEEK_MEAN: Final = (5 * 1.0 + 2 * _WEEKEND_LEVEL) / 7
_DAILY_SWING: Final = 0.5  # traffic swings +-50 % around the day's mean
_BUSIEST_HOUR: Final = 14  # UTC
_BURST_RATE: Final = 3.0  # a burst hour carries this many times its usual traffic
_BURST_BASELINE: Final = 1 / 12  # concurrency outside bursts, against the burst peak


def day_level(weekday: int) -> float:
    """A day's traffic against the week's mean day (weekday 0 is Monday)."""
    return (_WEEKEND_LEVEL if weekday >= 5 else 1.0) / _WEEK_MEAN


@dataclass(frozen=True)
class Position:
    """Where a moment falls: whole weeks since EPOCH, hour of that week, share of the hour."""

    week: int
    hour: int
    fraction: float


def position(moment: datetime) -> Position:
    micros = (moment - EPOCH) // timedelta(microseconds=1)
    week, rest = divmod(micros, _US_PER_WEEK)
    hour, within = divmod(rest, _US_PER_HOUR)
    return Position(week, hour, within / _US_PER_HOUR)


class Weekly:
    """A quantity per hour of the week, even within each hour, repeating every week."""

    def __init__(self, per_hour: tuple[float, ...]) -> None:
        if len(per_hour) != HOURS_PER_WEEK:
            raise ValueError("one value per hour of the week")
        self.per_hour = per_hour
        prefix = [0.0]
        for value in per_hour:
            prefix.append(prefix[-1] + value)
        self._prefix = tuple(prefix)
        self.total = prefix[-1]

    def _within_week(self, at: Position) -> float:
        return self._prefix[at.hour] + at.fraction * self.per_hour[at.hour]

    def integral(self, start: datetime, end: datetime) -> float:
        """The amount in [start, end): exact for whole numbers over hour-aligned windows."""
        if end <= start:
            return 0.0
        a, b = position(start), position(end)
        return (b.week - a.week) * self.total + self._within_week(b) - self._within_week(a)

    def peak(self, start: datetime, end: datetime) -> float:
        """The highest hourly value among the hours [start, end) touches."""
        if end <= start:
            return 0.0
        if end - start >= timedelta(hours=HOURS_PER_WEEK):
            return max(self.per_hour)
        a, b = position(start), position(end)
        first = a.week * HOURS_PER_WEEK + a.hour
        last = b.week * HOURS_PER_WEEK + b.hour - (1 if b.fraction == 0.0 else 0)
        return max(self.per_hour[index % HOURS_PER_WEEK] for index in range(first, last + 1))


@dataclass(frozen=True)
class Traffic:
    """A profile's invocations per hour (whole numbers) and concurrency per hour at full CPU."""

    invocations: Weekly
    concurrency: Weekly


def _shape(profile: WorkloadProfile) -> list[float]:
    """Relative traffic per hour of the week; each day's hours average that day's level."""
    bursts = set(profile.burst_hours)
    daily = [
        (1.0 + _DAILY_SWING * math.cos(2 * math.pi * (hour - _BUSIEST_HOUR) / 24))
        * (_BURST_RATE if hour in bursts else 1.0)
        for hour in range(24)
    ]
    mean = sum(daily) / 24
    return [day_level(h // 24) * daily[h % 24] / mean for h in range(HOURS_PER_WEEK)]


def _whole(shares: list[float], total: int) -> tuple[float, ...]:
    """`total` split over the hours in proportion to `shares`, as whole numbers (largest
    remainders get the leftover units, earlier hours first on ties)."""
    weight = sum(shares)
    if total <= 0 or weight <= 0:
        return tuple(0.0 for _ in shares)
    exact = [share * total / weight for share in shares]
    whole = [math.floor(value) for value in exact]
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - whole[i]), i))
    for index in order[: total - sum(whole)]:
        whole[index] += 1
    return tuple(float(value) for value in whole)


@built_once
def traffic(profile: WorkloadProfile) -> Traffic:
    invocations = _whole(_shape(profile), round(7 * profile.invocations_per_day))
    peak = profile.peak_concurrency
    bursts = set(profile.burst_hours)
    busiest = max((n for h, n in enumerate(invocations) if h % 24 not in bursts), default=0.0)
    concurrency: list[float] = []
    for h, count in enumerate(invocations):
        if count <= 0 or busiest <= 0:
            concurrency.append(peak if count > 0 else 0.0)
        elif h % 24 in bursts:
            concurrency.append(peak)
        else:
            share = _BURST_BASELINE if bursts else 1.0
            concurrency.append(peak * share * (count / busiest))
    return Traffic(Weekly(invocations), Weekly(tuple(concurrency)))
