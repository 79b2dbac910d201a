"""Bake: watch each changed function after a run, roll back at once the ones that got worse.

CodeDeploy's alarm-based rollback, for configuration changes. After the apply and its
verification, every function the run changed is watched for `--bake DURATION` against its
own pre-change evidence (the run's METRICS and REPORT_LINES parts): each poll reads
CloudWatch over the bake window so far (Invocations, Errors, Throttles, Duration Maximum:
one GetMetricData per 62 functions), the REPORT lines of the same window (Logs Insights:
out-of-memory shows as Max Memory Used reaching the memory size, a timeout as a billed
duration reaching the timeout) and the state of the alarms the run created.

A function got worse when:
- its error rate rose more than `error_rate_points` percentage points over its own, or its
  throttle rate more than `throttle_rate_points` (either with `min_invocations` at least);
- an invocation ran out of memory, or into the timeout, where none did before;
- an alarm this run created went to ALARM, unless the plan said it would fire at once.
It is rolled back at once (the rest keep baking), from its before-image, by a rollback run
of its own (`rollback_function`: a record, so the rollback too can be undone), and the
report says which function and why. Judging (`judge`) is pure; `watch` does the I/O, with
only calls the evidence and alarms parts already declare (GetMetricData, StartQuery,
GetQueryResults, DescribeAlarms).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Final

import anyio
import structlog

from optimizer_async.aws import errors
from optimizer_async.aws.clock import next_minute
from optimizer_async.aws.gateway import Aws
from optimizer_async.definitions.targets import Targets
from optimizer_async.execution.bake_settings import BakeSettings
from optimizer_async.execution.engine import FleetRun
from optimizer_async.execution.signals import StopRequest
from optimizer_async.steps.alarms import Alarms, firing_at_once
from optimizer_async.steps.base import FunctionStep
from optimizer_async.steps.evidence import (
    METRICS,
    REPORT_LINES,
    Percentiles,
    ReportLines,
    UsageMetrics,
    report_lines_between,
    usage_between,
)
from optimizer_async.steps.function_configuration import MEMORY, TIMEOUT

log = structlog.get_logger("optimizer_async.bake")
__all__ = ["BakeResult", "BakeSettings", "Seen", "Watched", "judge", "watch", "watched"]

# Lambda reports a timed-out invocation's Duration at its timeout; allow for rounding.
_AT_THE_TIMEOUT: Final = 0.99
_ALARMS_PER_CALL: Final = 100  # DescribeAlarms' AlarmNames limit
LATE_S: Final = 180  # CloudWatch's metrics and Lambda's logs arrive up to a few minutes late


@dataclass(frozen=True)
class Watched:
    """A function the run changed, with what it was like before the change."""

    suffix: str
    function: str
    log_group: str
    before: UsageMetrics | None  # its evidence (None: not read, e.g. --only without it)
    report_lines: ReportLines | None
    memory_before: int
    memory_after: int
    timeout_before: float
    timeout_after: float
    alarms: tuple[str, ...] = ()  # alarms this run created for it
    alarms_firing_at_once: bool = False  # the plan said an alarm would fire at once


@dataclass(frozen=True)
class Seen:
    """What the bake window so far shows of a function."""

    metrics: UsageMetrics
    report_lines: ReportLines | None = None
    alarms_in_alarm: tuple[str, ...] = ()


def _rate(part: float, whole: float) -> float:
    return 100.0 * part / whole if whole > 0 else 0.0


def judge(watched: Watched, seen: Seen, settings: BakeSettings) -> str | None:
    """Why the function got worse since the change, or None (pure)."""
    now, before = seen.metrics, watched.before
    enough = now.invocations >= settings.min_invocations
    if enough:
        rate, own = now.error_rate_percent, before.error_rate_percent if before else 0.0
        if rate - own > settings.error_rate_points:
            return (
                f"error rate {rate:.2f} % since the change, {own:.2f} % before "
                f"(more than {settings.error_rate_points:g} points worse)"
            )
    attempts = now.invocations + now.throttles
    if attempts >= settings.min_invocations:
        rate = _rate(now.throttles, attempts)
        own = _rate(before.throttles, before.invocations + before.throttles) if before else 0.0
        if rate - own > settings.throttle_rate_points:
            return (
                f"throttled {rate:.2f} % of invocations since the change, {own:.2f} % before "
                f"(more than {settings.throttle_rate_points:g} points worse)"
            )
    lines = seen.report_lines
    used = lines.memory_max_mb if lines else None
    used_before = watched.report_lines.memory_max_mb if watched.report_lines else None
    if used is not None and math.ceil(used) >= watched.memory_after:
        ran_out_before = used_before is not None and used_before >= watched.memory_before
        if not ran_out_before:
            return (
                f"out of memory since the change: an invocation used all "
                f"{watched.memory_after} MB (at most {_mb(used_before)} before)"
            )
    longest = max(
        (v for v in (now.duration_max_ms, lines.billed_duration_max_ms if lines else None) if v),
        default=None,
    )
    if longest is not None and longest >= _AT_THE_TIMEOUT * watched.timeout_after * 1000:
        highest_before = before.duration_max_ms if before else None
        timed_out_before = (
            highest_before is not None
            and highest_before >= _AT_THE_TIMEOUT * watched.timeout_before * 1000
        )
        if not timed_out_before:
            return (
                f"timed out since the change: an invocation ran {longest / 1000:,.1f} s, the "
                f"timeout is {watched.timeout_after:g} s (none timed out before)"
            )
    if seen.alarms_in_alarm and not watched.alarms_firing_at_once:
        return f"alarm {', '.join(seen.alarms_in_alarm)} went to ALARM since the change"
    return None


def _mb(value: float | None) -> str:
    return "unknown" if value is None else f"{math.ceil(value):,} MB"


# --- what to watch -----------------------------------------------------------------------


def watched(fleet: FleetRun, steps: Mapping[str, object], targets: Targets) -> list[Watched]:
    """The functions the run changed (an applied change of a function step), with their
    pre-change evidence and the settings before and after."""
    found: list[Watched] = []
    for env in fleet.environments:
        inventory = fleet.inventories.get(env.suffix)
        if inventory is None:
            continue
        for outcome in env.functions:
            applied = [
                c.change
                for c in outcome.changes
                if c.status == "applied" and isinstance(steps.get(c.change.step), FunctionStep)
            ]
            if not applied:
                continue
            fn = inventory.function(outcome.name)
            settings = {c.setting: c.after for c in applied}
            memory, timeout = fn.state.memory_mb, float(fn.state.timeout_s)
            metrics = fn.parts.get(METRICS.name)
            lines = fn.parts.get(REPORT_LINES.name)
            alarms = tuple(
                c.resource for c in applied if c.step == Alarms.name and c.before is None
            )
            before = metrics if isinstance(metrics, UsageMetrics) else None
            found.append(
                Watched(
                    suffix=env.suffix,
                    function=outcome.name,
                    log_group=fn.state.log_group,
                    before=before,
                    report_lines=lines if isinstance(lines, ReportLines) else None,
                    memory_before=memory,
                    memory_after=_int(settings.get(MEMORY), memory),
                    timeout_before=timeout,
                    timeout_after=float(_int(settings.get(TIMEOUT), int(timeout))),
                    alarms=alarms,
                    alarms_firing_at_once=bool(
                        alarms and before and firing_at_once(before, targets.alarms)
                    ),
                )
            )
    return found


def _int(value: object, default: int) -> int:
    return (
        int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default
    )


# --- watching ----------------------------------------------------------------------------

RollBack = Callable[[Sequence[Watched]], Awaitable[Mapping[str, str | None]]]


@dataclass
class BakeResult:
    """Per function (name): None if it stayed healthy, else why it was rolled back."""

    worse: dict[str, str] = field(default_factory=dict)
    rollback_errors: dict[str, str] = field(default_factory=dict)
    polls: int = 0
    stopped: bool = False  # a stop signal ended it early


async def watch(
    aws: Aws,
    functions: Sequence[Watched],
    settings: BakeSettings,
    roll_back: RollBack,
    stop: StopRequest | None = None,
) -> BakeResult:
    """Poll until the bake ends; roll back each function that got worse as soon as seen.
    Polls fall at start + k x poll_s; the last reads up to the end once CloudWatch's and the
    logs' late minutes have arrived (`LATE_S` after it)."""
    result = BakeResult()
    if not functions:
        return result
    start = next_minute(aws.clock.utcnow())
    ends = start + timedelta(seconds=settings.duration_s)
    healthy = {w.function: w for w in functions}
    lines = _LinesSoFar(start)
    percentiles = Percentiles()  # what the first poll learns of the endpoint, the rest keep
    log.info("bake.started", functions=len(functions), until=ends.isoformat())
    polls = itertools.count(1)
    while healthy and not (stop and stop.requested):
        at = start + timedelta(seconds=next(polls) * settings.poll_s)
        last = at >= ends
        at, end = (ends + timedelta(seconds=LATE_S), ends) if last else (at, _minute(at))
        wait = (at - aws.clock.utcnow()).total_seconds()
        if wait > 0:
            await aws.sleep(wait)
        if stop and stop.requested:  # asked to stop: what was judged so far stands
            result.stopped = True
            break
        if end > start:
            result.polls += 1
            seen = await _observe(aws, list(healthy.values()), start, end, lines, percentiles)
            worse = {
                name: reason
                for name, w in healthy.items()
                if (reason := judge(w, seen[name], settings)) is not None
            }
            if worse:
                log.warning("bake.worse", functions=worse)
                with anyio.CancelScope(shield=True):  # a rollback begun is finished
                    failures = await roll_back([healthy[name] for name in worse])
                for name, reason in worse.items():
                    result.worse[name] = reason
                    if failures.get(name):
                        result.rollback_errors[name] = str(failures[name])
                    del healthy[name]
        if last:
            break
    log.info("bake.finished", polls=result.polls, rolled_back=sorted(result.worse))
    return result


