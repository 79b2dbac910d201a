"""A function's month, from its evidence, and the money lines the steps build on it.

Every line carries the figures it is made of (`inputs`) and where its price came from
(`source`), so a reader can redo the arithmetic. A month is 365.25 / 12 days; the window's
usage is scaled to it. A function with no invocations in the window has no usage to price:
every line that depends on usage says it is `assumed`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Final

from optimizer_async.aws import pricing
from optimizer_async.aws.pricing import PriceBook
from optimizer_async.steps.base import Effect, Json, MoneyLine
from optimizer_async.steps.evidence import ReportLines, UsageMetrics
from optimizer_async.steps.guardrails import cpu_slowdown

MB_PER_GB: Final = 1024  # Lambda's GB-seconds count memory in MiB / 1024
# X-Ray's default sampling rule: the first request each second, then 5 % of the rest.
XRAY_RESERVOIR_PER_S: Final = 1
XRAY_FIXED_RATE: Final = 0.05
ASSUMED: Final = "assumed: no invocations in the window, so no usage to scale"


@dataclass(frozen=True)
class Month:
    """The window's usage scaled to a month."""

    invocations: float
    errors: float
    billed_seconds: float  # summed duration
    peak_concurrency: float
    ingested_bytes: float
    window_days: int

    @classmethod
    def of(cls, metrics: UsageMetrics) -> Month:
        scale = pricing.DAYS_PER_MONTH / max(metrics.lookback_days, 1)
        return cls(
            invocations=metrics.invocations * scale,
            errors=metrics.errors * scale,
            billed_seconds=metrics.duration_sum_ms / 1000.0 * scale,
            peak_concurrency=metrics.concurrency_max or 0.0,
            ingested_bytes=metrics.ingested_bytes * scale,
            window_days=metrics.lookback_days,
        )

    @property
    def assumed(self) -> bool:
        return self.invocations <= 0


@functools.lru_cache(maxsize=256)
def _source(price: pricing.Price, origin: str, region: str) -> str:
    """Where a price comes from, one string per price: a fleet's report has nine money
    lines a function, and a copy of this text each was the largest part of its memory."""
    per_unit = f"{price.usd:.10f}".rstrip("0").rstrip(".")
    return f"{price.source} ({origin}, {region}: ${per_unit} per {price.unit})"


def _line(
    label: str,
    effect: Effect,
    usd: float,
    book: PriceBook,
    key: str,
    inputs: dict[str, Json],
    basis: str | None = None,
    low: float | None = None,
    assumed: bool = False,
) -> MoneyLine:
    source = _source(book[key], book.origin, book.region)
    if assumed:
        basis = ASSUMED if basis is None else f"{ASSUMED}; {basis}"
    return MoneyLine(label, effect, usd, basis, low, inputs, source, assumed)


def compute(
    month: Month, book: PriceBook, architecture: str, before_mb: int, after_mb: int
) -> MoneyLine:
    """GB-seconds no longer allocated: from fully CPU-bound (runs longer on less memory) to
    I/O-bound (runs as long), at the architecture's first-tier price (the run's total
    settles tiers and the free tier)."""
    price = book.duration(architecture)
    before = month.billed_seconds * before_mb / MB_PER_GB
    after = month.billed_seconds * after_mb / MB_PER_GB
    after_cpu_bound = after * cpu_slowdown(before_mb, after_mb)
    high, low = (before - after) * price.usd, (before - after_cpu_bound) * price.usd
    inputs: dict[str, Json] = {
        "invocations_per_month": round(month.invocations, 1),
        "billed_seconds_per_month": round(month.billed_seconds, 3),
        "memory_mb_before": before_mb,
        "memory_mb_after": after_mb,
        "architecture": architecture,
        "gb_seconds_before": round(before, 3),
        "gb_seconds_after": round(after, 3),
        "gb_seconds_after_cpu_bound": round(after_cpu_bound, 3),
    }
    basis = (
        f"{month.window_days} days of CloudWatch usage; from duration x memory when fully "
        "CPU-bound (a CPU-bound invocation runs longer on less memory) to duration unchanged "
        "(I/O-bound)"
    )
    settled = abs(high - low) < 0.005
    return _line(
        "compute",
        "saves",
        high,
        book,
        price.key,
        inputs,
        basis,
        None if settled else low,
        month.assumed,
    )


def requests(month: Month, book: PriceBook) -> MoneyLine:
    """The request charge: unchanged by any setting, shown beside the savings."""
    usd = month.invocations * book[pricing.REQUESTS].usd
    inputs: dict[str, Json] = {"invocations_per_month": round(month.invocations, 1)}
    return _line(
        "requests (unchanged)",
        "shown",
        usd,
        book,
        pricing.REQUESTS,
        inputs,
        None,
        None,
        month.assumed,
    )


def tracing(month: Month, book: PriceBook) -> MoneyLine:
    """Active tracing records a trace per sampled request: the first each second, 5 % after
    (requests spread evenly over the month; the free 100,000 traces count once per account)."""
    seconds = min(month.invocations, pricing.SECONDS_PER_MONTH) * XRAY_RESERVOIR_PER_S
    traces = seconds + XRAY_FIXED_RATE * max(month.invocations - seconds, 0.0)
    inputs: dict[str, Json] = {
        "invocations_per_month": round(month.invocations, 1),
        "traces_per_month": round(traces, 1),
    }
    basis = "default sampling: the first request each second and 5 % of the rest"
    usd = traces * book[pricing.XRAY_TRACES].usd
    return _line(
        "tracing", "adds", usd, book, pricing.XRAY_TRACES, inputs, basis, None, month.assumed
    )


