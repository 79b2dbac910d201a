"""Prices: a dated table per region, each price with its unit, tiers, free tier and source.

The table holds what AWS's public pricing pages list on `PRICES_AS_OF` for the regions
below; where a region's price is not listed here, us-east-1's is used and the source says
so. A price is tiered the way AWS bills it (cumulative monthly usage per account and region:
Lambda's duration above 6 and 15 billion GB-seconds) and names the account-wide monthly free
tier, which is applied once per account (`--free-tier`), never per function.

AWS's Lambda worked examples print the GB-second price rounded to $0.00001667; the list
price is $0.0000166667 (the Price List API's). The table holds the list price.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Final

PRICES_AS_OF: Final = "2026-11-01"
DEFAULT_REGION: Final = "us-east-1"
DAYS_PER_MONTH: Final = 365.25 / 12
SECONDS_PER_MONTH: Final = DAYS_PER_MONTH * 86_400
GB: Final = 1e9  # CloudWatch Logs bills decimal gigabytes

_LAMBDA_PAGE: Final = "https://aws.amazon.com/lambda/pricing/"
_CLOUDWATCH_PAGE: Final = "https://aws.amazon.com/cloudwatch/pricing/"
_XRAY_PAGE: Final = "https://aws.amazon.com/xray/pricing/"
_SQS_PAGE: Final = "https://aws.amazon.com/sqs/pricing/"
_SECRETS_PAGE: Final = "https://aws.amazon.com/secrets-manager/pricing/"

# Price keys (what each step prices with).
DURATION: Final = "lambda.duration"  # + "." + architecture: per GB-second
REQUESTS: Final = "lambda.requests"  # per request
ALARM_METRIC: Final = "cloudwatch.alarm-metric"  # per metric an alarm watches, per month
LOGS_INGESTION: Final = "logs.ingestion"  # per GB ingested
LOGS_STORAGE: Final = "logs.storage"  # per GB-month stored
LOGS_INSIGHTS: Final = "logs.insights-scan"  # per GB a Logs Insights query scans
XRAY_TRACES: Final = "xray.traces-recorded"  # per trace recorded
SQS_REQUESTS: Final = "sqs.requests"  # per request (64 KB chunk)
SECRETS_CALLS: Final = "secretsmanager.api-calls"  # per API call


@dataclass(frozen=True)
class Tier:
    """`usd` per unit for monthly usage up to `up_to` units (None: without end)."""

    up_to: float | None
    usd: float


@dataclass(frozen=True)
class Price:
    key: str
    unit: str
    tiers: tuple[Tier, ...]
    source: str  # the page (or API answer) it comes from
    free_per_month: float = 0.0  # the account-wide monthly free tier, in units

    @property
    def usd(self) -> float:
        """The first tier's price: what one more unit costs for all but the largest accounts."""
        return self.tiers[0].usd

    def cost(self, units: float, *, free: bool = False) -> float:
        """What `units` of monthly usage cost: tier by tier, after the free tier if `free`."""
        remaining = max(units - (self.free_per_month if free else 0.0), 0.0)
        total, floor = 0.0, 0.0
        for tier in self.tiers:
            ceiling = float("inf") if tier.up_to is None else tier.up_to
            used = min(remaining, ceiling - floor)
            if used <= 0:
                break
            total += used * tier.usd
            remaining -= used
            floor = ceiling
        return total


@dataclass(frozen=True)
class PriceBook:
    """The prices of one region, and where they came from."""

    region: str
    prices: Mapping[str, Price]
    origin: str  # "table 2026-11-01", "table 2026-11-01 (us-east-1's)", "live ..."

    def __getitem__(self, key: str) -> Price:
        return self.prices[key]

    def duration(self, architecture: str) -> Price:
        return self.prices.get(f"{DURATION}.{architecture}") or self.prices[f"{DURATION}.x86_64"]


def _flat(key: str, unit: str, usd: float, source: str, free: float = 0.0) -> Price:
    return Price(key, unit, (Tier(None, usd),), source, free)


def _duration(
    architecture: str, prices: tuple[float, float, float], ends: tuple[float, float]
) -> Price:
    first, second, beyond = prices
    return Price(
        f"{DURATION}.{architecture}",
        "GB-second",
        (Tier(ends[0], first), Tier(ends[1], second), Tier(None, beyond)),
        _LAMBDA_PAGE,
        free_per_month=400_000,  # GB-seconds, x86_64 and arm64 together (bill.py)
    )


_US_EAST_1: Final[tuple[Price, ...]] = (
    # x86_64: first 6 B GB-seconds a month, next 9 B, over 15 B; arm64: 7.5 B, 11.25 B, 18.75 B.
    _duration("x86_64", (0.0000166667, 0.000015, 0.0000133334), (6e9, 15e9)),
    _duration("arm64", (0.0000133334, 0.0000120001, 0.0000106667), (7.5e9, 18.75e9)),
    _flat(REQUESTS, "request", 0.20 / 1e6, _LAMBDA_PAGE, free=1_000_000),
    _flat(ALARM_METRIC, "metric-month", 0.10, _CLOUDWATCH_PAGE, free=10),
    # CloudWatch Logs' free 5 GB is shared by ingestion, storage and scans: left out.
    _flat(LOGS_INGESTION, "GB", 0.50, _CLOUDWATCH_PAGE),
    _flat(LOGS_STORAGE, "GB-month", 0.03, _CLOUDWATCH_PAGE),
    _flat(LOGS_INSIGHTS, "GB scanned", 0.005, _CLOUDWATCH_PAGE),
    _flat(XRAY_TRACES, "trace", 5.00 / 1e6, _XRAY_PAGE, free=100_000),
    _flat(SQS_REQUESTS, "request", 0.40 / 1e6, _SQS_PAGE, free=1_000_000),
    _flat(SECRETS_CALLS, "API call", 0.05 / 10_000, _SECRETS_PAGE),
)
# Where a region lists another price (the rest are us-east-1's).
_DIFFERENCES: Final[Mapping[str, Mapping[str, float]]] = {
    "eu-west-1": {LOGS_INGESTION: 0.57, LOGS_INSIGHTS: 0.0057},
    "ap-southeast-2": {LOGS_INGESTION: 0.57, LOGS_INSIGHTS: 0.0057},
}
TABLE_REGIONS: Final = (DEFAULT_REGION, *_DIFFERENCES)


def table(region: str) -> PriceBook:
    """The dated table's prices for `region` (us-east-1's where the table has none)."""
    known = region in TABLE_REGIONS
    differences = _DIFFERENCES.get(region, {})
    prices = {
        price.key: replace(price, tiers=(Tier(None, differences[price.key]),))
        if price.key in differences
        else price
        for price in _US_EAST_1
    }
    origin = f"table {PRICES_AS_OF}" + ("" if known else f" ({DEFAULT_REGION}'s prices)")
    return PriceBook(region, prices, origin)


# The evidence scan's own figure (evidence.LogsScan); money lines use the region's price.
LOGS_INSIGHTS_SCANNED_GB_USD: Final = table(DEFAULT_REGION)[LOGS_INSIGHTS].usd
