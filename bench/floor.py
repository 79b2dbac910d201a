"""The least time AWS's quotas allow for the job, from the quota table and the job's shape.

The minimum is what any correct tool must call, worked out from what the job is - never
from our own call log - so our counts can be held against it:

- discovery: one GetFunction per function, the account's concurrency once, the alarms and
  log groups the job names (DescribeAlarms takes 100 names, DescribeLogGroups 50), the two
  secrets of each environment (their ARNs go into the functions' variables);
- evidence: GetMetricData for the usage metrics of every function (500 per call);
- a run adds per function one configuration update, one reservation, one retention policy
  and two alarms; one GetFunction after the update (it shows the update settled and is the
  verification), and a second reading of the alarms and log groups to verify them.

Quota buckets run side by side, so the bucket floor is the slowest bucket: its minimum calls
over its rate. Rates come from `optimizer_async.aws.quotas`, overridable for an account whose
quotas were raised (`--quota BUCKET=RATE`). AWS's own delays add a path no tool can shorten:
a function's logs can be queried only once its configuration has said where it logs
(LoggingConfig may name any group), the evidence (a Logs Insights query) comes before any
decision, and a function's update can start only once IAM shows its role's new permission
and ends seconds later. So

    floor = evidence query + max(bucket floor, IAM propagation + one update)   (a run)
    floor = max(bucket floor, GetFunction bucket + evidence query)              (reads)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from optimizer_async.aws import quotas
from optimizer_async.aws.quotas import BUCKETS

Mode = Literal["run", "read"]

ALARMS_PER_FUNCTION: Final = 2
ALARM_NAMES_PER_CALL: Final = 100  # DescribeAlarms' AlarmNames limit
LOG_GROUPS_PER_CALL: Final = 50  # DescribeLogGroups' logGroupIdentifiers limit
METRICS_PER_CALL: Final = 500  # GetMetricData's MetricDataQueries limit
# The evidence: Invocations, Errors, Throttles, Duration p99 / Maximum / Sum,
# ConcurrentExecutions and the log group's IncomingBytes.
USAGE_METRICS_PER_FUNCTION: Final = 8
SECRETS_PER_ENVIRONMENT: Final = 2


@dataclass(frozen=True)
class JobShape:
    environments: int
    functions_per_env: int

    @property
    def functions(self) -> int:
        return self.environments * self.functions_per_env


def minimum_calls(shape: JobShape, mode: Mode) -> dict[str, int]:
    """The calls per quota bucket that the job cannot do without."""
    n = shape.functions
    alarm_reads = math.ceil(n * ALARMS_PER_FUNCTION / ALARM_NAMES_PER_CALL)
    log_group_reads = math.ceil(n / LOG_GROUPS_PER_CALL)
    per_call = METRICS_PER_CALL // USAGE_METRICS_PER_FUNCTION
    calls = {
        "lambda.GetFunction": n,
        "lambda.control-plane": 1,  # GetAccountSettings: the account's unreserved headroom
        "cloudwatch.DescribeAlarms": alarm_reads,
        "logs.DescribeLogGroups": log_group_reads,
        "cloudwatch.GetMetricData": math.ceil(n / per_call),
        "secretsmanager.read": shape.environments * SECRETS_PER_ENVIRONMENT,
    }
    if mode == "run":
        calls["lambda.GetFunction"] += n
        calls["lambda.control-plane"] += 2 * n  # UpdateFunctionConfiguration, reservation
        calls["cloudwatch.PutMetricAlarm"] = n * ALARMS_PER_FUNCTION
        calls["logs.PutRetentionPolicy"] = n
        calls["cloudwatch.DescribeAlarms"] += alarm_reads
        calls["logs.DescribeLogGroups"] += log_group_reads
    return calls


def rates(overrides: Mapping[str, float] | None = None) -> dict[str, float]:
    """Requests per second per bucket: AWS's defaults, with an account's raised quotas."""
    table = {bucket.name: bucket.rate_per_s for bucket in BUCKETS}
    for name, rate in (overrides or {}).items():
        if name not in table:
            raise ValueError(f"no quota bucket {name!r} (one of: {', '.join(sorted(table))})")
        if not rate > 0:
            raise ValueError(f"the rate of {name} must be positive")
        table[name] = rate
    return table


@dataclass(frozen=True)
class Delays:
    """AWS's delays on one function's path, in seconds at AWS's pace."""

    evidence_s: float = 0.0  # a Logs Insights query, from start to results
    iam_propagation_s: float = 0.0
    update_s: float = 0.0  # UpdateFunctionConfiguration until LastUpdateStatus Successful


@dataclass(frozen=True)
class Floor:
    seconds: float  # at AWS's real rates
    bottleneck: str
    minimum: dict[str, int]


def floor(
    shape: JobShape,
    mode: Mode,
    overrides: Mapping[str, float] | None = None,
    delays: Delays = Delays(),
) -> Floor:
    """The slowest bucket's minimum calls over its rate, with AWS's delays (module doc)."""
    minimum = minimum_calls(shape, mode)
    table = rates(overrides)
    seconds = {name: calls / table[name] for name, calls in minimum.items()}
    bottleneck = max(seconds, key=lambda name: seconds[name])
    slowest = seconds[bottleneck]
    if mode == "read":
        last_read = seconds["lambda.GetFunction"] + delays.evidence_s
        if last_read > slowest:
            return Floor(last_read, "lambda.GetFunction + evidence query", minimum)
        return Floor(slowest, bottleneck, minimum)
    path = delays.iam_propagation_s + delays.update_s
    if path > slowest:
        return Floor(delays.evidence_s + path, "IAM propagation + update", minimum)
    return Floor(delays.evidence_s + slowest, bottleneck, minimum)


def parse_quota(text: str) -> tuple[str, float]:
    """`BUCKET=RATE`, as the optimizer's --quota takes it."""
    return quotas.parse_override(text)