def dead_letters(month: Month, book: PriceBook) -> MoneyLine:
    """A dead-letter queue receives a message per failed asynchronous invocation: at most
    the errors (each error counted as a last attempt)."""
    inputs: dict[str, Json] = {"messages_per_month": round(month.errors, 1)}
    basis = "at most one message per error (every error taken as an asynchronous last attempt)"
    usd = month.errors * book[pricing.SQS_REQUESTS].usd
    return _line(
        "dead-letter queue",
        "adds",
        usd,
        book,
        pricing.SQS_REQUESTS,
        inputs,
        basis,
        None,
        month.assumed,
    )


def secret_reads(month: Month, book: PriceBook, secrets: int, cache_s: float) -> MoneyLine:
    """Each execution environment reads each secret once per cache lifetime; at most as many
    environments as the peak concurrency stay warm."""
    environments = max(month.peak_concurrency, 1.0) if not month.assumed else 0.0
    calls = environments * secrets * pricing.SECONDS_PER_MONTH / cache_s
    inputs: dict[str, Json] = {
        "execution_environments": environments,
        "secrets": secrets,
        "cache_seconds": cache_s,
        "calls_per_month": round(calls, 1),
    }
    basis = "one read per secret per cache lifetime in each warm environment (peak concurrency)"
    usd = calls * book[pricing.SECRETS_CALLS].usd
    return _line(
        "secret reads",
        "adds",
        usd,
        book,
        pricing.SECRETS_CALLS,
        inputs,
        basis,
        None,
        month.assumed,
    )


def evidence_scan(lines: ReportLines, book: PriceBook) -> MoneyLine | None:
    """What reading the REPORT lines cost, once (not monthly): shown, not netted."""
    if not lines.scanned_bytes:
        return None
    gigabytes = lines.scanned_bytes / pricing.GB
    inputs: dict[str, Json] = {"gb_scanned": round(gigabytes, 6)}
    usd = gigabytes * book[pricing.LOGS_INSIGHTS].usd
    return _line("evidence scan (once)", "shown", usd, book, pricing.LOGS_INSIGHTS, inputs)


def log_storage(
    stored_bytes: float,
    ingested_bytes_per_day: float,
    days_before: int | None,
    days_after: int,
    book: PriceBook,
) -> tuple[MoneyLine, ...]:
    """Stored today vs the steady state at the new retention (a day's ingestion x the
    days kept); without retention before, also the growth each month no longer adds."""
    price = book[pricing.LOGS_STORAGE].usd
    steady = ingested_bytes_per_day * days_after
    saved_gb = max(stored_bytes - steady, 0.0) / pricing.GB
    inputs: dict[str, Json] = {
        "stored_gb": round(stored_bytes / pricing.GB, 6),
        "ingested_gb_per_day": round(ingested_bytes_per_day / pricing.GB, 6),
        "retention_days_before": days_before,
        "retention_days_after": days_after,
        "steady_state_gb": round(steady / pricing.GB, 6),
    }
    basis = "stored bytes today down to a day's ingestion x the days kept"
    lines = [
        _line("log storage", "saves", saved_gb * price, book, pricing.LOGS_STORAGE, inputs, basis)
    ]
    if days_before is None:
        growth_gb = ingested_bytes_per_day * pricing.DAYS_PER_MONTH / pricing.GB
        growth: dict[str, Json] = {"growth_gb_per_month": round(growth_gb, 6)}
        lines.append(
            _line(
                "log growth avoided (per month, cumulative)",
                "shown",
                growth_gb * price,
                book,
                pricing.LOGS_STORAGE,
                growth,
                "never-expiring logs add a month's ingestion to the bill every month",
            )
        )
    return tuple(lines)


def exposure(
    limit_before: float, limit_after: float, memory_mb: int, architecture: str, book: PriceBook
) -> tuple[MoneyLine, ...]:
    """The most the function can spend in a month at its concurrency limit, before and after
    the cap: every slot busy all month (shown apart from the savings)."""
    price = book.duration(architecture)

    def at(limit: float, label: str) -> MoneyLine:
        gb_seconds = limit * pricing.SECONDS_PER_MONTH * memory_mb / MB_PER_GB
        inputs: dict[str, Json] = {
            "concurrency": limit,
            "memory_mb": memory_mb,
            "gb_seconds": round(gb_seconds, 1),
        }
        basis = "every slot busy all month, at today's memory"
        return _line(label, "shown", gb_seconds * price.usd, book, price.key, inputs, basis)

    return at(limit_before, "exposure before the cap"), at(limit_after, "exposure after the cap")


def alarms(metrics: int, book: PriceBook) -> MoneyLine:
    """Alarms are billed per metric they watch, per month."""
    price = book[pricing.ALARM_METRIC].usd
    inputs: dict[str, Json] = {"metrics": metrics}
    return _line("alarms", "adds", metrics * price, book, pricing.ALARM_METRIC, inputs)
