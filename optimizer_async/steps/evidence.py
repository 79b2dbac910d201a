"""How each function really runs, over a lookback window: two parts, no step; what decides.

Two readers (`METRICS`, `REPORT_LINES`), both batched across environments; discovery's bulk
read (`read_many`) makes exact batches, and the report lines wait for the metrics part's
calls (the log groups' sizes) rather than making their own:
- CloudWatch metrics with GetMetricData (500 queries a call, eight per function, one period
  over the whole window): Invocations, Errors, Throttles (Sum), Duration (p99, Maximum,
  Sum), ConcurrentExecutions (Maximum; Lambda emits it per function) and the log group's
  IncomingBytes (what a Logs Insights scan of it would read).
- Logs Insights over the functions' REPORT lines, the only place Lambda reports the memory an
  invocation used: one query per 50 log groups, at most `_QUERIES_AT_ONCE` running (AWS
  allows 30 per account, shared with everyone else), polled with our own async waiter until
  it ends. The run's scan is bounded (`max_scan_gb`): smaller groups first; what does not fit
  falls back to metrics-only evidence, labelled. $0.005 per GB scanned.

Evidence is not rollback material: it stays out of the before-image.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, ClassVar, Final

import anyio

from optimizer_async import pricing
from optimizer_async.aws import errors
from optimizer_async.aws.batching import BATCHES_AT_ONCE, run_each
from optimizer_async.aws.waiters import Backoff, QueriesFinished, wait_query_finished
from optimizer_async.inventory import EnvironmentInventory, FunctionState
from optimizer_async.steps.base import (
    ApiCall,
    FunctionItems,
    FunctionPart,
    Json,
    Permission,
    ReadContext,
    to_json,
)

if TYPE_CHECKING:
    from types_aiobotocore_cloudwatch.type_defs import MetricDataQueryTypeDef

    from optimizer_async.aws.gateway import Aws

_FUNCTIONS_PER_METRICS_CALL: Final = 62  # GetMetricData: 500 queries, eight per function
_GROUPS_PER_QUERY: Final = 50  # StartQuery's limit
_QUERIES_AT_ONCE: Final = 10  # of the account's 30: leave room for everyone else's
_START_RETRY: Final = Backoff(initial=2.0, factor=2.0, maximum=30.0, deadline=600.0)
BYTES_PER_MB: Final = 1_000_000  # Logs Insights reports memory in bytes, 1 MB = 10^6
REPORT_QUERY: Final = (
    'filter @type = "REPORT"\n'
    "| stats count(*) as reports, max(@maxMemoryUsed) as maxMemoryUsed, "
    "pct(@maxMemoryUsed, 99) as p99MemoryUsed, max(@billedDuration) as maxBilledDuration, "
    "avg(@billedDuration) as avgBilledDuration, max(@initDuration) as maxInitDuration by @log"
)
_LOG_GROUP_ARN: Final = "arn:{partition}:logs:{region}:{account}:log-group:{log_group}"


@dataclass(frozen=True, slots=True)
class LogsScan:
    """One Logs Insights query, shared by the functions whose groups it read."""

    query_id: str
    log_groups: int
    bytes_scanned: int

    @property
    def cost_usd(self) -> float:
        return self.bytes_scanned / 1e9 * pricing.LOGS_INSIGHTS_SCANNED_GB_USD


@dataclass(frozen=True, slots=True)
class UsageMetrics:
    """What CloudWatch's Lambda metrics say about the window."""

    lookback_days: int
    invocations: float
    errors: float
    throttles: float
    duration_p99_ms: float | None
    duration_max_ms: float | None
    duration_sum_ms: float
    concurrency_max: float | None
    ingested_bytes: float  # the log group's IncomingBytes: what a scan of it would read
    # The memory the function had when the evidence was read: what its durations were
    # measured at (projections start from it, also after a change, when verifying).
    memory_mb: int = 0

    @property
    def idle(self) -> bool:
        return self.invocations <= 0

    @property
    def error_rate_percent(self) -> float:
        return 100.0 * self.errors / self.invocations if self.invocations else 0.0


