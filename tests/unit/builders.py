"""Hand-built inventories for the pure planner: baseline, optimised, and anything between."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, TypeVar

from optimizer_async.definitions import baseline
from optimizer_async.definitions.naming import EnvironmentNames
from optimizer_async.definitions.targets import Targets
from optimizer_async.steps.alarms import ALARMS, duration_alarm, error_rate_alarm
from optimizer_async.steps.dead_letter_queue import QUEUE, QueueState
from optimizer_async.steps.deployment_bucket import BUCKET, BucketState
from optimizer_async.steps.evidence import METRICS, REPORT_LINES, ReportLines, UsageMetrics
from optimizer_async.steps.inventory import (
    EnvironmentInventory,
    EnvironmentVariables,
    FunctionInventory,
    FunctionState,
    PartKey,
)
from optimizer_async.steps.log_retention import LOG_GROUP, LogGroupState
from optimizer_async.steps.role_policy import ROLE_POLICIES, RolePolicyState, policy_document
from optimizer_async.steps.secrets import SECRETS

T = TypeVar("T")
I = TypeVar("I", FunctionInventory, EnvironmentInventory)  # noqa: E741

ACCOUNT = "123456789012"
REGION = "us-east-1"


def secret_arn(name: str) -> str:
    return f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-AbCdEf"


def queue_arn(suffix: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:lambda-dlq-{suffix}"


def steady_metrics(**changes: Any) -> UsageMetrics:
    """14 days of a busy, well-behaved function: every target is safe for it."""
    metrics = UsageMetrics(
        lookback_days=14,
        invocations=3_000_000,
        errors=300,
        throttles=0,
        duration_p99_ms=900.0,
        duration_max_ms=2_000.0,
        duration_sum_ms=3_000_000 * 200.0,
        concurrency_max=10,
        ingested_bytes=3e9,
        memory_mb=3008,
    )
    return replace(metrics, **changes)


def steady_report_lines(**changes: Any) -> ReportLines:
    lines = ReportLines(
        source="logs",
        reports=3_000_000,
        memory_max_mb=300.0,
        memory_p99_mb=280.0,
        billed_duration_max_ms=2_000.0,
        init_duration_max_ms=400.0,
    )
    return replace(lines, **changes)


def with_part(inventory: I, key: PartKey[T], value: T) -> I:
    """The inventory with one part replaced."""
    return replace(inventory, parts={**inventory.parts, key.name: value})


def baseline_function(
    suffix: str, base: str = "lambda-function", **changes: Any
) -> FunctionInventory:
    names = EnvironmentNames(suffix)
    name = names.function(base)
    state = FunctionState(
        name=name,
        arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
        role_arn=f"arn:aws:iam::{ACCOUNT}:role/{names.role}",
        memory_mb=3008,
        timeout_s=300,
        tracing_mode="PassThrough",
        dead_letter_target=None,
        environment=EnvironmentVariables(baseline.baseline_environment(suffix)),
        reserved_concurrency=None,
        log_group=f"/aws/lambda/{name}",
        architecture="x86_64",
        revision_id="rev-1",
        last_update_status="Successful",
        tags=names.tags,
    )
    state = replace(state, **{k: v for k, v in changes.items() if hasattr(state, k)})
    return FunctionInventory(
        state=state,
        parts={
            LOG_GROUP.name: LogGroupState(state.log_group, None, 10**9),
            ALARMS.name: {f"error-rate-{name}": None, f"duration-{name}": None},
            METRICS.name: steady_metrics(),
            REPORT_LINES.name: steady_report_lines(),
        },
    )


def baseline_environment(suffix: str = "dev", functions: int = 1) -> EnvironmentInventory:
    names = EnvironmentNames(suffix)
    return EnvironmentInventory(
        suffix=suffix,
        account_id=ACCOUNT,
        region=REGION,
        functions=tuple(
            baseline_function(suffix, base) for base in baseline.function_bases(functions)
        ),
        parts={
            SECRETS.name: {
                names.api_key_secret: secret_arn(names.api_key_secret),
                names.database_url_secret: secret_arn(names.database_url_secret),
            },
            QUEUE.name: None,
            ROLE_POLICIES.name: (RolePolicyState(names.role, names.optimizer_policy, None),),
            BUCKET.name: BucketState(
                names.bucket(ACCOUNT),
                exists=True,
                versioning="Enabled",
                lifecycle_rules=(
                    {
                        "ID": "expire-noncurrent-versions",
                        "Status": "Enabled",
                        "Filter": {},
                        "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
                    },
                ),
            ),
        },
    )


def optimised_function(
    fn: FunctionInventory, env: EnvironmentInventory, targets: Targets
) -> FunctionInventory:
    """What the function looks like once every target is met (alarms as AWS describes them)."""
    names = EnvironmentNames(env.suffix)
    variables = dict(fn.state.environment)
    variables[baseline.DATABASE_URL_SECRET_ARN_VAR] = secret_arn(names.database_url_secret)
    variables[baseline.API_KEY_SECRET_ARN_VAR] = secret_arn(names.api_key_secret)
    state = replace(
        fn.state,
        memory_mb=targets.function.memory_mb,
        timeout_s=targets.function.timeout_s,
        tracing_mode="Active",
        dead_letter_target=queue_arn(env.suffix),
        environment=EnvironmentVariables(variables),
        reserved_concurrency=targets.function.reserved_concurrency,
    )
    alarms = {}
    for alarm in (
        error_rate_alarm(fn.name, targets.alarms),
        duration_alarm(fn.name, targets.alarms),
    ):
        described = {**alarm, "AlarmArn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:x"}
        described["StateValue"] = "OK"
        alarms[alarm["AlarmName"]] = described
    log_group = LogGroupState(fn.state.log_group, targets.function.log_retention_days, 10**9)
    return with_part(with_part(replace(fn, state=state), ALARMS, alarms), LOG_GROUP, log_group)


def optimised_environment(suffix: str = "dev", functions: int = 1) -> EnvironmentInventory:
    env = baseline_environment(suffix, functions)
    targets = Targets()
    names = EnvironmentNames(suffix)
    document = policy_document(queue_arn(suffix), [a for a in env.part(SECRETS).values() if a])
    env = replace(
        env, functions=tuple(optimised_function(fn, env, targets) for fn in env.functions)
    )
    queue = QueueState(
        names.dead_letter_queue,
        f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{names.dead_letter_queue}",
        queue_arn(suffix),
        {"MessageRetentionPeriod": "1209600", "SqsManagedSseEnabled": "true"},
    )
    env = with_part(env, QUEUE, queue)
    return with_part(
        env, ROLE_POLICIES, (RolePolicyState(names.role, names.optimizer_policy, document),)
    )
