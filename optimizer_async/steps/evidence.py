"""How each function really runs, over a lookback window: two parts, no step; what decides.

Two readers (`METRICS`, `REPORT_LINES`), both batched across environments; discovery's bulk
read (`read_many`) makes exact batches, and the report lines wait for the metrics part's
calls (the log groups' sizes) rather than making their own:
- CloudWatch metrics with GetMetricData (500 queries a call, eight per function, one period
  over the whole window): Invocations, Errors, Throttles (Sum), Duration (p99, Maximum,
  Sum), ConcurrentExecutions (Maximum; Lambda emits it per function) and the log group's
  IncomingBytes (what a Logs Insights scan of it would read).
- Lambda's per-invocation reports, the only place it tells the memory an invocation used
  (REPORT lines or JSON `platform.report` records, per function even in a shared group:
  `lambda_reports.py`): Logs Insights, one query per 50 log groups, at most
  `_QUERIES_AT_ONCE` running (AWS allows 30 per account, shared with everyone else), polled
  with our own async waiter until it ends; where Logs Insights computes no statistics (an
  emulator) or a query fails, the events read one by one (`log_events.py`). The run's scan
  is bounded (`max_scan_gb`): smaller groups first; what does not fit falls back to
  metrics-only evidence, labelled. $0.005 per GB scanned.

Evidence is not rollback material: it stays out of the before-image.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, ClassVar, Final

import anyio
import structlog

from optimizer_async.aws import errors, pricing
from optimizer_async.aws.batching import BATCHES_AT_ONCE, run_each
from optimizer_async.aws.waiters import Backoff, QueriesFinished, wait_query_finished
from optimizer_async.steps import log_events
from optimizer_async.steps.base import (
    ApiCall,
    FunctionItems,
    FunctionPart,
    Json,
    Permission,
    ReadContext,
    to_json,
)
from optimizer_async.steps.inventory import EnvironmentInventory, FunctionState
from optimizer_async.steps.lambda_reports import (
    REPORT_QUERY,
    Figures,
    Placement,
    attribute,
    rows_computed,
)

if TYPE_CHECKING:
    from types_aiobotocore_cloudwatch.type_defs import MetricDataQueryTypeDef

    from optimizer_async.aws.gateway import Aws

log = structlog.get_logger("optimizer_async.evidence")
_PROBE_PAUSE_S: Final = 0.5  # between the two asks of a p99 the endpoint failed to give
_FUNCTIONS_PER_METRICS_CALL: Final = 62  # GetMetricData: 500 queries, eight per function
_GROUPS_PER_QUERY: Final = 50  # StartQuery's limit
_QUERIES_AT_ONCE: Final = 10  # of the account's 30: leave room for everyone else's
_START_RETRY: Final = Backoff(initial=2.0, factor=2.0, maximum=30.0, deadline=600.0)
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
    p99_unavailable: str | None = None  # why the p99 is missing though durations are not

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


class Percentiles:
    """Whether this run's endpoint computes Duration percentiles, learned once per run.

    AWS computes a p99 from Lambda's own samples; an emulator may not (LocalStack answers
    every percentile query with a 500, however often asked). So while it is unknown, the
    first batch asks with the p99, each time once, without the SDK's retries (the other
    batches wait for the answer); after `_PROBES` server errors the run asks without it,
    and the maximum duration stands in for the p99, said in each decision. At most
    `_PROBES` calls per run are spent on it, never one per function."""

    _PROBES: ClassVar[int] = 2

    def __init__(self) -> None:
        self.able: bool | None = None
        self.failures = 0
        self.unavailable: str | None = None  # why not, once given up
        self.lock = anyio.Lock()

    def failed(self, error: BaseException) -> None:
        self.failures += 1
        if self.failures >= self._PROBES and self.able is None:
            self.able = False
            self.unavailable = f"the endpoint computes no p99 ({errors.describe(error)})"
            log.warning("evidence.percentiles_unavailable", reason=self.unavailable)


def _server_error(error: BaseException) -> bool:
    return errors.is_transient(error) and errors.error_code(error) not in errors.THROTTLE_CODES


async def _probe(aws: Aws, functions: Sequence[_Key], window: _Window) -> dict[str, list[float]]:
    """The batch with its p99, asked once: a server error is the endpoint's answer; any
    other failure (a throttle, a lost connection) gets the SDK's usual retries."""
    queries = _queries(functions, window)
    try:
        return await _metric_values(aws, queries, window, once=True)
    except Exception as error:
        if _server_error(error):
            raise
    return await _metric_values(aws, queries, window)


