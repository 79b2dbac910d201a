"""Lambda's per-invocation report, wherever and however Lambda wrote it: pure, no I/O.

Lambda ends every invocation with a report, the only place it tells the memory used:
- Text format (LoggingConfig LogFormat `Text`): a line
  `REPORT RequestId: ID\\tDuration: 812.33 ms\\tBilled Duration: 813 ms\\tMemory Size: 3008 MB
  \\tMax Memory Used: 412 MB\\t[Init Duration: 150.12 ms\\t]`; Logs Insights discovers
  `@type = "REPORT"`, `@maxMemoryUsed` and `@memorySize` in bytes (MB x 10^6),
  `@billedDuration` and `@initDuration` in ms.
- JSON format: a `platform.report` record, `{"time": ..., "type": "platform.report",
  "record": {"requestId": ..., "metrics": {"durationMs", "billedDurationMs",
  "memorySizeMB", "maxMemoryUsedMB", "initDurationMs"}, "status": ...}}`; Logs Insights
  discovers its JSON keys flattened (`record.metrics.maxMemoryUsedMB`), with no `@type`.

A function writes to `/aws/lambda/{name}` unless its LoggingConfig names another group,
which several functions may share. Lambda names streams `YYYY/MM/DD/[VERSION]ENV` in the
default group and `YYYY/MM/DD/{function}[VERSION]ENV` in a chosen one (the Lambda developer
guide, "Configuring CloudWatch log groups"), so a report's function is its stream's.

`REPORT_QUERY` asks Logs Insights for both formats per (log group, function of the
stream); `attribute` gives each row to its function. Where Logs Insights cannot compute the
statistics, `Figures` computes the same from the events themselves (FilterLogEvents with
`FILTER_PATTERN`, which matches both formats).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

BYTES_PER_MB: Final = 1_000_000  # Logs Insights reports "128 MB" as 128000000
FUNCTION_FIELD: Final = "function"
REPORT_QUERY: Final = (
    'filter @type = "REPORT" or type = "platform.report"\n'
    r"| parse @logStream /^\d{4}\/\d{2}\/\d{2}\/(?<function>[^\[]*)\[/"
    "\n| fields coalesce(@maxMemoryUsed / 1000000, record.metrics.maxMemoryUsedMB) as memoryMB,"
    " coalesce(@billedDuration, record.metrics.billedDurationMs) as billedMs,"
    " coalesce(@initDuration, record.metrics.initDurationMs) as initMs\n"
    "| stats count(*) as reports, max(memoryMB) as maxMemoryUsedMB,"
    " pct(memoryMB, 99) as p99MemoryUsedMB, max(billedMs) as maxBilledDuration,"
    " avg(billedMs) as avgBilledDuration, max(initMs) as maxInitDuration"
    f" by @log, {FUNCTION_FIELD}"
)
# FilterLogEvents: either format's report (`?` terms: any of them).
FILTER_PATTERN: Final = '?"REPORT RequestId:" ?"platform.report"'
_STREAM: Final = re.compile(r"^\d{4}/\d{2}/\d{2}/([^\[]*)\[")
_FIELDS: Final = (
    "reports",
    "maxMemoryUsedMB",
    "p99MemoryUsedMB",
    "maxBilledDuration",
    "avgBilledDuration",
    "maxInitDuration",
)


@dataclass(frozen=True, slots=True)
class Report:
    """One invocation's report."""

    max_memory_used_mb: float
    billed_duration_ms: float
    init_duration_ms: float | None = None


def _number(text: str) -> float | None:
    match = re.match(r"^\s*(-?\d+(?:\.\d+)?)", text)
    return float(match.group(1)) if match else None


def _text_report(message: str) -> Report | None:
    if not message.startswith("REPORT RequestId:"):
        return None
    values: dict[str, float] = {}
    for part in message.split("\t"):
        key, _, value = part.partition(":")
        number = _number(value)
        if number is not None:
            values[key.strip()] = number
    used, billed = values.get("Max Memory Used"), values.get("Billed Duration")
    if used is None or billed is None:
        return None
    return Report(used, billed, values.get("Init Duration"))


def _json_report(message: str) -> Report | None:
    text = message.strip()
    if not text.startswith("{") or "platform.report" not in text:
        return None
    try:
        document = json.loads(text)
    except ValueError:
        return None
    if not isinstance(document, dict) or document.get("type") != "platform.report":
        return None
    record = document.get("record")
    metrics = record.get("metrics") if isinstance(record, dict) else None
    if not isinstance(metrics, dict):
        return None
    used, billed = metrics.get("maxMemoryUsedMB"), metrics.get("billedDurationMs")
    if not isinstance(used, int | float) or not isinstance(billed, int | float):
        return None
    init = metrics.get("initDurationMs")
    return Report(
        float(used), float(billed), float(init) if isinstance(init, int | float) else None
    )


