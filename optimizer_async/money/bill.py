"""The account's bill: what the per-function lines cannot know on their own.

Lambda's duration price is tiered on the account's monthly GB-seconds per region and
architecture, and the free tier (400,000 GB-seconds, 1 M requests, 100,000 traces, 1 M SQS
requests, 10 alarm metrics) belongs to the account, once. Each function's lines are priced
at the first tier with no free tier; this module prices the run's totals exactly, tier by
tier and (with `--free-tier`) after the free tier once, and returns the difference as
account lines. So function lines + environment lines + account lines = the run's exact
total, and nothing shared is counted twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from optimizer_async.aws.pricing import DURATION, Price, PriceBook
from optimizer_async.money.costs import Money
from optimizer_async.steps.base import Effect, Json, MoneyLine

# A line's label -> (the input that counts its units, the price key), for usage priced flat
# per function whose account total the free tier (or a tier) changes.
_ADDED_USAGE: Final[Mapping[str, tuple[str, str]]] = {
    "tracing": ("traces_per_month", "xray.traces-recorded"),
    "dead-letter queue": ("messages_per_month", "sqs.requests"),
    "alarms": ("metrics", "cloudwatch.alarm-metric"),
}
ARCHITECTURES: Final = ("x86_64", "arm64")


def account_lines(lines: Iterable[MoneyLine], book: PriceBook, free_tier: bool) -> Money:
    """The adjustments that make the run's lines add up to the account's exact bill."""
    every = list(lines)
    found: list[MoneyLine] = []
    found += _compute(every, book, free_tier)
    for label, (units_key, price_key) in _ADDED_USAGE.items():
        mine = [line for line in every if line.label == label and line.counts]
        if not mine:
            continue
        price = book[price_key]
        units = sum(float(_number(line.inputs.get(units_key))) for line in mine)
        flat = sum(line.monthly_usd for line in mine)
        exact = price.cost(units, free=free_tier)
        inputs: dict[str, Json] = {units_key: round(units, 1), "free_tier": free_tier}
        which = "the account's free tier" if free_tier else "the account's tiers"
        found += _adjustment(f"{label}: {which}", exact - flat, inputs, price, book, True)
    return Money(tuple(found))


def _compute(lines: list[MoneyLine], book: PriceBook, free_tier: bool) -> list[MoneyLine]:
    compute = [line for line in lines if line.label == "compute" and line.counts]
    if not compute:
        return []
    before: dict[str, float] = dict.fromkeys(ARCHITECTURES, 0.0)
    after, after_cpu = dict(before), dict(before)
    for line in compute:
        architecture = str(line.inputs.get("architecture", "x86_64"))
        before[architecture] = before.get(architecture, 0.0) + _number(
            line.inputs.get("gb_seconds_before")
        )
        after[architecture] = after.get(architecture, 0.0) + _number(
            line.inputs.get("gb_seconds_after")
        )
        after_cpu[architecture] = after_cpu.get(architecture, 0.0) + _number(
            line.inputs.get("gb_seconds_after_cpu_bound")
        )
    high = _bill(before, book, free_tier) - _bill(after, book, free_tier)
    low = _bill(before, book, free_tier) - _bill(after_cpu, book, free_tier)
    flat_high = sum(line.monthly_usd for line in compute)
    flat_low = sum(line.monthly_usd if line.low_usd is None else line.low_usd for line in compute)
    inputs: dict[str, Json] = {
        "gb_seconds_before": {a: round(v, 3) for a, v in before.items()},
        "gb_seconds_after": {a: round(v, 3) for a, v in after.items()},
        "free_tier": free_tier,
    }
    delta, delta_low = high - flat_high, low - flat_low
    if abs(delta) < 0.005 and abs(delta_low) < 0.005:
        return []
    price = book[f"{DURATION}.x86_64"]
    effect: Effect = "saves" if delta >= 0 else "adds"
    sign = 1.0 if delta >= 0 else -1.0
    return [
        MoneyLine(
            "compute: account tiers" + (" and free tier" if free_tier else ""),
            effect,
            abs(delta),
            "the account's GB-seconds priced tier by tier"
            + (", after the free tier once" if free_tier else ""),
            None if abs(delta - delta_low) < 0.005 else max(sign * delta_low, 0.0),
            inputs,
            f"{price.source} ({book.origin}, {book.region})",
        )
    ]


def _bill(gb_seconds: Mapping[str, float], book: PriceBook, free_tier: bool) -> float:
    """Duration charges of the account's GB-seconds by architecture; the free tier's
    GB-seconds cover both architectures together (x86_64 first)."""
    free_left = book.duration("x86_64").free_per_month if free_tier else 0.0
    total = 0.0
    for architecture in ARCHITECTURES:
        used = gb_seconds.get(architecture, 0.0)
        covered = min(used, free_left)
        free_left -= covered
        total += book.duration(architecture).cost(used - covered)
    return total


def _adjustment(
    label: str,
    delta: float,
    inputs: dict[str, Json],
    price: Price,
    book: PriceBook,
    added: bool,
) -> list[MoneyLine]:
    """An added cost that comes out smaller for the account saves the difference back."""
    if abs(delta) < 0.005:
        return []
    effect: Effect = "adds" if (delta > 0) == added else "saves"
    basis = "the account's usage priced once, tier by tier" + (
        ", after the free tier" if inputs.get("free_tier") else ""
    )
    source = f"{price.source} ({book.origin}, {book.region})"
    return [MoneyLine(label, effect, abs(delta), basis, None, inputs, source)]


def _number(value: object) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0
