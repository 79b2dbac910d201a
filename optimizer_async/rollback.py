"""Rollback: put every setting a run changed back as its before-image says it was.

A rollback is a run like any other (its own run id, before-images, report, the same
limiters and waiters), whose plan comes from the recorded run instead of the targets. For
each change the run planned, the step reads the setting's live value (`Step.current`):
- still as before the run: nothing to do (the run never got there, or it is undone already);
- as the run set it: put back (`Step.undo`);
- anything else: someone changed it since, so the step's changes for that resource are
  refused and said, unless `--force`.
Steps undo in the reverse of their `after` order (a function stops using its dead-letter
queue before the queue goes). Idempotent: a second rollback finds everything as before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from optimizer_async.aws.gateway import Aws
from optimizer_async.engine import Engine, EngineSettings
from optimizer_async.inventory import EnvironmentInventory, FunctionInventory
from optimizer_async.plan import EnvironmentPlan, FunctionPlan
from optimizer_async.steps.base import (
    ApplyContext,
    Change,
    EnvironmentStep,
    FunctionStep,
    Json,
    Part,
    PlanContext,
    Step,
    StepPlan,
)
from optimizer_async.targets import Targets

Image = Mapping[str, Any]


class RollbackError(Exception):
    """A run cannot be rolled back (unknown, nothing recorded, a step no longer known)."""


def recorded_steps(images: Mapping[str, Image], registered: Mapping[str, Step]) -> tuple[Step, ...]:
    """The registered steps a run's before-images name, in registry order."""
    named = {name for image in images.values() for name in image.get("steps", [])}
    named |= {change["step"] for image in images.values() for change in image.get("changes", [])}
    unknown = sorted(named - set(registered))
    if unknown:
        raise RollbackError(f"the run used step(s) no longer registered: {', '.join(unknown)}")
    return tuple(step for name, step in registered.items() if name in named)


def function_bases(images: Mapping[str, Image]) -> tuple[str, ...]:
    """The function bases of the recorded functions (`{base}-{suffix}`)."""
    bases: dict[str, None] = {}
    for suffix, image in images.items():
        for function in image.get("functions", []):
            bases.setdefault(str(function["name"])[: -len(suffix) - 1], None)
    return tuple(bases)


class RollbackEngine(Engine):
    priced = False

    def __init__(
        self, aws: Aws, settings: EngineSettings, images: Mapping[str, Image], force: bool
    ) -> None:
        self.images = images
        self.force = force
        super().__init__(aws, settings)

    def _parts(self) -> tuple[Part[Any], ...]:
        """Only what undoing reads: each step's own part (no evidence, no scan)."""
        return tuple({step.part.name: step.part for step in self.settings.steps}.values())

    def plan_environment(self, inventory: EnvironmentInventory) -> EnvironmentPlan:
        return plan_undo(inventory, self.images[inventory.suffix], self.steps, self.force)

    def _prerequisites(self, step: Step) -> tuple[str, ...]:
        """Undo in reverse: a step waits for the steps that ran after it."""
        return tuple(other.name for other in self.steps.values() if step.name in other.after)

    async def _apply(
        self,
        step: Step,
        ctx: ApplyContext,
        fn: FunctionInventory | None,
        changes: tuple[Change, ...],
    ) -> None:
        image = self.images[ctx.plan.environment.suffix]
        if isinstance(step, FunctionStep) and fn is not None:
            entries: list[Image] = image.get("functions", [])
            entry: Image = next((f for f in entries if f["name"] == fn.name), {})
            await step.undo(ctx, fn, changes, entry)
        elif isinstance(step, EnvironmentStep):
            await step.undo(ctx, changes, image)


def plan_undo(
    inventory: EnvironmentInventory, image: Image, steps: Mapping[str, Step], force: bool
) -> EnvironmentPlan:
    """The changes that put the environment back as `image` recorded it (pure)."""
    if not inventory.functions and image.get("functions"):
        return EnvironmentPlan(inventory.suffix, error="its functions no longer exist")
    recorded: dict[tuple[str, str | None], list[Change]] = {}
    for entry in image.get("changes", []):
        change = Change(
            entry["step"], entry["resource"], entry["setting"], entry["before"], entry["after"]
        )
        recorded.setdefault((change.step, entry.get("function")), []).append(change)
    ctx = PlanContext(inventory, Targets())
    own: dict[str, StepPlan] = {}
    functions: dict[str, dict[str, StepPlan]] = {fn.name: {} for fn in inventory.functions}
    notes: list[str] = []
    for name, step in steps.items():  # registry order
        for (step_name, function), changes in recorded.items():
            if step_name != name:
                continue
            if isinstance(step, EnvironmentStep):

                def live(c: Change, s: EnvironmentStep = step) -> Json:
                    return s.current(ctx, c)

                own[name] = _undo(step, changes, live, force)
            elif isinstance(step, FunctionStep) and function in functions:
                fn = inventory.function(function)

                def current(c: Change, s: FunctionStep = step, f: FunctionInventory = fn) -> Json:
                    return s.current(ctx, f, c)

                functions[function][name] = _undo(step, changes, current, force)
            else:
                notes.append(f"{function} no longer exists: its {name} changes are not undone")
    return EnvironmentPlan(
        inventory.suffix,
        own,
        tuple(FunctionPlan(fn, plans) for fn, plans in functions.items()),
        skipped=inventory.skipped,
        notes=tuple(notes),
    )


def _undo(
    step: Step, changes: Sequence[Change], current: Callable[[Change], Json], force: bool
) -> StepPlan:
    undo: list[Change] = []
    unchanged: list[str] = []
    refused: list[str] = []
    for change in changes:
        live = current(change)
        back = Change(step.name, change.resource, change.setting, live, change.before)
        if step.same(change.setting, live, change.before):
            unchanged.append(f"{change.resource} {step.render_setting(change.setting)}")
        elif force or step.same(change.setting, live, change.after):
            undo.append(back)
        else:
            undo.append(back)
            refused.append(
                f"{change.resource} {step.render_setting(change.setting)} is "
                f"{step.render_value(change.setting, live)}, the run set "
                f"{step.render_value(change.setting, change.after)}"
            )
    blocked = None
    if refused:
        blocked = "changed since the run: " + "; ".join(refused) + " (--force rolls it back anyway)"
    return StepPlan(tuple(undo), tuple(unchanged), blocked=blocked)