def parse_report(message: str) -> Report | None:
    """The report in a log event of either format; None for any other event."""
    return _text_report(message) or _json_report(message)


def stream_function(stream: str) -> str:
    """The function a stream names (Lambda's custom-group streams), else ""."""
    match = _STREAM.match(stream)
    return match.group(1) if match else ""


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a function's reports are: its log group, and whether the group is its own."""

    function: str
    log_group: str

    @property
    def default_group(self) -> bool:
        return self.log_group == f"/aws/lambda/{self.function}"


def owner(placements: Sequence[Placement], log_group: str, named: str) -> str | None:
    """Which of these functions a report in `log_group` under a stream naming `named`
    ("" when it names none) belongs to, or None."""
    in_group = [p for p in placements if p.log_group == log_group]
    if named:
        return named if any(p.function == named for p in in_group) else None
    own = [p.function for p in in_group if p.default_group]
    if len(own) == 1:
        return own[0]
    return in_group[0].function if len(in_group) == 1 else None


@dataclass(frozen=True, slots=True)
class Figures:
    """What a function's reports say (memory in MB). `reports` 0: none were found."""

    reports: float = 0.0
    memory_max_mb: float | None = None
    memory_p99_mb: float | None = None
    billed_duration_max_ms: float | None = None
    billed_duration_avg_ms: float | None = None
    init_duration_max_ms: float | None = None


def rows_computed(rows: Sequence[Mapping[str, str]], records_matched: float) -> bool:
    """Whether Logs Insights computed the statistics: every row has them, and rows came
    back if anything matched (an emulator that cannot answers rows with only `@ptr`)."""
    if not rows:
        return records_matched <= 0
    return all("reports" in row for row in rows)


def _float(value: str | None) -> float | None:
    try:
        return None if value is None or value == "" else float(value)
    except ValueError:
        return None


def attribute(
    rows: Sequence[Mapping[str, str]], placements: Sequence[Placement]
) -> dict[str, Figures]:
    """Logs Insights rows (`REPORT_QUERY`'s) as figures per function; rows of a function
    under several keys (a group it shares, its own) are merged."""
    found: dict[str, Figures] = {}
    for row in rows:
        log = row.get("@log", "")
        group = log.split(":", 1)[1] if ":" in log else log  # "{account}:{group}"
        function = owner(placements, group, row.get(FUNCTION_FIELD, ""))
        if function is None:
            continue
        figures = Figures(
            reports=_float(row.get("reports")) or 0.0,
            memory_max_mb=_float(row.get("maxMemoryUsedMB")),
            memory_p99_mb=_float(row.get("p99MemoryUsedMB")),
            billed_duration_max_ms=_float(row.get("maxBilledDuration")),
            billed_duration_avg_ms=_float(row.get("avgBilledDuration")),
            init_duration_max_ms=_float(row.get("maxInitDuration")),
        )
        found[function] = merge(found[function], figures) if function in found else figures
    return found


def _highest(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def merge(a: Figures, b: Figures) -> Figures:
    """Two sets of figures of one function (maxima of both; the p99 the larger, an upper
    bound; the average weighted by reports)."""
    reports = a.reports + b.reports
    averages = [(f.billed_duration_avg_ms, f.reports) for f in (a, b) if f.billed_duration_avg_ms]
    average = (
        sum(value * weight for value, weight in averages) / sum(w for _, w in averages)
        if averages and sum(w for _, w in averages) > 0
        else None
    )
    return Figures(
        reports=reports,
        memory_max_mb=_highest(a.memory_max_mb, b.memory_max_mb),
        memory_p99_mb=_highest(a.memory_p99_mb, b.memory_p99_mb),
        billed_duration_max_ms=_highest(a.billed_duration_max_ms, b.billed_duration_max_ms),
        billed_duration_avg_ms=average,
        init_duration_max_ms=_highest(a.init_duration_max_ms, b.init_duration_max_ms),
    )


@dataclass
class Tally:
    """Reports read one by one (FilterLogEvents), reduced as `REPORT_QUERY` reduces them."""

    memory: list[float] = field(default_factory=list)
    billed: list[float] = field(default_factory=list)
    init_max: float | None = None

    def add(self, report: Report) -> None:
        self.memory.append(report.max_memory_used_mb)
        self.billed.append(report.billed_duration_ms)
        if report.init_duration_ms is not None:
            self.init_max = _highest(self.init_max, report.init_duration_ms)

    def figures(self) -> Figures:
        if not self.memory:
            return Figures()
        ordered = sorted(self.memory)
        p99 = ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]
        return Figures(
            reports=float(len(ordered)),
            memory_max_mb=ordered[-1],
            memory_p99_mb=p99,
            billed_duration_max_ms=max(self.billed),
            billed_duration_avg_ms=sum(self.billed) / len(self.billed),
            init_duration_max_ms=self.init_max,
        )
