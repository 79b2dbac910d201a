"""AWS API request-rate quotas, per account and region: which operations share which bucket.

One table, used twice: the optimizer paces its calls with one rate limiter per bucket, and
the sandbox throttles callers that exceed the same buckets, so tests see what AWS would do.
Sources: the Lambda quotas page ("API requests"), the CloudWatch and CloudWatch Logs
service-quotas pages, and Secrets Manager's quotas page (docs/architecture.md lists them).
SQS and IAM publish no per-operation rates: no bucket here, adaptive retry covers them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class QuotaBucket:
    """A request-rate quota shared by a set of operations of one service."""

    name: str
    service: str  # botocore service name
    rate_per_s: float
    operations: frozenset[str]  # empty: every operation of the service no other bucket names


# Lambda data-plane calls are not under the control-plane quota.
_LAMBDA_DATA_PLANE: Final = frozenset({"Invoke", "InvokeAsync", "InvokeWithResponseStream"})

BUCKETS: Final[tuple[QuotaBucket, ...]] = (
    QuotaBucket("lambda.GetFunction", "lambda", 100.0, frozenset({"GetFunction"})),
    QuotaBucket("lambda.GetPolicy", "lambda", 15.0, frozenset({"GetPolicy"})),
    QuotaBucket("lambda.control-plane", "lambda", 15.0, frozenset()),
    QuotaBucket("cloudwatch.PutMetricAlarm", "cloudwatch", 3.0, frozenset({"PutMetricAlarm"})),
    QuotaBucket("cloudwatch.DescribeAlarms", "cloudwatch", 9.0, frozenset({"DescribeAlarms"})),
    QuotaBucket("cloudwatch.GetMetricData", "cloudwatch", 500.0, frozenset({"GetMetricData"})),
    QuotaBucket("cloudwatch.PutMetricData", "cloudwatch", 500.0, frozenset({"PutMetricData"})),
    QuotaBucket("logs.DescribeLogGroups", "logs", 10.0, frozenset({"DescribeLogGroups"})),
    QuotaBucket("logs.PutRetentionPolicy", "logs", 5.0, frozenset({"PutRetentionPolicy"})),
    QuotaBucket("logs.FilterLogEvents", "logs", 5.0, frozenset({"FilterLogEvents"})),
    QuotaBucket(
        "secretsmanager.read",
        "secretsmanager",
        10_000.0,
        frozenset({"DescribeSecret", "GetSecretValue"}),
    ),
)

_BY_OPERATION: Final = {
    (bucket.service, operation): bucket for bucket in BUCKETS for operation in bucket.operations
}
_CATCH_ALL: Final = {bucket.service: bucket for bucket in BUCKETS if not bucket.operations}


BUCKET_NAMES: Final = tuple(bucket.name for bucket in BUCKETS)


def parse_override(text: str) -> tuple[str, float]:
    """`BUCKET=RATE`: an account's raised quota (requests per second) for one bucket."""
    name, sep, value = text.partition("=")
    if not sep:
        raise ValueError(f"a quota is BUCKET=RATE, not {text!r}")
    if name not in BUCKET_NAMES:
        raise ValueError(f"no quota bucket {name!r} (one of: {', '.join(BUCKET_NAMES)})")
    try:
        rate = float(value)
    except ValueError:
        raise ValueError(f"quota {name}: {value!r} is not a number") from None
    if not (rate > 0 and rate != float("inf")):
        raise ValueError(f"quota {name}: the rate must be a positive number")
    return name, rate


def rate_of(bucket: QuotaBucket, overrides: Mapping[str, float]) -> float:
    """The bucket's requests per second: AWS's default, unless the account raised it."""
    return overrides.get(bucket.name, bucket.rate_per_s)


def bucket_for(service: str, operation: str) -> QuotaBucket | None:
    """The quota bucket a call draws from, or None where AWS publishes no rate."""
    bucket = _BY_OPERATION.get((service, operation))
    if bucket is not None:
        return bucket
    if service == "lambda" and operation in _LAMBDA_DATA_PLANE:
        return None
    return _CATCH_ALL.get(service)