class _LinesSoFar:
    """The REPORT lines' maxima since the bake began, read a new stretch per poll, from
    `LATE_S` before the last one's end (lines arrive late; maxima merge idempotently)."""

    def __init__(self, start: datetime) -> None:
        self.start = self.read_to = start
        self.found: dict[str, ReportLines] = {}

    async def update(
        self, aws: Aws, functions: Sequence[tuple[str, str]], end: datetime
    ) -> dict[str, ReportLines]:
        """By function, from (function, log group) pairs."""
        if end > self.read_to:
            since = max(self.start, self.read_to - timedelta(seconds=LATE_S))  # late lines
            try:
                fresh = await report_lines_between(aws, functions, since, end)
            except Exception as error:  # judge from the metrics; read this stretch next time
                log.warning("bake.report_lines_unread", error=errors.describe(error))
                return self.found
            for function, new in fresh.items():
                self.found[function] = _merged(self.found.get(function), new)
            self.read_to = end
        return self.found


def _merged(old: ReportLines | None, new: ReportLines) -> ReportLines:
    if old is None:
        return new
    return replace(
        new,
        memory_max_mb=_highest(old.memory_max_mb, new.memory_max_mb),
        billed_duration_max_ms=_highest(old.billed_duration_max_ms, new.billed_duration_max_ms),
    )


