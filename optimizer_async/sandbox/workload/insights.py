"""Logs Insights over modelled log groups: the query grammar the optimizer sends, and queries
that run for a while on the sandbox clock.

Grammar (keywords and function names case-insensitive, whitespace and newlines free):

    [filter @type = "REPORT" |] stats AGG [as NAME] (, AGG [as NAME])* [by @log]
    AGG := count(*) | count(FIELD) | max(FIELD) | min(FIELD) | avg(FIELD) | sum(FIELD)
         | pct(FIELD, N)

over REPORT lines (`reports.py`) and, without the filter, the invocation's other log events
(which carry none of the REPORT fields). `@log` renders as `{account}:{log group}`, as AWS
does. Values come back as strings, like AWS's: counts whole, memory in bytes.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from optimizer_async.sandbox.workload.model import EVENTS_PER_INVOCATION, FunctionModel
from optimizer_async.sandbox.workload.reports import ReportLine, sample

MAX_LOG_GROUPS: Final = 50  # StartQuery's limit
MAX_RUNNING_QUERIES: Final = 30  # per account: the next StartQuery gets LimitExceededException
LIMIT_MESSAGE: Final = f"Account maximum query concurrency limit of [{MAX_RUNNING_QUERIES}] reached"
_FUNCTIONS: Final = ("count", "max", "min", "avg", "sum", "pct")
_FIELD: Final = r"@?[A-Za-z_][A-Za-z0-9_.]*"
_FILTER: Final = re.compile(r"""^filter\s+@type\s*=\s*(?:"([^"]*)"|'([^']*)')\s*$""", re.I)
_AGGREGATE: Final = re.compile(
    rf"^(?P<function>[a-z]+)\s*\(\s*(?P<field>\*|{_FIELD})\s*(?:,\s*(?P<percent>\d+(?:\.\d+)?)\s*)?\)"
    rf"(?:\s+as\s+(?P<name>{_FIELD}))?$",
    re.I,
)
_BY: Final = re.compile(r"\s+by\s+(@log)\s*$", re.I)


class QueryError(ValueError):
    """A query outside the grammar (the sandbox then lets moto try it)."""


@dataclass(frozen=True)
class Aggregate:
    function: str  # count, max, min, avg, sum, pct
    field: str  # "*" for count(*)
    percent: float | None
    name: str  # the result field: its `as` name, else the expression


@dataclass(frozen=True)
class Query:
    type_filter: str | None  # the @type a filter keeps, if any
    aggregates: tuple[Aggregate, ...]
    by_log: bool


def parse(text: str) -> Query:
    stages = [stage.strip() for stage in text.strip().split("|")]
    type_filter = None
    if len(stages) == 2:
        match = _FILTER.match(stages[0])
        if match is None:
            raise QueryError(f"unsupported stage {stages[0]!r}")
        type_filter = match.group(1) if match.group(1) is not None else match.group(2)
        stages = stages[1:]
    if len(stages) != 1 or not stages[0].lower().startswith("stats"):
        raise QueryError("expected [filter @type = ... |] stats ...")
    body = " ".join(stages[0][len("stats") :].split())
    by = _BY.search(" " + body)
    if by:
        body = (" " + body)[: by.start()].strip()
    aggregates = tuple(_aggregate(part.strip()) for part in _split_commas(body))
    if not aggregates:
        raise QueryError("stats needs at least one aggregate")
    return Query(type_filter, aggregates, by_log=by is not None)


def _split_commas(text: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current)
    return parts


def _aggregate(text: str) -> Aggregate:
    match = _AGGREGATE.match(text)
    if match is None:
        raise QueryError(f"unsupported aggregate {text!r}")
    function, name = match.group("function").lower(), match.group("field")
    percent = match.group("percent")
    if function not in _FUNCTIONS or (name == "*" and function != "count"):
        raise QueryError(f"unsupported aggregate {text!r}")
    if (function == "pct") != (percent is not None):
        raise QueryError(f"pct takes a field and a percentile: {text!r}")
    expression = f"{function}({name}{'' if percent is None else ', ' + percent})"
    return Aggregate(
        function,
        name,
        None if percent is None else float(percent),
        match.group("name") or expression,
    )