@dataclass(frozen=True, slots=True)
class ReportLines:
    """What the REPORT lines say: the memory invocations used. All None when not read."""

    source: str  # "logs", or why not
    reports: float | None = None
    memory_max_mb: float | None = None
    memory_p99_mb: float | None = None
    billed_duration_max_ms: float | None = None
    init_duration_max_ms: float | None = None
    scanned_bytes: float = 0.0  # this function's log group's share of the scan
    scan: LogsScan | None = field(default=None, compare=False)  # the whole query


_IDLE: Final = ReportLines(source="no invocations in the window: nothing to read")
_NOT_READ: Final = ReportLines("metrics only: the logs were not read")

_METRICS: Final = (  # (id prefix, namespace, metric, stat)
    ("i", "AWS/Lambda", "Invocations", "Sum"),
    ("e", "AWS/Lambda", "Errors", "Sum"),
    ("t", "AWS/Lambda", "Throttles", "Sum"),
    ("p", "AWS/Lambda", "Duration", "p99"),
    ("m", "AWS/Lambda", "Duration", "Maximum"),
    ("d", "AWS/Lambda", "Duration", "Sum"),
    ("c", "AWS/Lambda", "ConcurrentExecutions", "Maximum"),
    ("b", "AWS/Logs", "IncomingBytes", "Sum"),
)


@dataclass(frozen=True)
class _Window:
    start: datetime
    end: datetime

    @classmethod
    def ending_at(cls, now: datetime, days: int) -> _Window:
        """The `days` ending at the last whole hour before `now`."""
        end = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        return cls(end - timedelta(days=days), end)

    @property
    def seconds(self) -> int:
        return int((self.end - self.start).total_seconds())


@dataclass(frozen=True, slots=True)
class _Key:
    """One function's place in the run's batches: its name and its log group's size."""

    function: str
    log_group: str
    ingested_bytes: float = 0.0


def _queries(
    functions: Sequence[_Key], window: _Window, percentiles: bool = True
) -> list[MetricDataQueryTypeDef]:
    queries: list[MetricDataQueryTypeDef] = []
    for index, key in enumerate(functions):
        for prefix, namespace, metric, stat in _METRICS:
            if stat.startswith("p") and not percentiles:
                continue
            name, value = (
                ("LogGroupName", key.log_group)
                if namespace == "AWS/Logs"
                else ("FunctionName", key.function)
            )
            queries.append(
                {
                    "Id": f"{prefix}{index}",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": namespace,
                            "MetricName": metric,
                            "Dimensions": [{"Name": name, "Value": value}],
                        },
                        "Period": window.seconds,
                        "Stat": stat,
                    },
                    "ReturnData": True,
                }
            )
    return queries


async def _fetch_metrics(
    aws: Aws, functions: Sequence[_Key], window: _Window, days: int
) -> Mapping[_Key, UsageMetrics]:
    try:
        found = await _metric_values(aws, _queries(functions, window), window)
    except Exception:
        # AWS computes Duration percentiles from Lambda's own samples; an endpoint that only
        # holds aggregated points (StatisticValues: moto, some emulators) fails on them.
        # Without the p99 the maximum decides the timeout, so ask once more without it.
        found = await _metric_values(aws, _queries(functions, window, False), window)

    def total(key: str) -> float:
        return float(sum(found.get(key, [])))

    def highest(key: str) -> float | None:
        values = found.get(key)
        return float(max(values)) if values else None

    return {
        function: UsageMetrics(
            lookback_days=days,
            invocations=total(f"i{i}"),
            errors=total(f"e{i}"),
            throttles=total(f"t{i}"),
            duration_p99_ms=highest(f"p{i}"),  # one period: the window's own p99
            duration_max_ms=highest(f"m{i}"),
            duration_sum_ms=total(f"d{i}"),
            concurrency_max=highest(f"c{i}"),
            ingested_bytes=total(f"b{i}"),
        )
        for i, function in enumerate(functions)
    }