async def _values_with_percentiles(
    aws: Aws, functions: Sequence[_Key], window: _Window, percentiles: Percentiles
) -> tuple[dict[str, list[float]], str | None]:
    """The batch's metric values, and why the p99 is missing if it is."""
    without = _queries(functions, window, False)
    if percentiles.able is None:
        async with percentiles.lock:
            while percentiles.able is None:
                try:
                    found = await _probe(aws, functions, window)
                except Exception as error:
                    if not _server_error(error):
                        raise
                    percentiles.failed(error)
                    if percentiles.able is None:  # a transient error? once more, shortly
                        await aws.sleep(_PROBE_PAUSE_S)
                    continue
                percentiles.able = True
                return found, None
    if percentiles.able is False:
        return await _metric_values(aws, without, window), percentiles.unavailable
    try:
        return await _metric_values(aws, _queries(functions, window), window), None
    except Exception as error:  # after the SDK's retries: this batch goes without
        if not _server_error(error):
            raise
        return await _metric_values(
            aws, without, window
        ), f"p99 not read ({errors.describe(error)})"


async def _fetch_metrics(
    aws: Aws,
    functions: Sequence[_Key],
    window: _Window,
    days: int,
    percentiles: Percentiles,
) -> Mapping[_Key, UsageMetrics]:
    found, missing_p99 = await _values_with_percentiles(aws, functions, window, percentiles)

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
            p99_unavailable=missing_p99 if highest(f"m{i}") is not None else None,
        )
        for i, function in enumerate(functions)
    }


async def _metric_values(
    aws: Aws, queries: list[MetricDataQueryTypeDef], window: _Window, once: bool = False
) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {}
    cloudwatch = aws.once.cloudwatch if once else aws.cloudwatch
    async for page in aws.pages(
        "NextToken",
        cloudwatch.get_metric_data,
        MetricDataQueries=queries,
        StartTime=window.start,
        EndTime=window.end,
    ):
        for result in page.get("MetricDataResults", []):
            found.setdefault(str(result.get("Id")), []).extend(result.get("Values", []))
    return found


class _ScanBudget:
    """What is left of the run's scan budget, in bytes (Logs Insights bills per GB read;
    reading events one by one takes time in proportion)."""

    def __init__(self, gigabytes: float) -> None:
        self.left = gigabytes * 1e9

    def admit(self, keys: Sequence[_Key]) -> tuple[list[_Key], list[_Key]]:
        """Smallest groups first, while they fit, each group counted once however many
        functions share it: (admitted, refused)."""
        sizes: dict[str, float] = {}
        for key in keys:
            sizes[key.log_group] = max(sizes.get(key.log_group, 0.0), key.ingested_bytes)
        taken: set[str] = set()
        for group, size in sorted(sizes.items(), key=lambda item: (item[1], item[0])):
            if size <= self.left:
                self.left -= size
                taken.add(group)
        admitted = [key for key in keys if key.log_group in taken]
        return admitted, [key for key in keys if key.log_group not in taken]

    def charge(self, size: int) -> bool:
        """Spend `size` more bytes; False (nothing spent) if they are not left."""
        if size > self.left:
            return False
        self.left -= size
        return True


class _Insights:
    """Whether this run's endpoint computes Logs Insights statistics: learned from the
    first query that comes back without them (an emulator's), then every batch reads the
    events themselves instead of asking again."""

    def __init__(self) -> None:
        self.unable: str | None = None  # why not, once seen


def _query_slots(ctx: ReadContext) -> anyio.CapacityLimiter:
    """The run's Logs Insights queries at once."""
    return ctx.shared("logs-insights-queries", lambda: anyio.CapacityLimiter(_QUERIES_AT_ONCE))


@dataclass(frozen=True, slots=True)
class _Answer:
    """One Logs Insights query's outcome."""

    scan: LogsScan
    rows: list[dict[str, str]]
    records_matched: float
    status: str


async def _run_query(
    aws: Aws,
    slots: anyio.CapacityLimiter,
    groups: Sequence[str],
    window: _Window,
    finished: QueriesFinished | None = None,
) -> _Answer:
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
    rows = [
        {str(cell.get("field")): str(cell.get("value", "")) for cell in row}
        for row in answer.get("results", [])
    ]
    matched = float(statistics.get("recordsMatched", 0.0) or 0.0)
    return _Answer(scan, rows, matched, str(answer.get("status", "")))


def _lines(figures: Figures, source: str, scan: LogsScan | None, scanned: float) -> ReportLines:
    if not figures.reports:
        return ReportLines(f"metrics only: no reports in the window ({source})", scan=scan)
    return ReportLines(
        source=source,
        reports=figures.reports,
        memory_max_mb=figures.memory_max_mb,
        memory_p99_mb=figures.memory_p99_mb,
        billed_duration_max_ms=figures.billed_duration_max_ms,
        init_duration_max_ms=figures.init_duration_max_ms,
        scanned_bytes=scanned,
        scan=scan,
    )


