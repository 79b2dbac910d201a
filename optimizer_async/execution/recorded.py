"""Runs whose plan comes from a record instead of the targets: rollback and plan files.

Both replay recorded changes (step, resource, setting, before, after) against what is live
now, read through each step's `Step.current`:
- **rollback** (`rollback --run-id`) takes a run's before-images back: a setting still as
  before the run needs nothing (the run never got there, or it is undone already); one as
  the run set it is put back (`Step.undo`); anything else was changed by someone since the
  run and is refused with what changed, unless `--force` - that setting alone: the step's
  other settings go back. Steps undo in the reverse of their `after` order (a function stops
  using its dead-letter queue before the queue goes), and what a setting left in place
  relies on (`Step.relies_on`, `Step.serves`) is kept, saying why.
- **apply** (`apply PLAN`) makes exactly the changes a reviewed plan file holds: a setting
  already as planned needs nothing; one still as the plan saw it is changed (`Step.apply`);
  anything else - or a function whose RevisionId moved since the plan - is refused, never
  re-planned. Nothing the plan did not contain is ever added.
Either is a run of its own (run id, before-images, report, limiters, waiters), idempotent,
and reads only the steps' own parts (no evidence, no Logs Insights scan).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from optimizer_async.aws.gateway import Aws
from optimizer_async.definitions.targets import Targets
from optimizer_async.execution.engine import Engine, EngineSettings
from optimizer_async.records import plan_check
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
from optimizer_async.steps.core import FUNCTION
from optimizer_async.steps.inventory import EnvironmentInventory, FunctionInventory
from optimizer_async.steps.plan import EnvironmentPlan, FunctionPlan

Record = Mapping[str, Any]  # a before-image, or one environment of a plan file
Direction = Literal["undo", "apply"]


class RecordError(Exception):
    """A record cannot be replayed (nothing recorded, a step no longer registered)."""


def recorded_steps(
    records: Mapping[str, Record], registered: Mapping[str, Step]
) -> tuple[Step, ...]:
    """The registered steps the records name, in registry order."""
    named = {name for record in records.values() for name in record.get("steps", [])}
    named |= {change["step"] for record in records.values() for change in record.get("changes", [])}
    unknown = sorted(named - set(registered))
    if unknown:
        raise RecordError(f"recorded step(s) no longer registered: {', '.join(unknown)}")
    return tuple(step for name, step in registered.items() if name in named)


def function_bases(records: Mapping[str, Record]) -> tuple[str, ...]:
    """The bases of the recorded functions (`{base}-{suffix}`)."""
    bases: dict[str, None] = {}
    for suffix, record in records.items():
        for function in record.get("functions", []):
            bases.setdefault(str(function["name"])[: -len(suffix) - 1], None)
    return tuple(bases)


class RecordedEngine(Engine):
    priced = False

    def __init__(
        self,
        aws: Aws,
        settings: EngineSettings,
        records: Mapping[str, Record],
        direction: Direction,
        force: bool = False,
    ) -> None:
        self.records = records
        self.direction: Direction = direction
        self.force = force
        super().__init__(aws, settings)

    def _parts(self) -> tuple[Part[Any], ...]:
        """Only what replaying reads: each step's own part (no evidence, no scan)."""
        return tuple(
            {s.part.name: s.part for s in self.settings.steps if s.part is not FUNCTION}.values()
        )

    def plan_environment(self, inventory: EnvironmentInventory) -> EnvironmentPlan:
        if self.direction == "apply":  # its changes were verified against the plan's record
            moved = plan_check.moved_since(self.records[inventory.suffix], inventory)
            if moved is not None:
                return EnvironmentPlan(inventory.suffix, error=moved)
        return plan_recorded(
            inventory, self.records[inventory.suffix], self.steps, self.direction, self.force
        )

    def _prerequisites(self, step: Step) -> tuple[str, ...]:
        if self.direction == "apply":
            return step.after
        # Undo in reverse: a step waits for the steps that ran after it.
        return tuple(other.name for other in self.steps.values() if step.name in other.after)

    async def _apply(
        self,
        step: Step,
        ctx: ApplyContext,
        fn: FunctionInventory | None,
        changes: tuple[Change, ...],
    ) -> None:
        if self.direction == "apply":
            await super()._apply(step, ctx, fn, changes)
            return
        image = self.records[ctx.plan.environment.suffix]
        if isinstance(step, FunctionStep) and fn is not None:
            entries: list[Record] = image.get("functions", [])
            entry: Record = next((f for f in entries if f["name"] == fn.name), {})
            await step.undo(ctx, fn, changes, entry)
        elif isinstance(step, EnvironmentStep):
            await step.undo(ctx, changes, image)


