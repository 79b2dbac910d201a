"""Counts every AWS call the sandbox serves, by account, region, service, operation and outcome.

Tests read these counts to prove claims such as "a dry run makes zero write calls", and,
since AWS's quotas are per account and region, "a run over several accounts side by side
was throttled in none of them".
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from optimizer_async.aws.operations import is_write

# (account, region, service, operation, outcome)
_Key = tuple[str, str, str, str, str]


class CallStats:
    """Thread-safe counters; the sandbox server calls `record` from its worker threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[_Key] = Counter()

    def record(
        self, service: str, operation: str, outcome: str, *, account: str, region: str
    ) -> None:
        with self._lock:
            self._counts[(account, region, service, operation, outcome)] += 1

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()

    def snapshot(self, account: str | None = None) -> dict[str, Any]:
        """JSON-ready counts: totals, writes, by outcome, one row per distinct call, and the
        same per account (with each region's total and throttled calls); given an account,
        only that account's totals, writes, outcomes and rows."""
        with self._lock:
            counts = dict(self._counts)
        if account is not None:
            return _summary({key: n for key, n in counts.items() if key[0] == account})
        summary = _summary(counts)
        by_account: dict[str, dict[str, Any]] = {}
        for name in sorted({key[0] for key in counts}):
            own = {key: n for key, n in counts.items() if key[0] == name}
            row = _summary(own)
            del row["calls"]
            row["by_region"] = _by_region(own)
            by_account[name] = row
        summary["by_account"] = by_account
        return summary


def _summary(counts: dict[_Key, int]) -> dict[str, Any]:
    """Totals, writes, outcomes and one row per (service, operation, outcome)."""
    merged: Counter[tuple[str, str, str]] = Counter()
    for (_, _, service, operation, outcome), count in counts.items():
        merged[(service, operation, outcome)] += count
    calls = [
        {
            "service": service,
            "operation": operation,
            "outcome": outcome,
            "write": is_write(operation),
            "count": count,
        }
        for (service, operation, outcome), count in sorted(merged.items())
    ]
    by_outcome: Counter[str] = Counter()
    for (_, _, outcome), count in merged.items():
        by_outcome[outcome] += count
    return {
        "total": sum(merged.values()),
        "writes": sum(row["count"] for row in calls if row["write"]),
        "by_outcome": dict(sorted(by_outcome.items())),
        "calls": calls,
    }


def _by_region(counts: dict[_Key, int]) -> dict[str, dict[str, int]]:
    """Calls and quota throttles per region (an injected `fault:throttle` is a fault)."""
    regions: dict[str, dict[str, int]] = {}
    for (_, region, _, _, outcome), count in sorted(counts.items()):
        row = regions.setdefault(region, {"total": 0, "throttled": 0})
        row["total"] += count
        if outcome == "throttled":
            row["throttled"] += count
    return regions
