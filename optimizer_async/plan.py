"""Inventory + targets -> Plan. Pure: no I/O, so it is tested exhaustively.

A plan lists, per environment and function, each change with its before and after value,
the settings already fine, and notes. It is empty for an optimised environment. An
environment that lacks what the targets need (its functions, its secrets) gets an error
instead of changes, and nothing is applied to it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from optimizer_async.aws.limits import MIN_UNRESERVED_CONCURRENCY
from optimizer_async.inventory import AccountState, EnvironmentInventory
from optimizer_async.naming import EnvironmentNames
from optimizer_async.steps import ENVIRONMENT_STEPS, FUNCTION_STEPS
from optimizer_async.steps.base import Change, PlanContext, StepPlan
from optimizer_async.steps.reserved_concurrency import ReservedConcurrency
from optimizer_async.targets import Targets


def _flatten(steps: Mapping[str, StepPlan]) -> StepPlan:
    combined = StepPlan()
    for step_plan in steps.values():
        combined = combined + step_plan
    return combined


@dataclass(frozen=True)
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
            "blocked": [{"step": step, "reason": reason} for step, reason in self.blocked],
        }


@dataclass(frozen=True)
class EnvironmentPlan:
    suffix: str
    steps: Mapping[str, StepPlan] = field(default_factory=dict)
    functions: tuple[FunctionPlan, ...] = ()
    error: str | None = None  # the environment cannot be optimised; nothing is applied
    skipped: tuple[str, ...] = ()

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
            "notes": list(combined.notes),
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


def _precondition_error(inventory: EnvironmentInventory) -> str | None:
    if not inventory.functions:
        names = EnvironmentNames(inventory.suffix)
        skipped = f" ({', '.join(inventory.skipped)} tagged for another environment)"
        return f"no function found for suffix {names.suffix!r}" + (
            skipped if inventory.skipped else ""
        )
    missing = sorted(name for name, arn in inventory.secret_arns.items() if arn is None)
    if missing:
        return f"secret(s) not found: {', '.join(missing)}; create them, then re-run"
    return None


def plan_environment(inventory: EnvironmentInventory, targets: Targets) -> EnvironmentPlan:
    """The changes that bring one environment to the targets."""
    error = _precondition_error(inventory)
    if error is not None:
        return EnvironmentPlan(inventory.suffix, error=error, skipped=inventory.skipped)
    ctx = PlanContext(inventory, targets)
    steps = {step.name: step.plan(ctx) for step in ENVIRONMENT_STEPS}
    functions = tuple(
        FunctionPlan(fn.name, {step.name: step.plan(ctx, fn) for step in FUNCTION_STEPS})
        for fn in inventory.functions
    )
    return EnvironmentPlan(inventory.suffix, steps, functions, skipped=inventory.skipped)


def plan_fleet(environments: Sequence[EnvironmentPlan], account: AccountState | None) -> Plan:
    """Apply the account-wide guardrail: new reservations never push the account's unreserved
    concurrency below AWS's floor of 100. Earlier environments (in the order given) and
    functions get the budget first; the rest are blocked with the reason."""
    if account is None:
        return Plan(tuple(environments))
    budget = account.unreserved_concurrency - MIN_UNRESERVED_CONCURRENCY
    step = ReservedConcurrency.name
    planned: list[EnvironmentPlan] = []
    for env in environments:
        functions = []
        for fn in env.functions:
            wanted = sum(int(c.after) for c in fn.steps.get(step, StepPlan()).changes)
            if wanted and wanted > budget:
                left = budget + MIN_UNRESERVED_CONCURRENCY - wanted
                reason = (
                    f"reserving {wanted} would leave the account's unreserved concurrency at "
                    f"{left}, below AWS's minimum of {MIN_UNRESERVED_CONCURRENCY}"
                )
                blocked = replace(fn.steps[step], blocked=reason)
                fn = replace(fn, steps={**fn.steps, step: blocked})
            else:
                budget -= wanted
            functions.append(fn)
        planned.append(replace(env, functions=tuple(functions)))
    return Plan(tuple(planned))