async def _with_insights(
    aws: Aws,
    slots: anyio.CapacityLimiter,
    batch: Sequence[_Key],
    window: _Window,
    finished: QueriesFinished | None,
) -> tuple[_Answer, list[_Key], dict[_Key, ReportLines]]:
    """One query over the batch's groups; a missing group (which refuses the whole query)
    is left out and said. (answer, the keys it covers, the keys of missing groups)."""
    groups = sorted({key.log_group for key in batch})
    try:
        return await _run_query(aws, slots, groups, window, finished), list(batch), {}
    except Exception as error:
        if not errors.is_not_found(error):
            raise
    existing = await _existing(aws, groups)
    missing = {
        key: ReportLines("metrics only: its log group does not exist")
        for key in batch
        if key.log_group not in existing
    }
    kept = [key for key in batch if key.log_group in existing]
    if not kept:
        return _Answer(LogsScan("", 0, 0), [], 0.0, "Complete"), [], missing
    answer = await _run_query(aws, slots, sorted(existing), window, finished)
    return answer, kept, missing


def _shares(keys: Sequence[_Key]) -> dict[_Key, float]:
    """Each function's share of its group's bytes (a shared group split evenly)."""
    members: dict[str, int] = {}
    for key in keys:
        members[key.log_group] = members.get(key.log_group, 0) + 1
    return {key: key.ingested_bytes / members[key.log_group] for key in keys}


async def _by_events(
    aws: Aws, keys: Sequence[_Key], window: _Window, budget: _ScanBudget, why: str
) -> dict[_Key, ReportLines]:
    """The batch's reports read event by event, with the reason it came to that."""
    placements = [Placement(key.function, key.log_group) for key in keys]
    found = await log_events.read_reports(aws, placements, window.start, window.end, budget.charge)
    source = f"log events read one by one ({why})"
    shares = _shares(keys)
    lines: dict[_Key, ReportLines] = {}
    for key in keys:
        figures = found.get(key.function, Figures())
        if isinstance(figures, log_events.OverBudget):
            lines[key] = ReportLines(
                "metrics only: its log events would pass the run's scan budget (--max-scan-gb)"
            )
        elif isinstance(figures, Exception):
            lines[key] = ReportLines(
                f"metrics only: its log events could not be read ({errors.describe(figures)})"
            )
        else:
            lines[key] = _lines(figures, source, None, shares[key] if figures.reports else 0.0)
    return lines


async def _fetch_logs(
    ctx: ReadContext, keys: Sequence[_Key], window: _Window, budget_gb: float
) -> Mapping[_Key, ReportLines]:
    """Per function: the scan of its log group and its reports' figures, or why not read."""
    budget: _ScanBudget = ctx.shared("logs-insights-budget", lambda: _ScanBudget(budget_gb))
    admitted, refused = budget.admit(keys)
    found: dict[_Key, ReportLines] = {
        key: ReportLines(
            f"metrics only: a {key.ingested_bytes / 1e9:.1f} GB scan would pass the run's "
            f"{budget_gb:g} GB scan budget (--max-scan-gb)"
        )
        for key in refused
    }
    slots = _query_slots(ctx)
    finished: QueriesFinished = ctx.per_pass("logs-insights-finished", QueriesFinished)
    insights: _Insights = ctx.shared("logs-insights-able", _Insights)

    async def one(batch: list[_Key]) -> None:
        why = insights.unable
        if why is None:
            try:
                answer, covered, missing = await _with_insights(
                    ctx.aws, slots, batch, window, finished
                )
            except Exception as error:  # this query failed: read this batch's events
                why = f"Logs Insights failed: {errors.describe(error)}"
            else:
                found.update(missing)
                if answer.status == "Complete" and rows_computed(
                    answer.rows, answer.records_matched
                ):
                    placements = [Placement(key.function, key.log_group) for key in covered]
                    figures = attribute(answer.rows, placements)
                    shares = _shares(covered)
                    for key in covered:
                        mine = figures.get(key.function, Figures())
                        scanned = shares[key] if mine.reports else 0.0
                        found[key] = _lines(mine, "logs insights", answer.scan, scanned)
                    return
                if answer.status == "Complete":  # an endpoint that computes none
                    why = insights.unable = "Logs Insights computed no statistics"
                else:  # this query did not finish: this batch alone reads its events
                    why = f"Logs Insights answered {answer.status or 'without a status'}"
                batch = covered
        try:
            found.update(await _by_events(ctx.aws, batch, window, budget, why))
        except Exception as error:  # evidence is read best-effort: say what was missed
            failed = ReportLines(
                f"metrics only: the reports could not be read ({errors.describe(error)})"
            )
            found.update(dict.fromkeys(batch, failed))

    async with anyio.create_task_group() as group_of_queries:
        for batch in _batches(admitted):
            group_of_queries.start_soon(one, batch)
    return found


