"""Counts every AWS call the sandbox serves, by service, operation and outcome.

Tests read these counts to prove claims such as "a dry run makes zero write calls".
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from optimizer_async.aws.operations import is_write


class CallStats:
    """Thread-safe counters; the sandbox server calls `record` from its worker threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str, str]] = Counter()

    def record(self, service: str, operation: str, outcome: str) -> None:
        with self._lock:
            self._counts[(service, operation, outcome)] += 1

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready counts: totals, writes, by outcome, and one row per distinct call."""
        with self._lock:
            counts = dict(self._counts)
        calls = [
            {
                "service": service,
                "operation": operation,
                "outcome": outcome,
                "write": is_write(operation),
                "count": count,
            }
            for (service, operation, outcome), count in sorted(counts.items())
        ]
        by_outcome: Counter[str] = Counter()
        for (_, _, outcome), count in counts.items():
            by_outcome[outcome] += count
        return {
            "total": sum(counts.values()),
            "writes": sum(row["count"] for row in calls if row["write"]),
            "by_outcome": dict(sorted(by_outcome.items())),
            "calls": calls,
        }