async def _metric_values(
    aws: Aws, queries: list[MetricDataQueryTypeDef], window: _Window
) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {}
    async for page in aws.pages(
        "NextToken",
        aws.cloudwatch.get_metric_data,
        MetricDataQueries=queries,
        StartTime=window.start,
        EndTime=window.end,
    ):
        for result in page.get("MetricDataResults", []):
            found.setdefault(str(result.get("Id")), []).extend(result.get("Values", []))
    return found


class _ScanBudget:
    """What is left of the run's Logs Insights budget, in bytes."""

    def __init__(self, gigabytes: float) -> None:
        self.left = gigabytes * 1e9

    def admit(self, keys: Sequence[_Key]) -> tuple[list[_Key], list[_Key]]:
        """Smallest first, while they fit: (admitted, refused)."""
        admitted, refused = [], []
        for key in sorted(keys, key=lambda k: (k.ingested_bytes, k.log_group)):
            if key.ingested_bytes <= self.left:
                self.left -= key.ingested_bytes
                admitted.append(key)
            else:
                refused.append(key)
        return admitted, refused


def _number(value: str | None) -> float | None:
    try:
        return None if value is None or value == "" else float(value)
    except ValueError:
        return None


def _query_slots(ctx: ReadContext) -> anyio.CapacityLimiter:
    """The run's Logs Insights queries at once."""
    return ctx.shared("logs-insights-queries", lambda: anyio.CapacityLimiter(_QUERIES_AT_ONCE))


async def _run_query(
    aws: Aws,
    slots: anyio.CapacityLimiter,
    groups: Sequence[str],
    window: _Window,
    finished: QueriesFinished | None = None,
) -> tuple[LogsScan, dict[str, ReportLines]]:
    async with slots:
        delays = _START_RETRY.delays()
        deadline = aws.clock.now() + aws.scaled(_START_RETRY.deadline)
        while True:
            try:
                started = await aws.logs.start_query(
                    logGroupNames=list(groups),
                    startTime=int(window.start.timestamp()),
                    endTime=int(window.end.timestamp()),
                    queryString=REPORT_QUERY,
                )
                break
            except Exception as error:  # the account's 30 queries are taken: wait a turn
                if errors.error_code(error) != "LimitExceededException":
                    raise
                if aws.clock.now() >= deadline:
                    raise
                await aws.sleep(next(delays))
        answer = await wait_query_finished(aws, started["queryId"], finished=finished)
    statistics = answer.get("statistics", {})
    scan = LogsScan(started["queryId"], len(groups), int(statistics.get("bytesScanned", 0.0) or 0))
    rows: dict[str, ReportLines] = {}
    for row in answer.get("results", []):
        cells = {str(cell.get("field")): cell.get("value") for cell in row}
        log = str(cells.get("@log", ""))
        group = log.split(":", 1)[1] if ":" in log else log  # "{account}:{group}"
        memory_max, memory_p99 = (
            _number(cells.get("maxMemoryUsed")),
            _number(cells.get("p99MemoryUsed")),
        )
        rows[group] = ReportLines(
            source="logs",
            reports=_number(cells.get("reports")) or None,
            memory_max_mb=None if memory_max is None else memory_max / BYTES_PER_MB,
            memory_p99_mb=None if memory_p99 is None else memory_p99 / BYTES_PER_MB,
            billed_duration_max_ms=_number(cells.get("maxBilledDuration")),
            init_duration_max_ms=_number(cells.get("maxInitDuration")),
            scan=scan,
        )
    return scan, rows