def _batches(keys: Sequence[_Key]) -> list[list[_Key]]:
    """The keys in batches of at most 50 log groups (StartQuery's limit), a group's
    functions together."""
    batches: list[list[_Key]] = []
    groups: set[str] = set()
    for key in sorted(keys, key=lambda k: (k.log_group, k.function)):
        if key.log_group not in groups and len(groups) == _GROUPS_PER_QUERY:
            groups = set()
        if not groups:
            batches.append([])
        groups.add(key.log_group)
        batches[-1].append(key)
    return batches


def _percentiles(ctx: ReadContext) -> Percentiles:
    return ctx.shared("evidence-percentiles", Percentiles)


def _window(ctx: ReadContext) -> _Window:
    """The run's one window: every function's evidence covers the same hours."""
    days = ctx.targets.guardrails.lookback_days
    return ctx.shared("evidence-window", lambda: _Window.ending_at(ctx.aws.clock.utcnow(), days))


async def _metrics(ctx: ReadContext, function: FunctionState) -> UsageMetrics:
    days = ctx.targets.guardrails.lookback_days
    window = _window(ctx)
    loader = ctx.batched(
        "evidence-metrics",
        lambda keys: _fetch_metrics(ctx.aws, keys, window, days, _percentiles(ctx)),
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
            self.found = await _fetch_metrics(
                ctx.aws, self.keys, _window(ctx), days, _percentiles(ctx)
            )
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
    aws: Aws,
    functions: Sequence[tuple[str, str]],
    start: datetime,
    end: datetime,
    percentiles: Percentiles | None = None,
) -> dict[str, UsageMetrics]:
    """The metrics of (function, log group) pairs over [start, end), whole minutes: what a
    bake compares with the evidence. One GetMetricData per 62 functions. `percentiles`:
    what the caller already learned of the endpoint (a bake's polls share one)."""
    percentiles = percentiles or Percentiles()
    window = _Window(start, end)
    keys = [_Key(function, log_group) for function, log_group in functions]
    found: dict[str, UsageMetrics] = {}
    for index in range(0, len(keys), _FUNCTIONS_PER_METRICS_CALL):
        batch = keys[index : index + _FUNCTIONS_PER_METRICS_CALL]
        days = math.ceil(window.seconds / 86_400)
        found.update(
            {
                key.function: m
                for key, m in (await _fetch_metrics(aws, batch, window, days, percentiles)).items()
            }
        )
    return found


async def report_lines_between(
    aws: Aws, functions: Sequence[tuple[str, str]], start: datetime, end: datetime
) -> dict[str, ReportLines]:
    """What the reports of these (function, log group) pairs say over [start, end), by
    function; one Logs Insights query per 50 groups, one at a time (read event by event
    where Logs Insights computes no statistics). A function without reports is left out."""
    slots = anyio.CapacityLimiter(1)
    window = _Window(start, end)
    keys = [_Key(function, group) for function, group in functions]
    found: dict[str, ReportLines] = {}
    unable: str | None = None
    for batch in _batches(keys):
        lines: dict[_Key, ReportLines] = {}
        if unable is None:
            answer, covered, _ = await _with_insights(aws, slots, batch, window, None)
            if rows_computed(answer.rows, answer.records_matched):
                figures = attribute(
                    answer.rows, [Placement(k.function, k.log_group) for k in covered]
                )
                lines = {
                    k: _lines(figures[k.function], "logs insights", answer.scan, 0.0)
                    for k in covered
                    if k.function in figures
                }
            else:
                unable = "Logs Insights computed no statistics"
        if unable is not None:
            unlimited = _ScanBudget(math.inf)
            lines = await _by_events(aws, batch, window, unlimited, unable)
        found.update({k.function: v for k, v in lines.items() if v.reports})
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
        ApiCall("logs", "FilterLogEvents"),  # only where Logs Insights computes no statistics
    )
    permissions = (
        Permission("cloudwatch:GetMetricData", "*"),
        Permission("logs:StartQuery", _LOG_GROUP_ARN),
        Permission("logs:GetQueryResults", "*"),  # addressed by query id, not by resource
        Permission("logs:DescribeLogGroups", "arn:{partition}:logs:{region}:{account}:log-group:*"),
        Permission("logs:FilterLogEvents", _LOG_GROUP_ARN),
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