@dataclass(frozen=True)
class Record:
    """A log event's fields and how many events it stands for."""

    fields: dict[str, str | float]
    weight: float


@dataclass(frozen=True)
class Scan:
    """What a query read from one log group."""

    records: list[Record]
    events: float
    bytes: float


def scan(function: FunctionModel, account_id: str, start: datetime, end: datetime) -> Scan:
    """The group's window as records: REPORT lines through their text, then other events."""
    log = f"{account_id}:{function.log_group}"
    records: list[Record] = []
    invocations = 0.0
    for piece in function.pieces(start, end):
        invocations += piece.invocations
        for text, weight in sample(function, piece):
            fields: dict[str, str | float] = {**ReportLine.parse(text).fields()}
            fields.update({"@log": log, "@message": text})
            records.append(Record(fields, weight))
    if invocations > 0:
        other = invocations * (EVENTS_PER_INVOCATION - 1)
        records.append(Record({"@log": log}, other))
    return Scan(
        records,
        events=invocations * EVENTS_PER_INVOCATION,
        bytes=invocations * function.profile.log_bytes_per_invocation,
    )


def _percentile(pairs: list[tuple[float, float]], percent: float) -> float:
    """The smallest value whose cumulative weight reaches `percent` of the whole."""
    pairs.sort()
    total = sum(weight for _, weight in pairs)
    target = total * percent / 100.0 * (1.0 - 1e-9)
    running = 0.0
    for value, weight in pairs:
        running += weight
        if running >= target:
            return value
    return pairs[-1][0]


def _evaluate(aggregate: Aggregate, records: Sequence[Record]) -> float | None:
    if aggregate.function == "count":
        if aggregate.field == "*":
            return sum(record.weight for record in records)
        return sum(record.weight for record in records if aggregate.field in record.fields)
    pairs = [
        (float(value), record.weight)
        for record in records
        if isinstance(value := record.fields.get(aggregate.field), float) and record.weight > 0
    ]
    if not pairs:
        return None
    if aggregate.function == "max":
        return max(value for value, _ in pairs)
    if aggregate.function == "min":
        return min(value for value, _ in pairs)
    total = sum(value * weight for value, weight in pairs)
    if aggregate.function == "sum":
        return total
    if aggregate.function == "avg":
        return total / sum(weight for _, weight in pairs)
    assert aggregate.percent is not None  # the parser pairs pct with its percentile
    return _percentile(pairs, aggregate.percent)


def render(value: float, whole: bool = False) -> str:
    """A value as Logs Insights returns it: whole numbers without a fraction."""
    if whole or float(value).is_integer():
        return str(round(value))
    return f"{value:.6f}".rstrip("0").rstrip(".")


Row = list[dict[str, str]]


def run(query: Query, scans: Iterable[tuple[str, Scan]]) -> tuple[list[Row], dict[str, float]]:
    """Result rows and statistics, over (log, scan) pairs."""
    groups: dict[str, list[Record]] = {}
    events = scanned_bytes = matched = 0.0
    for log, found in scans:
        events += found.events
        scanned_bytes += found.bytes
        kept = [
            record
            for record in found.records
            if query.type_filter is None or record.fields.get("@type") == query.type_filter
        ]
        matched += sum(record.weight for record in kept)
        if kept:
            groups.setdefault(log if query.by_log else "", []).extend(kept)
    rows: list[Row] = []
    for log, records in sorted(groups.items()):
        row: Row = [{"field": "@log", "value": log}] if query.by_log else []
        for aggregate in query.aggregates:
            value = _evaluate(aggregate, records)
            if value is not None:
                whole = aggregate.function == "count"
                row.append({"field": aggregate.name, "value": render(value, whole)})
        rows.append(row)
    statistics = {  # rounded past float noise: whole numbers stay whole
        "recordsMatched": round(matched, 6),
        "recordsScanned": round(events, 6),
        "bytesScanned": round(scanned_bytes, 6),
    }
    return rows, statistics


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
