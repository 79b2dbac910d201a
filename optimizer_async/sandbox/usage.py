"""Synthetic but plausible usage per function, so the cost model has history to read.

Deterministic: the same suffix and function always get the same numbers, and different
functions differ (a factor from a hash of the name), like a real fleet.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class UsageProfile:
    invocations_per_day: int
    mean_duration_ms: float
    error_rate: float  # failed invocations / invocations
    log_bytes_per_invocation: int
    log_history_days: int  # how much history a never-expiring log group holds today

    @property
    def stored_log_bytes(self) -> int:
        """What CloudWatch Logs reports as storedBytes for a group kept forever."""
        return self.invocations_per_day * self.log_bytes_per_invocation * self.log_history_days


DEFAULT_USAGE = UsageProfile(
    invocations_per_day=250_000,
    mean_duration_ms=180.0,
    error_rate=0.004,
    log_bytes_per_invocation=900,
    log_history_days=400,
)


def usage_for(function_name: str, base: UsageProfile = DEFAULT_USAGE) -> UsageProfile:
    """`base` scaled by a factor between 0.25 and 4, fixed by the function's name."""
    digest = hashlib.sha256(function_name.encode()).digest()
    factor = 4.0 ** ((digest[0] / 255.0) * 2.0 - 1.0)
    duration_factor = 0.5 + digest[1] / 255.0
    return replace(
        base,
        invocations_per_day=max(1, round(base.invocations_per_day * factor)),
        mean_duration_ms=round(base.mean_duration_ms * duration_factor, 1),
    )


_WEEKEND_LEVEL = 0.6
_WEEK_MEAN = (5 * 1.0 + 2 * _WEEKEND_LEVEL) / 7


def _weekly(day: datetime) -> float:
    """Traffic shape over a week: weekends quieter than weekdays; averages 1."""
    return (_WEEKEND_LEVEL if day.weekday() >= 5 else 1.0) / _WEEK_MEAN


def daily_metric_data(
    function_name: str, usage: UsageProfile, end: datetime, days: int
) -> list[dict[str, Any]]:
    """PutMetricData datums for AWS/Lambda Invocations, Errors and Duration, one per day.

    Daily rather than per-minute points: the cost model reads monthly sums, and moto parses
    a large PutMetricData slowly (about 2 ms a datum).
    """
    dimensions = [{"Name": "FunctionName", "Value": function_name}]
    end = end.replace(hour=0, minute=0, second=0, microsecond=0)
    data: list[dict[str, Any]] = []
    for offset in range(days, 0, -1):
        stamp = end - timedelta(days=offset)
        invocations = max(1, round(usage.invocations_per_day * _weekly(stamp)))
        errors = round(invocations * usage.error_rate)
        mean = usage.mean_duration_ms
        common = {"Dimensions": dimensions, "Timestamp": stamp}
        data += [
            {**common, "MetricName": "Invocations", "Value": invocations, "Unit": "Count"},
            {**common, "MetricName": "Errors", "Value": errors, "Unit": "Count"},
            {
                **common,
                "MetricName": "Duration",
                "Unit": "Milliseconds",
                "StatisticValues": {
                    "SampleCount": invocations,
                    "Sum": round(invocations * mean, 3),
                    "Minimum": round(mean * 0.3, 3),
                    "Maximum": round(mean * 4.0, 3),
                },
            },
        ]
    return data
