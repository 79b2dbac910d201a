"""Replaying a run's record backwards, purely: each setting on its own, and never deleting what
a setting left in place relies on (a queue, a role's permission)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from optimizer_async.definitions import baseline
from optimizer_async.definitions.targets import Targets
from optimizer_async.execution.recorded import Direction, plan_recorded
from optimizer_async.records.snapshot import before_image
from optimizer_async.steps.base import Change, StepPlan
from optimizer_async.steps.dead_letter_queue import QUEUE, QueueState
from optimizer_async.steps.function_configuration import DEAD_LETTER, ENVIRONMENT_PREFIX, MEMORY
from optimizer_async.steps.inventory import EnvironmentInventory, EnvironmentVariables
from optimizer_async.steps.plan import EnvironmentPlan, plan_environment
from optimizer_async.steps.registry import REGISTRY
from optimizer_async.steps.role_policy import ROLE_POLICIES, RolePolicyState
from tests.unit.builders import (
    ACCOUNT,
    REGION,
    baseline_environment,
    optimised_environment,
    queue_arn,
    with_part,
)

STEPS = {step.name: step for step in REGISTRY}
DATABASE = ENVIRONMENT_PREFIX + baseline.DATABASE_URL_SECRET_ARN_VAR


def record_of(before: EnvironmentInventory) -> dict[str, Any]:
    """The before-image a run of every step over `before` saves."""
    plan = plan_environment(before, Targets(), tuple(STEPS.values()))
    parts = list({part.name: part for s in STEPS.values() for part in s.parts}.values())
    owners = {c.key: fn.name for fn in plan.functions for c in fn.changes}
    return before_image(before, parts, plan.changes, list(STEPS), owners)


def undo(
    live: EnvironmentInventory, record: dict[str, Any], *, force: bool = False
) -> EnvironmentPlan:
    direction: Direction = "undo"
    return plan_recorded(live, record, STEPS, direction, force)


def configuration(plan: EnvironmentPlan, index: int = 0) -> StepPlan:
    return plan.functions[index].steps["function_configuration"]


def changed(live: EnvironmentInventory, index: int = 0, **state: Any) -> EnvironmentInventory:
    """The live environment with someone's edit of one function's configuration."""
    functions = list(live.functions)
    fn = functions[index]
    functions[index] = replace(fn, state=replace(fn.state, **state))
    return replace(live, functions=tuple(functions))


def settings(changes: tuple[Change, ...]) -> set[str]:
    return {c.setting for c in changes}


def test_a_setting_someone_changed_stays_and_every_other_goes_back() -> None:
    record = record_of(baseline_environment())
    live = changed(optimised_environment(), memory_mb=2048)

    plan = undo(live, record)

    fn = configuration(plan)
    assert [(c.setting, reason) for c, reason in fn.held] == [
        (
            MEMORY,
            "changed since the run: lambda-function-dev MemorySize is 2048, the run set 1024 "
            "(--force rolls it back anyway)",
        )
    ]
    assert fn.blocked is None
    back = {c.setting: c.after for c in fn.changes}
    assert back == {
        "Timeout": 300,
        "TracingConfig.Mode": "PassThrough",
        DEAD_LETTER: None,
        DATABASE: None,
        ENVIRONMENT_PREFIX + baseline.API_KEY_SECRET_ARN_VAR: None,
    }
    assert any("MemorySize is 2048" in note for note in fn.notes)  # the table says it too
    # Nothing left in place uses the queue or the policy: both go, as the run made them.
    assert plan.steps["dead_letter_queue"].held == ()
    assert settings(plan.steps["dead_letter_queue"].changes) == {"Queue"}
    assert plan.steps["role_policy"].held == ()
    assert len(plan.steps["role_policy"].changes) == 1


def test_a_kept_dead_letter_target_and_secret_variable_keep_the_queue_and_the_policy() -> None:
    record = record_of(baseline_environment())
    optimised = optimised_environment()
    variables = dict(optimised.functions[0].state.environment)
    variables[baseline.DATABASE_URL_SECRET_ARN_VAR] = "arn:aws:secretsmanager:x:y:secret:other"
    live = changed(
        optimised,
        dead_letter_target=queue_arn("dev") + "-2",
        environment=EnvironmentVariables(variables),
    )

    plan = undo(live, record)

    assert settings(tuple(c for c, _ in configuration(plan).held)) == {DEAD_LETTER, DATABASE}
    ((queue, kept_queue),) = plan.steps["dead_letter_queue"].held
    assert plan.steps["dead_letter_queue"].changes == ()
    assert queue.setting == "Queue"
    assert kept_queue == (
        "kept: lambda-dlq-dev - function lambda-function-dev may still send its failures there "
        "(its DeadLetterConfig.TargetArn is not rolled back); --force rolls it back anyway"
    )
    ((_, kept_policy),) = plan.steps["role_policy"].held
    assert kept_policy.startswith("kept: lambda-role-dev/lambda-optimizer-dev - function ")
    assert "need it to send its failures to the queue and need it to read its secrets" in (
        kept_policy
    )
    assert "(its DeadLetterConfig.TargetArn, env DATABASE_URL_SECRET_ARN are not rolled back)" in (
        kept_policy
    )
    assert kept_queue in plan.steps["dead_letter_queue"].notes  # the table says it too
    assert plan.changes  # everything else still goes back
    assert settings(configuration(plan).changes) >= {MEMORY, "Timeout"}


def test_force_rolls_back_everything_and_keeps_nothing() -> None:
    record = record_of(baseline_environment())
    live = changed(optimised_environment(), memory_mb=2048, dead_letter_target="arn:other")

    plan = undo(live, record, force=True)

    assert [held for step in plan.steps.values() for held in step.held] == []
    assert [held for fn in plan.functions for s in fn.steps.values() for held in s.held] == []
    assert settings(configuration(plan).changes) >= {MEMORY, DEAD_LETTER}
    assert settings(plan.steps["dead_letter_queue"].changes) == {"Queue"}


def test_only_the_policy_on_the_role_of_the_function_that_keeps_its_variable_is_kept() -> None:
    def two_roles(env: EnvironmentInventory, document: Any = None) -> EnvironmentInventory:
        first, second = env.functions
        role = f"arn:aws:iam::{ACCOUNT}:role/other-role-dev"
        env = replace(env, functions=(first, replace(second, state=replace(
            second.state, role_arn=role))))  # fmt: skip
        (policy,) = env.part(ROLE_POLICIES)
        return with_part(env, ROLE_POLICIES, (
            policy, RolePolicyState("other-role-dev", policy.policy_name, document)))  # fmt: skip

    record = record_of(two_roles(baseline_environment(functions=2)))
    optimised = optimised_environment(functions=2)
    live = two_roles(optimised, optimised.part(ROLE_POLICIES)[0].document)
    variables = dict(live.functions[1].state.environment)
    variables[baseline.DATABASE_URL_SECRET_ARN_VAR] = "someone else's"
    live = changed(live, 1, environment=EnvironmentVariables(variables))

    plan = undo(live, record)

    policies = plan.steps["role_policy"]
    assert [c.resource for c, _ in policies.held] == ["other-role-dev/lambda-optimizer-dev"]
    assert [c.resource for c in policies.changes] == ["lambda-role-dev/lambda-optimizer-dev"]
    assert settings(plan.steps["dead_letter_queue"].changes) == {"Queue"}  # no DLQ kept


def test_a_kept_target_keeps_the_queue_but_lets_its_attributes_go_back() -> None:
    names_queue = "lambda-dlq-dev"
    url = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{names_queue}"
    attributes = {"MessageRetentionPeriod": "86400", "SqsManagedSseEnabled": "true"}
    before = with_part(
        baseline_environment(), QUEUE, QueueState(names_queue, url, queue_arn("dev"), attributes)
    )
    record = record_of(before)
    live = changed(optimised_environment(), dead_letter_target="arn:someone-elses")

    plan = undo(live, record)

    queue = plan.steps["dead_letter_queue"]
    assert queue.held == ()  # the queue was there before the run: nothing deletes it
    assert [(c.setting, c.after) for c in queue.changes] == [("MessageRetentionPeriod", "86400")]


def test_apply_still_refuses_a_plan_files_step_whole() -> None:
    """The plan file's direction is unchanged: one refused setting blocks its step."""
    before = baseline_environment()
    plan = plan_environment(before, Targets(), tuple(STEPS.values()))
    document = {
        "changes": [
            {**c.to_json(), "function": fn.name} for fn in plan.functions for c in fn.changes
        ],
        "functions": [{"name": fn.name} for fn in before.functions],
        "steps": list(STEPS),
    }
    live = changed(before, memory_mb=2048)

    applied = plan_recorded(live, document, STEPS, "apply")

    fn = configuration(applied)
    assert fn.held == ()
    assert fn.blocked == (
        "changed since the plan: lambda-function-dev MemorySize is 2048, the plan expected 3008"
    )
    assert settings(fn.changes) >= {MEMORY, "Timeout", DEAD_LETTER}


def test_every_reliance_names_a_step_its_step_runs_after() -> None:
    for step in STEPS.values():
        for reliance in step.relies_on:
            assert reliance.step in step.after, (step.name, reliance.step)
            assert reliance.settings, step.name
