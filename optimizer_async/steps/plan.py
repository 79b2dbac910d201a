"""Inventory + targets + steps -> Plan. Pure: no I/O, so it is tested exhaustively.

A plan lists, per environment and function, each change with its before and after value,
the settings already fine, and notes. It is empty for an optimised environment. An
environment that lacks what its steps need (its functions, or a part's precondition such as
its secrets) gets an error instead of changes, and nothing is applied to it. Fleet-wide
guardrails are each step's own (`Step.guard_fleet`); this module knows no particular step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from optimizer_async.definitions.naming import EnvironmentNames
from optimizer_async.definitions.targets import Targets
from optimizer_async.steps.base import (
    Change,
    EnvironmentStep,
    FleetContext,
    FunctionStep,
    PlanContext,
    Step,
    StepPlan,
)
from optimizer_async.steps.inventory import EnvironmentInventory


def _flatten(steps: Mapping[str, StepPlan]) -> StepPlan:
    combined = StepPlan()
    for step_plan in steps.values():
        combined = combined + step_plan
    return combined


@dataclass(frozen=True, slots=True)
class FunctionPlan:
    name: str
    steps: Mapping[str, StepPlan]

    @property
    def changes(self) -> tuple[Change, ...]:
        return _flatten(self.steps).changes

    @property
    def blocked(self) -> tuple[tuple[str, str], ...]:
        """(step, reason) for every step a guardrail stopped."""
        return tuple((name, plan.blocked) for name, plan in self.steps.items() if plan.blocked)

    def to_json(self) -> dict[str, Any]:
        combined = _flatten(self.steps)
        return {
            "name": self.name,
            "changes": [c.to_json() for c in combined.changes],
            "unchanged": list(combined.unchanged),
            "notes": list(combined.notes),
            "blocked": [{"step": step, "reason": reason} for step, reason in self.blocked]
            + [
                {"step": change.step, "setting": change.setting, "reason": reason}
                for change, reason in combined.held
            ],
        }


@dataclass(frozen=True)
class EnvironmentPlan:
    suffix: str
    steps: Mapping[str, StepPlan] = field(default_factory=dict)
    functions: tuple[FunctionPlan, ...] = ()
    error: str | None = None  # the environment cannot be optimised; nothing is applied
    skipped: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # about the environment as a whole

    @property
    def changes(self) -> tuple[Change, ...]:
        """Every change of the environment: its own, then its functions'."""
        own = _flatten(self.steps).changes
        return own + tuple(c for fn in self.functions for c in fn.changes)

    @property
    def is_empty(self) -> bool:
        return not self.changes

    def to_json(self) -> dict[str, Any]:
        combined = _flatten(self.steps)
        return {
            "suffix": self.suffix,
            "error": self.error,
            "changes": [c.to_json() for c in combined.changes],
            "unchanged": list(combined.unchanged),
            "notes": list(self.notes + combined.notes),
            "skipped": list(self.skipped),
            "functions": [fn.to_json() for fn in self.functions],
        }


@dataclass(frozen=True)
class Plan:
    environments: tuple[EnvironmentPlan, ...]

    @property
    def changes(self) -> tuple[Change, ...]:
        return tuple(c for env in self.environments for c in env.changes)

    def to_json(self) -> dict[str, Any]:
        return {"environments": [env.to_json() for env in self.environments]}


def failed_environment(suffix: str, reason: str) -> EnvironmentPlan:
    return EnvironmentPlan(suffix=suffix, error=reason)


def _precondition_error(inventory: EnvironmentInventory, steps: Sequence[Step]) -> str | None:
    if not inventory.functions:
        names = EnvironmentNames(inventory.suffix)
        skipped = f" ({', '.join(inventory.skipped)} tagged for another environment)"
        return f"no function found for suffix {names.suffix!r}" + (
            skipped if inventory.skipped else ""
        )
    parts = {part.name: part for step in steps for part in step.parts}
    for found in (inventory.parts, *(fn.parts for fn in inventory.functions)):
        for name, value in found.items():
            problem = parts[name].problem(value) if name in parts else None
            if problem is not None:
                return problem
    return None


def plan_environment(
    inventory: EnvironmentInventory, targets: Targets, steps: Sequence[Step]
) -> EnvironmentPlan:
    """The changes the given steps make to bring one environment to the targets."""
    error = _precondition_error(inventory, steps)
    if error is not None:
        return EnvironmentPlan(inventory.suffix, error=error, skipped=inventory.skipped)
    ctx = PlanContext(inventory, targets)
    own = {step.name: step.plan(ctx) for step in steps if isinstance(step, EnvironmentStep)}
    functions = tuple(
        FunctionPlan(
            fn.name,
            {step.name: step.plan(ctx, fn) for step in steps if isinstance(step, FunctionStep)},
        )
        for fn in inventory.functions
    )
    return EnvironmentPlan(inventory.suffix, own, functions, skipped=inventory.skipped)


def plan_fleet(
    environments: Sequence[EnvironmentPlan], fleet: FleetContext, steps: Sequence[Step]
) -> Plan:
    """Let each step guard the whole fleet: its plans, in the order given (earlier
    environments and functions first), may come back blocked."""
    planned = list(environments)
    for step in steps:
        if isinstance(step, FunctionStep):
            slots = [
                (e, f)
                for e, env in enumerate(planned)
                for f, fn in enumerate(env.functions)
                if step.name in fn.steps
            ]
            guarded = step.guard_fleet(
                fleet, [planned[e].functions[f].steps[step.name] for e, f in slots]
            )
            for (e, f), step_plan in zip(slots, guarded, strict=True):
                functions = list(planned[e].functions)
                functions[f] = replace(
                    functions[f], steps={**functions[f].steps, step.name: step_plan}
                )
                planned[e] = replace(planned[e], functions=tuple(functions))
        else:
            indices = [e for e, env in enumerate(planned) if step.name in env.steps]
            guarded = step.guard_fleet(fleet, [planned[e].steps[step.name] for e in indices])
            for e, step_plan in zip(indices, guarded, strict=True):
                planned[e] = replace(planned[e], steps={**planned[e].steps, step.name: step_plan})
    return Plan(tuple(planned))