async def _fetch_logs(
    ctx: ReadContext, keys: Sequence[_Key], window: _Window, budget_gb: float
) -> Mapping[_Key, ReportLines]:
    """Per function: the scan of its log group and its REPORT figures, or why not scanned."""
    budget: _ScanBudget = ctx.shared("logs-insights-budget", lambda: _ScanBudget(budget_gb))
    admitted, refused = budget.admit(keys)
    found: dict[_Key, ReportLines] = {
        key: ReportLines(
            f"metrics only: a {key.ingested_bytes / 1e9:.1f} GB scan would pass the run's "
            f"{budget_gb:g} GB Logs Insights budget (--max-scan-gb)"
        )
        for key in refused
    }

    slots = _query_slots(ctx)
    finished: QueriesFinished = ctx.per_pass("logs-insights-finished", QueriesFinished)

    async def one(batch: list[_Key]) -> None:
        groups = sorted({key.log_group for key in batch})
        try:
            try:
                scan, rows = await _run_query(ctx.aws, slots, groups, window, finished)
            except Exception as error:  # one missing group refuses the whole query
                if not errors.is_not_found(error):
                    raise
                existing = await _existing(ctx.aws, groups)
                for key in batch:
                    if key.log_group not in existing:
                        found[key] = ReportLines("metrics only: its log group does not exist")
                batch = [key for key in batch if key.log_group in existing]
                if not batch:
                    return
                scan, rows = await _run_query(ctx.aws, slots, sorted(existing), window, finished)
        except Exception as error:  # evidence is read best-effort: say what was missed
            failed = ReportLines(f"metrics only: Logs Insights failed ({errors.describe(error)})")
            for key in batch:
                found[key] = failed
            return
        empty = ReportLines("metrics only: no REPORT lines in the window", scan=scan)
        for key in batch:
            lines = rows.get(key.log_group, empty)
            found[key] = replace(lines, scanned_bytes=key.ingested_bytes if lines.reports else 0.0)

    async with anyio.create_task_group() as group_of_queries:
        for start in range(0, len(admitted), _GROUPS_PER_QUERY):
            group_of_queries.start_soon(one, admitted[start : start + _GROUPS_PER_QUERY])
    return found


def _window(ctx: ReadContext) -> _Window:
    """The run's one window: every function's evidence covers the same hours."""
    days = ctx.targets.guardrails.lookback_days
    return ctx.shared("evidence-window", lambda: _Window.ending_at(ctx.aws.clock.utcnow(), days))


async def _metrics(ctx: ReadContext, function: FunctionState) -> UsageMetrics:
    days = ctx.targets.guardrails.lookback_days
    window = _window(ctx)
    loader = ctx.batched(
        "evidence-metrics",
        lambda keys: _fetch_metrics(ctx.aws, keys, window, days),
        _FUNCTIONS_PER_METRICS_CALL,
    )
    found = await loader.load(_Key(function.name, function.log_group))
    if found is None:  # the fetch answers every key it is given
        raise RuntimeError(f"no metrics came back for {function.name}")
    return replace(found, memory_mb=function.memory_mb)


class _MetricsBatch:
    """One GetMetricData of a pass, which both evidence parts may wait for."""

    def __init__(self, keys: Sequence[_Key]) -> None:
        self.keys = keys
        self.done = anyio.Event()
        self.found: Mapping[_Key, UsageMetrics] | Exception = {}

    async def fetch(self, ctx: ReadContext) -> None:
        days = ctx.targets.guardrails.lookback_days
        try:
            self.found = await _fetch_metrics(ctx.aws, self.keys, _window(ctx), days)
        except Exception as error:
            self.found = error
        finally:
            self.done.set()


async def _usage_many(
    ctx: ReadContext, functions: Sequence[FunctionState]
) -> dict[str, UsageMetrics | Exception]:
    """The metrics of many functions: one GetMetricData per 62, a few at a time. A pass's
    batches are shared by function name, so the report lines (which need the log groups'
    sizes) wait for the metrics part's calls instead of making their own."""
    batches: dict[str, _MetricsBatch] = ctx.per_pass("evidence-metrics", dict)
    new = list(
        {f.name: _Key(f.name, f.log_group) for f in functions if f.name not in batches}.values()
    )
    mine = [
        _MetricsBatch(new[start : start + _FUNCTIONS_PER_METRICS_CALL])
        for start in range(0, len(new), _FUNCTIONS_PER_METRICS_CALL)
    ]
    for batch in mine:
        batches.update(dict.fromkeys((key.function for key in batch.keys), batch))
    await run_each(mine, lambda batch: batch.fetch(ctx), BATCHES_AT_ONCE)
    found: dict[str, UsageMetrics | Exception] = {}
    for function in functions:
        batch = batches[function.name]
        await batch.done.wait()  # another part's call, if not ours
        if isinstance(batch.found, Exception):
            found[function.name] = batch.found
            continue
        metrics = batch.found.get(_Key(function.name, function.log_group))
        found[function.name] = (
            RuntimeError(f"no metrics came back for {function.name}")
            if metrics is None
            else replace(metrics, memory_mb=function.memory_mb)
        )
    return found