def _highest(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


async def _observe(
    aws: Aws,
    functions: Sequence[Watched],
    start: datetime,
    end: datetime,
    lines: _LinesSoFar,
    percentiles: Percentiles,
) -> dict[str, Seen]:
    pairs = [(w.function, w.log_group) for w in functions]
    metrics = await usage_between(aws, pairs, start, end, percentiles)
    found = await lines.update(aws, [(w.function, w.log_group) for w in functions], end)
    firing = await _in_alarm(aws, [a for w in functions for a in w.alarms])
    return {
        w.function: Seen(
            metrics[w.function],
            found.get(w.function),
            tuple(alarm for alarm in w.alarms if alarm in firing),
        )
        for w in functions
    }


async def _in_alarm(aws: Aws, names: Sequence[str]) -> set[str]:
    firing: set[str] = set()
    for index in range(0, len(names), _ALARMS_PER_CALL):
        batch = list(names[index : index + _ALARMS_PER_CALL])
        async for page in aws.pages(
            "NextToken", aws.cloudwatch.describe_alarms, AlarmNames=batch
        ):  # StateValue and AlarmNames together: some endpoints ignore the state filter
            firing.update(
                str(alarm.get("AlarmName"))
                for alarm in page.get("MetricAlarms", [])
                if alarm.get("StateValue") == "ALARM"
            )
    return firing


def _minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)
