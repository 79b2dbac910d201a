"""The registry and its lint: what every step declares is true and complete (no AWS here;
`tests/integration/test_declared_calls.py` checks the declarations against a real run)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar

import pytest

from optimizer_async.definitions.targets import Targets
from optimizer_async.steps.alarms import ALARMS
from optimizer_async.steps.base import (
    ApiCall,
    ApplyContext,
    Change,
    EnvironmentPart,
    EnvironmentStep,
    FunctionStep,
    Permission,
    PlanContext,
    ReadContext,
    Step,
    StepPlan,
)
from optimizer_async.steps.core import FUNCTION, FUNCTION_ARN
from optimizer_async.steps.deployment_bucket import BUCKET
from optimizer_async.steps.inventory import EnvironmentInventory, FunctionInventory, PartNotRead
from optimizer_async.steps.plan import plan_environment
from optimizer_async.steps.registry import REGISTRY, SelectionError, default_registry
from tests.unit.builders import baseline_environment, with_part


class _Nothing(EnvironmentPart[None]):
    name: ClassVar[str] = "nothing"
    reads = (ApiCall("sqs", "ListQueues"),)
    permissions = ()  # deliberately missing sqs:ListQueues

    async def read(self, ctx: ReadContext, environment: EnvironmentInventory) -> None:
        return None


class _Probe(FunctionStep):
    """A configurable step for lint cases; plans by consulting the alarms part."""

    name: ClassVar[str] = "probe"
    part = FUNCTION
    writes = (ApiCall("lambda", "TagResource"),)
    permissions = (Permission("lambda:TagResource", FUNCTION_ARN),)

    def plan(self, ctx: PlanContext, function: FunctionInventory) -> StepPlan:
        function.part(ALARMS)  # consults a part it may not have declared
        return StepPlan()

    async def apply(
        self, ctx: ApplyContext, function: FunctionInventory, changes: tuple[Change, ...]
    ) -> None:
        raise AssertionError("never applied here")

    def current(self, ctx: PlanContext, function: FunctionInventory, change: Change) -> Any:
        return None


def _step(**declarations: Any) -> Step:
    """A `_Probe` with some class attributes changed."""
    probe: Step = type("Probe", (_Probe,), declarations)()
    return probe


def test_the_registered_steps_pass_the_lint() -> None:
    assert REGISTRY.lint() == []
    assert REGISTRY.names == (
        "dead_letter_queue",
        "role_policy",
        "deployment_bucket",
        "function_configuration",
        "reserved_concurrency",
        "log_retention",
        "alarms",
    )


@pytest.mark.parametrize(
    ("declarations", "problem"),
    [
        ({"after": ("no_such_step",)}, "probe: `after` names 'no_such_step'"),
        (
            {"writes": (ApiCall("lambda", "UntagResource"),)},
            "probe: lambda.UntagResource is declared but its IAM permission "
            "lambda:UntagResource is not",
        ),
        ({"uses": (_Nothing(),)}, "probe: sqs.ListQueues is declared but its IAM permission"),
        (
            {"part": _Nothing()},
            "probe: its part nothing is environment-scoped but the step is function-scoped",
        ),
        (
            {"uses": (type("Alarms2", (type(ALARMS),), {})(),)},
            "two different parts are called 'alarms'",
        ),
        ({"after": ("probe",)}, "probe: its `after` chain leads back to itself"),
        ({"after_if_run": ("probe",)}, "probe: its `after` chain leads back to itself"),
        (
            {"after_if_run": ("dead_letter_queue",)},
            "probe: `after_if_run` names 'dead_letter_queue', which is not a function step",
        ),
    ],
)
def test_the_lint_names_what_is_wrong(declarations: dict[str, Any], problem: str) -> None:
    registry = default_registry()
    registry.register(_step(**declarations))
    problems = registry.lint()
    assert any(p.startswith(problem) for p in problems), problems


def test_every_step_plans_from_only_the_parts_it_declares() -> None:
    """Discovery reads only declared parts: a step consulting another part would fail on
    `--only`. Each step alone (with the steps it runs after) plans from exactly its parts."""
    full = baseline_environment("dev", functions=2)
    full = with_part(full, BUCKET, replace(full.part(BUCKET), versioning="Suspended"))
    for step in REGISTRY:
        chosen = REGISTRY.select(only=(step.name, *step.after))
        wanted = {part.name for s in chosen for part in s.parts}
        env = replace(
            full,
            parts={k: v for k, v in full.parts.items() if k in wanted},
            functions=tuple(
                replace(fn, parts={k: v for k, v in fn.parts.items() if k in wanted})
                for fn in full.functions
            ),
        )
        plan = plan_environment(env, Targets(), chosen)
        assert plan.error is None, (step.name, plan.error)
        assert plan.changes, step.name
        ctx = PlanContext(env, Targets())  # pricing reads parts too (usage, say)
        if isinstance(step, FunctionStep):
            for fn, fn_plan in zip(env.functions, plan.functions, strict=True):
                step.money(ctx, fn, fn_plan.steps[step.name].changes)
        elif isinstance(step, EnvironmentStep):
            step.money(ctx, plan.steps[step.name].changes)


def test_an_undeclared_part_fails_loudly_with_what_to_do() -> None:
    env = baseline_environment("dev")
    env = replace(env, functions=tuple(replace(fn, parts={}) for fn in env.functions))
    with pytest.raises(PartNotRead, match=r"part 'alarms' .* declare it in the step's `uses`"):
        plan_environment(env, Targets(), (_Probe(),))


def test_selection_by_name_keeps_registry_order() -> None:
    chosen = REGISTRY.select(skip=("alarms",))
    assert [s.name for s in chosen] == [n for n in REGISTRY.names if n != "alarms"]
    chosen = REGISTRY.select(only=("alarms", "log_retention"))
    assert [s.name for s in chosen] == ["log_retention", "alarms"]


@pytest.mark.parametrize(
    ("only", "skip", "message"),
    [
        ((), ("alarm",), "unknown step(s) in --skip: alarm (steps: dead_letter_queue, "),
        (("memory",), (), "unknown step(s) in --only: memory"),
        (
            (),
            ("role_policy",),
            "step function_configuration needs role_policy, which the selection leaves out: "
            "choose it too, or leave function_configuration out",
        ),
        (
            ("function_configuration",),
            (),
            "step function_configuration needs dead_letter_queue, role_policy",
        ),
        (("alarms",), ("alarms",), "--only / --skip leave no step to run"),
    ],
)
def test_bad_selection_says_why(only: tuple[str, ...], skip: tuple[str, ...], message: str) -> None:
    with pytest.raises(SelectionError) as error:
        REGISTRY.select(only, skip)
    assert str(error.value).startswith(message)


def test_registering_for_a_block_leaves_the_registry_as_it_was() -> None:
    registry = default_registry()
    probe = _Probe()
    with registry.registered(probe):
        assert registry["probe"] is probe
        with pytest.raises(ValueError, match="already registered"):
            registry.register(_Probe())
    assert "probe" not in registry
    assert len(registry) == len(REGISTRY)