async def usage_between(
    aws: Aws, functions: Sequence[tuple[str, str]], start: datetime, end: datetime
) -> dict[str, UsageMetrics]:
    """The metrics of (function, log group) pairs over [start, end), whole minutes: what a
    bake compares with the evidence. One GetMetricData per 62 functions."""
    window = _Window(start, end)
    keys = [_Key(function, log_group) for function, log_group in functions]
    found: dict[str, UsageMetrics] = {}
    for index in range(0, len(keys), _FUNCTIONS_PER_METRICS_CALL):
        batch = keys[index : index + _FUNCTIONS_PER_METRICS_CALL]
        days = math.ceil(window.seconds / 86_400)
        found.update(
            {key.function: m for key, m in (await _fetch_metrics(aws, batch, window, days)).items()}
        )
    return found


async def report_lines_between(
    aws: Aws, log_groups: Sequence[str], start: datetime, end: datetime
) -> dict[str, ReportLines]:
    """What the REPORT lines of these log groups say over [start, end), by log group; one
    Logs Insights query per 50 groups, one at a time. A group without lines is left out."""
    slots = anyio.CapacityLimiter(1)
    window = _Window(start, end)
    found: dict[str, ReportLines] = {}
    for index in range(0, len(log_groups), _GROUPS_PER_QUERY):
        batch = sorted(log_groups[index : index + _GROUPS_PER_QUERY])
        try:
            found.update((await _run_query(aws, slots, batch, window))[1])
        except Exception as error:  # one missing group refuses the query: ask without it
            if not errors.is_not_found(error):
                raise
            existing = sorted(await _existing(aws, batch))
            if existing:
                found.update((await _run_query(aws, slots, existing, window))[1])
    return found


async def _existing(aws: Aws, groups: Sequence[str]) -> set[str]:
    """Which of these log groups exist."""
    found: set[str] = set()
    async for page in aws.pages(
        "nextToken", aws.logs.describe_log_groups, logGroupIdentifiers=list(groups)
    ):
        found.update(str(group.get("logGroupName")) for group in page.get("logGroups", []))
    return found


class MetricsPart(FunctionPart[UsageMetrics]):
    name: ClassVar[str] = "metrics"
    reads = (ApiCall("cloudwatch", "GetMetricData"),)
    permissions = (Permission("cloudwatch:GetMetricData", "*"),)  # no resource-level scoping
    in_before_image = False
    early_batch: ClassVar[int] = _FUNCTIONS_PER_METRICS_CALL

    async def read_early(self, ctx: ReadContext, items: FunctionItems) -> None:
        await _usage_many(ctx, [function for _, function in items])

    async def read(
        self, ctx: ReadContext, environment: EnvironmentInventory, function: FunctionState
    ) -> UsageMetrics:
        return await _metrics(ctx, function)

    async def read_many(
        self, ctx: ReadContext, items: FunctionItems
    ) -> Mapping[str, UsageMetrics | Exception]:
        return await _usage_many(ctx, [function for _, function in items])

    def report(self, value: UsageMetrics) -> Json:
        return to_json(value)

    def columns(self, value: UsageMetrics) -> dict[str, str]:
        return {
            "invocations": f"{value.invocations:,.0f}",
            "errors": f"{value.error_rate_percent:.2f} %",
            "throttles": f"{value.throttles:,.0f}",
            "p99": _seconds(value.duration_p99_ms),
            "max": _seconds(value.duration_max_ms),
            "peak concurrency": "-"
            if value.concurrency_max is None
            else f"{value.concurrency_max:g}",
        }