def plan_recorded(
    inventory: EnvironmentInventory,
    record: Record,
    steps: Mapping[str, Step],
    direction: Direction,
    force: bool = False,
) -> EnvironmentPlan:
    """The changes that replay `record` on the live environment (pure)."""
    if not inventory.functions and record.get("functions"):
        return EnvironmentPlan(inventory.suffix, error="its functions no longer exist")
    recorded: dict[tuple[str, str | None], list[Change]] = {}
    for entry in record.get("changes", []):
        change = Change(
            entry["step"], entry["resource"], entry["setting"], entry["before"], entry["after"]
        )
        recorded.setdefault((change.step, entry.get("function")), []).append(change)
    revisions: Mapping[str, str | None] = record.get("revisions") or {}
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

                own[name] = _replay(step, changes, live, direction, force, None)
            elif isinstance(step, FunctionStep) and function in functions:
                fn = inventory.function(function)

                def current(c: Change, s: FunctionStep = step, f: FunctionInventory = fn) -> Json:
                    return s.current(ctx, f, c)

                moved = None
                if (
                    direction == "apply"
                    and step.revision_locked
                    and function in revisions
                    and revisions[function] != fn.state.revision_id
                ):
                    moved = f"{function} changed since the plan (its RevisionId moved)"
                functions[function][name] = _replay(step, changes, current, direction, force, moved)
            else:
                notes.append(f"{function} no longer exists: its {name} changes are not replayed")
    if direction == "undo":
        _keep_prerequisites(steps, inventory, own, functions)
    return EnvironmentPlan(
        inventory.suffix,
        own,
        tuple(FunctionPlan(fn, plans) for fn, plans in functions.items()),
        skipped=inventory.skipped,
        notes=tuple(notes),
    )


def _replay(
    step: Step,
    changes: Sequence[Change],
    current: Callable[[Change], Json],
    direction: Direction,
    force: bool,
    moved: str | None,
) -> StepPlan:
    """One step's recorded changes against the live values: done, to do, or refused. A plan
    file's refusal blocks the step's changes (a reviewed change is made as a whole or not);
    a rollback's holds back only the setting someone changed, and the others go back."""
    since = "the run" if direction == "undo" else "the plan"
    todo: list[Change] = []
    unchanged: list[str] = []
    refused: list[str] = [moved] if moved else []
    held: list[tuple[Change, str]] = []
    for change in changes:
        start, goal = (change.after, change.before) if direction == "undo" else (
            change.before, change.after
        )  # fmt: skip
        live = current(change)
        if step.same(change.setting, live, goal):
            unchanged.append(f"{change.resource} {step.render_setting(change.setting)}")
            continue
        back = Change(step.name, change.resource, change.setting, live, goal)
        if force or step.same(change.setting, live, start):
            todo.append(back)
            continue
        why = (
            f"{change.resource} {step.render_setting(change.setting)} is "
            f"{step.render_value(change.setting, live)}, {since} "
            + ("set " if direction == "undo" else "expected ")
            + step.render_value(change.setting, start)
        )
        if direction == "undo":  # field by field: this setting stays, the others go back
            held.append((back, f"changed since the run: {why} (--force rolls it back anyway)"))
        else:
            todo.append(back)
            refused.append(why)
    blocked = None
    if refused and todo:
        blocked = f"changed since {since}: " + "; ".join(refused)
        if direction == "undo":
            blocked += " (--force rolls it back anyway)"
    notes = tuple(f"not rolled back - {reason}" for _, reason in held)
    return StepPlan(tuple(todo), tuple(unchanged), notes, blocked=blocked, held=tuple(held))


