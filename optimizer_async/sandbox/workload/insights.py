"""Logs Insights queries that run for a while on the sandbox clock, per account and region
(the language and its evaluation are `sandbox/insights/`): AWS's limits of 50 log groups a
query and 30 queries running at once per account, and a query Running, then Complete or
Cancelled.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

MAX_LOG_GROUPS: Final = 50  # StartQuery's limit
MAX_RUNNING_QUERIES: Final = 30  # per account: the next StartQuery gets LimitExceededException
LIMIT_MESSAGE: Final = f"Account maximum query concurrency limit of [{MAX_RUNNING_QUERIES}] reached"
Row = list[dict[str, str]]


@dataclass
class InsightsQuery:
    """A query the sandbox runs: Running until `ready_at` (sandbox clock), then Complete."""

    query_id: str
    account: str
    region: str
    query_string: str
    log_groups: tuple[str, ...]
    create_time_ms: int
    ready_at: float
    rows: list[Row]
    statistics: dict[str, float]
    cancelled: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def status(self, now: float) -> str:
        if self.cancelled:
            return "Cancelled"
        return "Running" if now < self.ready_at else "Complete"

    def cancel(self, now: float) -> bool:
        """Cancel it if it is still running; True if it was."""
        with self._lock:
            if self.status(now) != "Running":
                return False
            self.cancelled = True
            return True

    def answer(self, now: float) -> dict[str, object]:
        """GetQueryResults: nothing until complete, then rows and statistics."""
        status = self.status(now)
        if status != "Complete":
            empty = {"recordsMatched": 0.0, "recordsScanned": 0.0, "bytesScanned": 0.0}
            return {"status": status, "results": [], "statistics": empty}
        return {"status": status, "results": self.rows, "statistics": self.statistics}

    def describe(self, now: float) -> dict[str, object]:
        return {
            "queryId": self.query_id,
            "queryString": self.query_string,
            "status": self.status(now),
            "createTime": self.create_time_ms,
            "logGroupName": self.log_groups[0] if self.log_groups else "",
        }


class InsightsQueries:
    """Every account's queries (per region), for the concurrency limit and later reads: an
    account sees only its own."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queries: dict[str, InsightsQuery] = {}

    def _running(self, account: str, region: str, now: float) -> int:
        return sum(
            1
            for query in self._queries.values()
            if (query.account, query.region) == (account, region) and query.status(now) == "Running"
        )

    def running(self, account: str, region: str, now: float) -> int:
        with self._lock:
            return self._running(account, region, now)

    def add(
        self,
        account: str,
        region: str,
        query_string: str,
        log_groups: Sequence[str],
        create_time_ms: int,
        ready_at: float,
        outcome: tuple[list[Row], dict[str, float]],
        now: float,
    ) -> InsightsQuery | None:
        """Register a query; None if the account's region already runs the maximum."""
        with self._lock:
            if self._running(account, region, now) >= MAX_RUNNING_QUERIES:
                return None
            query = InsightsQuery(
                query_id=str(uuid.uuid4()),
                account=account,
                region=region,
                query_string=query_string,
                log_groups=tuple(log_groups),
                create_time_ms=create_time_ms,
                ready_at=ready_at,
                rows=outcome[0],
                statistics=outcome[1],
            )
            self._queries[query.query_id] = query
            return query

    def get(self, account: str, query_id: str) -> InsightsQuery | None:
        """The account's query of that id (another account's is not found, as on AWS)."""
        with self._lock:
            query = self._queries.get(query_id)
        return query if query is not None and query.account == account else None

    def all(self, account: str, region: str) -> list[InsightsQuery]:
        with self._lock:
            queries = [
                query
                for query in self._queries.values()
                if (query.account, query.region) == (account, region)
            ]
        return sorted(queries, key=lambda query: query.create_time_ms, reverse=True)

    def clear(self) -> None:
        with self._lock:
            self._queries.clear()