class ReportLinesPart(FunctionPart[ReportLines]):
    """The memory each invocation used, from the REPORT lines (Logs Insights). Reads the
    metrics too (through the same batch: no extra call) for the log group's size."""

    name: ClassVar[str] = "report_lines"
    reads = (
        ApiCall("cloudwatch", "GetMetricData"),
        ApiCall("logs", "StartQuery"),
        ApiCall("logs", "GetQueryResults"),
        ApiCall("logs", "DescribeLogGroups"),  # only when a group of a query is missing
    )
    permissions = (
        Permission("cloudwatch:GetMetricData", "*"),
        Permission("logs:StartQuery", _LOG_GROUP_ARN),
        Permission("logs:GetQueryResults", "*"),  # addressed by query id, not by resource
        Permission("logs:DescribeLogGroups", "arn:{partition}:logs:{region}:{account}:log-group:*"),
    )
    in_before_image = False
    early_batch: ClassVar[int] = _FUNCTIONS_PER_METRICS_CALL  # the metrics it needs first

    async def read_early(self, ctx: ReadContext, items: FunctionItems) -> None:
        await _usage_many(ctx, [function for _, function in items])

    async def read(
        self, ctx: ReadContext, environment: EnvironmentInventory, function: FunctionState
    ) -> ReportLines:
        metrics = await _metrics(ctx, function)
        if metrics.idle:
            return _IDLE
        window, budget = _window(ctx), ctx.targets.guardrails.max_scan_gb
        loader = ctx.batched(
            "evidence-logs",
            lambda keys: _fetch_logs(ctx, keys, window, budget),
            10_000,  # one budget decision for all; the fetch splits into 50-group queries
            quiet_s=0.25,  # queries take seconds: waiting a little fills them better
            max_wait_s=2.0,
        )
        found = await loader.load(_Key(function.name, function.log_group, metrics.ingested_bytes))
        return found or _NOT_READ

    async def read_many(
        self, ctx: ReadContext, items: FunctionItems
    ) -> Mapping[str, ReportLines | Exception]:
        """One budget decision over all the functions, smallest log groups first; then one
        query per 50 groups, at most `_QUERIES_AT_ONCE` running."""
        usage = await _usage_many(ctx, [function for _, function in items])
        found: dict[str, ReportLines | Exception] = {}
        keys: list[_Key] = []
        for _, function in items:
            metrics = usage[function.name]
            if isinstance(metrics, Exception):
                found[function.name] = metrics
            elif metrics.idle:
                found[function.name] = _IDLE
            else:
                keys.append(_Key(function.name, function.log_group, metrics.ingested_bytes))
        window, budget = _window(ctx), ctx.targets.guardrails.max_scan_gb
        try:
            lines = await _fetch_logs(ctx, keys, window, budget)
        except Exception as error:
            found.update(dict.fromkeys((key.function for key in keys), error))
        else:
            found.update({key.function: lines.get(key) or _NOT_READ for key in keys})
        return found

    def report(self, value: ReportLines) -> Json:
        facts = to_json(value)
        scan = value.scan
        facts["scan"] = None if scan is None else {**to_json(scan), "cost_usd": scan.cost_usd}
        return facts

    def columns(self, value: ReportLines) -> dict[str, str]:
        memory = value.memory_max_mb
        return {
            "max memory": "-" if memory is None else f"{math.ceil(memory):,} MB",
            "memory from": value.source,
            "scanned": f"{value.scanned_bytes / 1e9:.2f} GB" if value.scanned_bytes else "-",
        }


def _seconds(ms: float | None) -> str:
    return "-" if ms is None else f"{ms / 1000:,.2f} s"


METRICS: Final = MetricsPart()
REPORT_LINES: Final = ReportLinesPart()
