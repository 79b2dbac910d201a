"""The pure planner: every target, merges, tightening rules, preconditions, fleet guardrail."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from optimizer_async.definitions import baseline
from optimizer_async.definitions.baseline import FunctionSettings
from optimizer_async.definitions.targets import Targets
from optimizer_async.steps.alarms import ALARMS
from optimizer_async.steps.base import Change, FleetContext
from optimizer_async.steps.dead_letter_queue import QUEUE, QueueState
from optimizer_async.steps.deployment_bucket import BUCKET
from optimizer_async.steps.inventory import EnvironmentInventory, EnvironmentVariables
from optimizer_async.steps.log_retention import LOG_GROUP, LogGroupState
from optimizer_async.steps.plan import EnvironmentPlan, plan_environment, plan_fleet
from optimizer_async.steps.registry import REGISTRY
from optimizer_async.steps.reserved_concurrency import ACCOUNT_CONCURRENCY, AccountConcurrency
from optimizer_async.steps.secrets import SECRETS
from tests.unit.builders import (
    ACCOUNT,
    REGION,
    baseline_environment,
    optimised_environment,
    queue_arn,
    secret_arn,
    with_part,
)

STEPS = tuple(REGISTRY)


def plan_of(env: EnvironmentInventory, targets: Targets | None = None) -> EnvironmentPlan:
    return plan_environment(env, targets or Targets(), STEPS)


def _by_setting(plan: EnvironmentPlan) -> dict[tuple[str, str], Change]:
    return {(c.resource, c.setting): c for c in plan.changes}


def test_baseline_environment_gets_every_target() -> None:
    plan = plan_of(baseline_environment("dev"))
    changes = _by_setting(plan)
    fn = "lambda-function-dev"
    expected = {
        (fn, "MemorySize"): (3008, 1024),
        (fn, "Timeout"): (300, 30),
        (fn, "TracingConfig.Mode"): ("PassThrough", "Active"),
        (fn, "DeadLetterConfig.TargetArn"): (None, queue_arn("dev")),
        (fn, "Environment.Variables.DATABASE_URL_SECRET_ARN"): (
            None,
            secret_arn("database-url-dev"),
        ),
        (fn, "Environment.Variables.API_KEY_SECRET_ARN"): (None, secret_arn("api-key-dev")),
        (fn, "ReservedConcurrentExecutions"): (None, 50),
        (f"/aws/lambda/{fn}", "RetentionInDays"): (None, 7),
    }
    for key, (before, after) in expected.items():
        assert (changes[key].before, changes[key].after) == (before, after), key
    assert changes[(f"error-rate-{fn}", "MetricAlarm")].after["threshold"] == 1.0
    assert changes[(f"duration-{fn}", "MetricAlarm")].after["threshold"] == 20_000.0
    assert changes[("lambda-dlq-dev", "Queue")].after["retention_s"] == 14 * 24 * 3600
    policy = changes[("lambda-role-dev/lambda-optimizer-dev", "PolicyDocument")].after
    resources = {json.dumps(s["Resource"]) for s in policy["Statement"]}
    assert json.dumps(queue_arn("dev")) in resources
    assert (
        json.dumps(sorted([secret_arn("api-key-dev"), secret_arn("database-url-dev")])) in resources
    )
    assert len(plan.changes) == len(expected) + 4  # two alarms, the queue, the role policy
    assert plan.error is None


def test_plan_is_json_serialisable_and_carries_no_variable_values() -> None:
    env = baseline_environment("dev")
    fn = env.functions[0]
    secret_value = "postgres://app:hunter2@db:5432/orders"
    variables = EnvironmentVariables({**fn.state.environment, "LEGACY_DSN": secret_value})
    env = replace(env, functions=(replace(fn, state=replace(fn.state, environment=variables)),))
    text = json.dumps(plan_of(env).to_json())
    assert "hunter2" not in text
    assert "LEGACY_DSN" not in text


def test_environment_variables_are_merged_never_dropped_or_altered() -> None:
    env = baseline_environment("dev")
    fn = env.functions[0]
    existing = {**fn.state.environment, "API_KEY_SECRET_ARN": "arn:aws:secretsmanager:other"}
    env = replace(
        env,
        functions=(
            replace(fn, state=replace(fn.state, environment=EnvironmentVariables(existing))),
        ),
    )
    plan = plan_of(env)
    settings = {c.setting for c in plan.changes if c.resource == fn.name}
    assert "Environment.Variables.DATABASE_URL_SECRET_ARN" in settings
    assert "Environment.Variables.API_KEY_SECRET_ARN" not in settings
    notes = plan.functions[0].to_json()["notes"]
    assert any("API_KEY_SECRET_ARN already set" in note for note in notes)
    merged = EnvironmentVariables(existing).merged(
        {"API_KEY_SECRET_ARN": "new", "DATABASE_URL_SECRET_ARN": "x"}
    )
    assert merged == {**existing, "DATABASE_URL_SECRET_ARN": "x"}


def test_already_optimised_environment_has_an_empty_plan() -> None:
    plan = plan_of(optimised_environment("dev", functions=2))
    assert plan.is_empty
    assert plan.error is None
    assert "MemorySize" in plan.functions[0].to_json()["unchanged"]


def test_partially_optimised_environment_plans_only_the_rest() -> None:
    env = optimised_environment("dev")
    fn = env.functions[0]
    env = replace(
        env,
        functions=(
            replace(fn, state=replace(fn.state, timeout_s=300, tracing_mode="PassThrough")),
        ),
    )
    changes = _by_setting(plan_of(env))
    assert set(changes) == {
        ("lambda-function-dev", "Timeout"),
        ("lambda-function-dev", "TracingConfig.Mode"),
    }


@pytest.mark.parametrize("days", [1, 3, 5])
def test_shorter_retention_is_kept(days: int) -> None:
    env = optimised_environment("dev")
    fn = env.functions[0]
    env = replace(
        env, functions=(with_part(fn, LOG_GROUP, LogGroupState(fn.state.log_group, days, 0)),)
    )
    plan = plan_of(env)
    assert plan.is_empty
    assert any(
        f"shorter retention {days} days kept" in n for n in plan.functions[0].to_json()["notes"]
    )


def test_longer_retention_is_shortened_and_missing_group_created() -> None:
    env = optimised_environment("dev")
    fn = env.functions[0]
    longer = replace(
        env, functions=(with_part(fn, LOG_GROUP, LogGroupState(fn.state.log_group, 30, 0)),)
    )
    change = plan_of(longer).changes[0]
    assert (change.setting, change.before, change.after) == ("RetentionInDays", 30, 7)
    missing = replace(env, functions=(with_part(fn, LOG_GROUP, None),))
    change = plan_of(missing).changes[0]
    assert (change.setting, change.before, change.after) == ("RetentionInDays", None, 7)


def test_tighter_memory_and_timeout_and_existing_reservation_and_dlq_are_kept() -> None:
    env = optimised_environment("dev")
    fn = env.functions[0]
    state = replace(
        fn.state,
        memory_mb=512,
        timeout_s=10,
        reserved_concurrency=200,
        dead_letter_target="arn:aws:sqs:us-east-1:123456789012:team-dlq",
    )
    env = replace(env, functions=(replace(fn, state=state),))
    plan = plan_of(env)
    assert plan.is_empty
    notes = " | ".join(plan.functions[0].to_json()["notes"])
    assert "MemorySize 512 MB is below target 1024; kept" in notes
    assert "existing reservation 200 kept" in notes
    assert "team-dlq kept" in notes


def test_targets_file_values_are_planned() -> None:
    targets = Targets(function=FunctionSettings(2048, 60, 20, 14, "Active"))
    changes = _by_setting(plan_of(baseline_environment("dev"), targets))
    assert changes[("lambda-function-dev", "MemorySize")].after == 2048
    assert changes[("lambda-function-dev", "ReservedConcurrentExecutions")].after == 20
    assert changes[("/aws/lambda/lambda-function-dev", "RetentionInDays")].after == 14


def test_changed_alarm_definition_is_rewritten() -> None:
    env = optimised_environment("dev")
    fn = env.functions[0]
    name = "duration-lambda-function-dev"
    current = fn.part(ALARMS)
    alarms = {**current, name: {**(current[name] or {}), "Threshold": 25_000.0}}
    env = replace(env, functions=(with_part(fn, ALARMS, alarms),))
    (change,) = plan_of(env).changes
    assert (change.resource, change.before["threshold"], change.after["threshold"]) == (
        name,
        25_000.0,
        20_000.0,
    )


def test_queue_and_bucket_drift() -> None:
    env = optimised_environment("dev")
    current = env.part(QUEUE)
    assert current is not None
    queue = QueueState(current.name, current.url, current.arn, {"MessageRetentionPeriod": "345600"})
    bucket = replace(
        env.part(BUCKET),
        versioning="Suspended",
        lifecycle_rules=(
            {
                "ID": "logs",
                "Status": "Enabled",
                "Filter": {"Prefix": "logs/"},
                "Expiration": {"Days": 3},
            },
        ),
    )
    changes = _by_setting(plan_of(with_part(with_part(env, QUEUE, queue), BUCKET, bucket)))
    assert (changes[("lambda-dlq-dev", "MessageRetentionPeriod")].after) == "1209600"
    assert changes[("lambda-dlq-dev", "SqsManagedSseEnabled")].after == "true"
    bucket_name = env.part(BUCKET).name
    assert changes[(bucket_name, "Versioning")].before == "Suspended"
    assert changes[(bucket_name, "NoncurrentVersionExpiration")].after == 30


def test_kms_encrypted_queue_counts_as_encrypted() -> None:
    env = optimised_environment("dev")
    current = env.part(QUEUE)
    assert current is not None
    queue = replace(
        current,
        attributes={"MessageRetentionPeriod": "1209600", "KmsMasterKeyId": "alias/aws/sqs"},
    )
    assert plan_of(with_part(env, QUEUE, queue)).is_empty


def test_missing_secrets_fail_the_environment_with_nothing_planned() -> None:
    env = baseline_environment("dev")
    secrets = dict(env.part(SECRETS))
    secrets["api-key-dev"] = None
    env = with_part(env, SECRETS, secrets)
    plan = plan_of(env)
    assert plan.changes == ()
    assert plan.error == "secret(s) not found: api-key-dev; create them, then re-run"


def test_no_matching_function_plans_nothing() -> None:
    env = replace(baseline_environment("dev"), functions=(), skipped=("lambda-function-dev",))
    plan = plan_of(env)
    assert plan.changes == ()
    assert plan.error is not None
    assert "no function found for suffix 'dev'" in plan.error
    assert "tagged for another environment" in plan.error


def test_fleet_guardrail_keeps_unreserved_concurrency_above_100() -> None:
    plans = [plan_of(baseline_environment(s, functions=2)) for s in ("a", "b")]
    account = AccountConcurrency(ACCOUNT, REGION, limit=1000, unreserved=260)
    fleet = plan_fleet(plans, FleetContext({ACCOUNT_CONCURRENCY.name: account}), STEPS)
    blocked = [
        (fn.name, reason)
        for env in fleet.environments
        for fn in env.functions
        for _, reason in fn.blocked
    ]
    # 260 - 100 = 160 can be reserved: three functions of 50 fit (110 left), the fourth does not.
    assert [name for name, _ in blocked] == ["lambda-function2-b"]
    assert "unreserved concurrency below AWS's minimum of 100" in blocked[0][1]
    # The summary an operator needs: how many fit, and the limit that would fit them all:
    # 740 reserved already + 4 x 50 asked + the 100 kept unreserved.
    assert "3 of 4 reservations fit the account's limit of 1000" in blocked[0][1]
    assert "a limit of 1040 would fit them all" in blocked[0][1]


def test_plan_for_every_baseline_value_matches_the_single_source() -> None:
    changes = _by_setting(plan_of(baseline_environment("dev")))
    memory = changes[("lambda-function-dev", "MemorySize")]
    assert (memory.before, memory.after) == (baseline.BASELINE.memory_mb, baseline.TARGET.memory_mb)


def test_unreadable_variables_are_never_rewritten() -> None:
    env = baseline_environment("dev")
    fn = env.functions[0]
    state = replace(
        fn.state, environment=EnvironmentVariables(), environment_error="AccessDeniedException"
    )
    env = replace(env, functions=(replace(fn, state=state),))
    plan = plan_of(env)
    settings = {c.setting for c in plan.changes if c.resource == fn.name}
    assert "MemorySize" in settings
    assert not [s for s in settings if s.startswith("Environment.")]
    assert any(
        "unreadable (AccessDeniedException)" in n for n in plan.functions[0].to_json()["notes"]
    )
