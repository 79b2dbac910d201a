"""`savings --run-id ID [--days N]`: what a past run really saved, beside what it estimated.

For every function whose memory the run changed (applied and verified), CloudWatch usage of
two windows of the same length: before the run started and since it finished (whole
minutes, at most `--days`, at most as long as the run is old). Traffic changes between them,
so each window is reduced to what an invocation costs (GB-seconds per invocation at the
memory of the time, plus the request) and the difference is scaled to a month of the
invocations seen since the run. Prices are the dated table's for the run's region.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from optimizer_async.aws import pricing
from optimizer_async.aws.clock import next_minute
from optimizer_async.aws.gateway import Aws
from optimizer_async.definitions.naming import log_group_name
from optimizer_async.steps.evidence import UsageMetrics, usage_between
from optimizer_async.steps.function_configuration import MEMORY
from optimizer_async.steps.monthly import MB_PER_GB

MIN_AGE: Final = timedelta(hours=1)  # less since the run is too little traffic to tell


class TooSoonError(Exception):
    """The run is too recent (or the record too thin) to measure what it saved."""


@dataclass(frozen=True)
class Changed:
    """A function whose memory the run changed, and what the run estimated for it."""

    function: str
    memory_before_mb: int
    memory_after_mb: int
    architecture: str
    estimated_usd: float
    estimated_low_usd: float


@dataclass(frozen=True)
class Realised:
    changed: Changed
    before: UsageMetrics
    after: UsageMetrics
    per_invocation_before_usd: float
    per_invocation_after_usd: float
    invocations_per_month: float

    @property
    def monthly_usd(self) -> float:
        saved = self.per_invocation_before_usd - self.per_invocation_after_usd
        return saved * self.invocations_per_month


def changed_functions(report: Mapping[str, Any]) -> list[Changed]:
    """The functions whose memory change the run applied and verified, from its report."""
    found: list[Changed] = []
    for env in report.get("environments", []):
        for fn in env.get("functions", []):
            if fn.get("rolled_back"):  # the bake undid it: it runs as before
                continue
            memory = [
                c
                for c in fn.get("changes", [])
                if c.get("setting") == MEMORY and c.get("status") == "applied" and c.get("verified")
            ]
            if not memory:
                continue
            savings = fn.get("savings", {})
            compute: Mapping[str, Any] = next(
                (line for line in savings.get("lines", []) if line.get("label") == "compute"), {}
            )
            high = float(compute.get("monthly_usd", 0.0))
            low = compute.get("low_usd")
            found.append(
                Changed(
                    function=str(fn["name"]),
                    memory_before_mb=int(memory[0]["before"]),
                    memory_after_mb=int(memory[0]["after"]),
                    architecture=str(compute.get("inputs", {}).get("architecture", "x86_64")),
                    estimated_usd=high,
                    estimated_low_usd=high if low is None else float(low),
                )
            )
    return found


def windows(
    started: datetime, finished: datetime, now: datetime, days: int
) -> tuple[tuple[datetime, datetime], tuple[datetime, datetime]]:
    """(before, after): equal lengths in whole hours, before the run and since it. Whole
    hours because CloudWatch serves data older than 15 days only in 5-minute periods, older
    than 63 days in hours (the read asks one period per window)."""
    after_start = next_minute(finished)
    length = min(timedelta(days=days), now - after_start)
    length = timedelta(hours=length // timedelta(hours=1))
    if length < MIN_AGE:
        minutes = max(now - finished, timedelta()) // timedelta(minutes=1)
        raise TooSoonError(
            f"the run finished {minutes} minutes ago: an hour of traffic since it is needed"
        )
    before_end = started.replace(second=0, microsecond=0)
    return (before_end - length, before_end), (after_start, after_start + length)


def per_invocation(
    usage: UsageMetrics, memory_mb: int, book: pricing.PriceBook, arch: str
) -> float:
    """What one invocation cost in a window: its GB-seconds at that memory, and the request."""
    if usage.invocations <= 0:
        return 0.0
    gb_seconds = usage.duration_sum_ms / 1000.0 * memory_mb / MB_PER_GB
    duration = gb_seconds * book.duration(arch).usd
    return duration / usage.invocations + book[pricing.REQUESTS].usd


async def measure(
    aws: Aws, run: Mapping[str, Any], report: Mapping[str, Any], days: int
) -> dict[str, Any]:
    """The realised-savings document of a run (its record and its report)."""
    started = datetime.fromisoformat(str(run["started_at"]))
    finished = datetime.fromisoformat(str(run.get("finished_at") or run["started_at"]))
    before, after = windows(started, finished, aws.clock.utcnow(), days)
    changed = changed_functions(report)
    book = pricing.table(str(report.get("region") or aws.region))
    keys = [(c.function, log_group_name(c.function)) for c in changed]
    used_before = await usage_between(aws, keys, *before) if keys else {}
    used_after = await usage_between(aws, keys, *after) if keys else {}
    month = pricing.SECONDS_PER_MONTH / (after[1] - after[0]).total_seconds()
    found: list[Realised] = []
    quiet: list[str] = []
    for c in changed:
        was, now = used_before[c.function], used_after[c.function]
        if was.invocations <= 0 or now.invocations <= 0:  # no traffic to compare
            quiet.append(c.function)
            continue
        found.append(
            Realised(
                c,
                was,
                now,
                per_invocation(was, c.memory_before_mb, book, c.architecture),
                per_invocation(now, c.memory_after_mb, book, c.architecture),
                now.invocations * month,
            )
        )
    measured = document(str(run["run_id"]), book, before, after, found)
    measured["not_measured"] = dict.fromkeys(quiet, "no invocations in one of the windows")
    return measured


def document(
    run_id: str,
    book: pricing.PriceBook,
    before: tuple[datetime, datetime],
    after: tuple[datetime, datetime],
    found: Sequence[Realised],
) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "region": book.region,
        "prices": book.origin,
        "windows": {
            "before": [before[0].isoformat(), before[1].isoformat()],
            "after": [after[0].isoformat(), after[1].isoformat()],
        },
        "functions": [
            {
                "name": r.changed.function,
                "memory_mb": [r.changed.memory_before_mb, r.changed.memory_after_mb],
                "estimated_monthly_usd": [
                    round(r.changed.estimated_low_usd, 2),
                    round(r.changed.estimated_usd, 2),
                ],
                "realised_monthly_usd": round(r.monthly_usd, 2),
                "inputs": {
                    "invocations": [r.before.invocations, r.after.invocations],
                    "billed_seconds": [
                        r.before.duration_sum_ms / 1000.0,
                        r.after.duration_sum_ms / 1000.0,
                    ],
                    "usd_per_invocation": [
                        r.per_invocation_before_usd,
                        r.per_invocation_after_usd,
                    ],
                    "invocations_per_month": round(r.invocations_per_month, 1),
                },
            }
            for r in found
        ],
        "estimated_monthly_usd": [
            round(sum(r.changed.estimated_low_usd for r in found), 2),
            round(sum(r.changed.estimated_usd for r in found), 2),
        ],
        "realised_monthly_usd": round(sum(r.monthly_usd for r in found), 2),
    }