@dataclass(frozen=True)
class _Reliant:
    """Settings a rollback leaves in place that rely on another step's changes."""

    step: str  # the step relied on
    function: FunctionInventory | None  # whose settings (None: the environment's)
    who: str  # "function X", or the relying step's name
    settings: tuple[str, ...]  # as the relying step renders them
    why: tuple[str, ...]  # what they use it for (`Reliance.why`)

    def text(self) -> str:
        verb = "is" if len(self.settings) == 1 else "are"
        return (
            f"{self.who} may still {' and '.join(self.why)} "
            f"(its {', '.join(self.settings)} {verb} not rolled back)"
        )


def _reliants(step: Step, plan: StepPlan, function: FunctionInventory | None) -> list[_Reliant]:
    """What of the step's plan stays in place and relies on other steps (`relies_on`)."""
    staying = [change for change, _ in plan.held] + (list(plan.changes) if plan.blocked else [])
    found: dict[str, _Reliant] = {}
    for reliance in step.relies_on:
        settings = [
            step.render_setting(c.setting) for c in staying if c.setting in reliance.settings
        ]
        if not settings:
            continue
        who = step.name if function is None else f"function {function.name}"
        seen = found.get(reliance.step, _Reliant(reliance.step, function, who, (), ()))
        found[reliance.step] = replace(
            seen,
            settings=tuple(dict.fromkeys((*seen.settings, *settings))),
            why=tuple(dict.fromkeys((*seen.why, reliance.why))),
        )
    return list(found.values())


def _keep(
    step: Step, plan: StepPlan, reliants: Sequence[_Reliant], scope: FunctionInventory | None
) -> StepPlan:
    """The step's plan with the changes a kept setting relies on held back, saying why.
    `scope`: the function the plan is for (None: the environment's own step)."""
    relying = [
        r
        for r in reliants
        if r.step == step.name and (scope is None or r.function is None or r.function is scope)
    ]
    if not relying or plan.blocked:  # nothing relies on it, or none of it is made anyway
        return plan
    going: list[Change] = []
    held: list[tuple[Change, str]] = []
    for change in plan.changes:
        serving = [r.text() for r in relying if step.serves(change, r.function)]
        if not serving:
            going.append(change)
            continue
        reason = f"kept: {change.resource} - {'; '.join(serving)}; --force rolls it back anyway"
        held.append((change, reason))
    if not held:
        return plan
    notes = tuple(dict.fromkeys((*plan.notes, *(reason for _, reason in held))))
    return replace(plan, changes=tuple(going), notes=notes, held=(*plan.held, *held))


def _keep_prerequisites(
    steps: Mapping[str, Step],
    inventory: EnvironmentInventory,
    own: dict[str, StepPlan],
    functions: dict[str, dict[str, StepPlan]],
) -> None:
    """A rollback never deletes what a setting it leaves in place uses: a function that keeps
    its dead-letter target keeps the queue and its permission to send there. Each step says
    which of its settings rely on which step (`Step.relies_on`); that step's changes the
    setting uses (`Step.serves`) are held back with the reason, and so on down a chain."""
    while True:
        reliants = [r for name, plan in own.items() for r in _reliants(steps[name], plan, None)]
        for name_of_fn, plans in functions.items():
            fn = inventory.function(name_of_fn)
            reliants += [
                r for name, plan in plans.items() for r in _reliants(steps[name], plan, fn)
            ]
        kept = False
        for name, plan in own.items():
            own[name] = _keep(steps[name], plan, reliants, None)
            kept |= own[name] is not plan
        for name_of_fn, plans in functions.items():
            fn = inventory.function(name_of_fn)
            for name, plan in plans.items():
                plans[name] = _keep(steps[name], plan, reliants, fn)
                kept |= plans[name] is not plan
        if not kept:  # each pass holds back more, or ends: there are only so many changes
            return
