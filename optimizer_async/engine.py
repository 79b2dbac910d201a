"""Runs a fleet: discover, plan, save before-images, apply, verify — per environment.

Structured concurrency with anyio: every environment is a task, every function of it a
task bounded by one CapacityLimiter (functions in flight), every step of a function a task.
Steps wait only on what they need (a function's configuration update waits for its
environment's dead-letter queue and role policy); the rest run side by side. A failure is
recorded where it happened and never cancels a sibling: one broken environment leaves the
others to converge.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import structlog

from optimizer_async import costs
from optimizer_async.aws import errors
from optimizer_async.aws.gateway import Aws
from optimizer_async.aws.iam_gate import IamGate
from optimizer_async.discovery import Discovery
from optimizer_async.inventory import AccountState, EnvironmentInventory
from optimizer_async.plan import (
    EnvironmentPlan,
    FunctionPlan,
    Plan,
    failed_environment,
    plan_environment,
    plan_fleet,
)
from optimizer_async.results import ChangeOutcome, EnvironmentOutcome, FunctionOutcome
from optimizer_async.snapshot import save_before_image
from optimizer_async.steps import ENVIRONMENT_STEPS, FUNCTION_STEPS, REGISTRY
from optimizer_async.steps.base import (
    ApplyContext,
    Change,
    EnvironmentStep,
    FunctionStep,
    PlanContext,
    StepPlan,
)
from optimizer_async.targets import Targets

log = structlog.get_logger("optimizer_async.engine")


@dataclass(frozen=True)
class EngineSettings:
    targets: Targets
    function_bases: tuple[str, ...]
    concurrency: int
    dry_run: bool
    before_images_dir: Path


@dataclass
class FleetRun:
    """Everything a run produced, for the report."""

    plan: Plan
    environments: list[EnvironmentOutcome] = field(default_factory=list)
    account: AccountState | None = None


class Engine:
    def __init__(self, aws: Aws, settings: EngineSettings) -> None:
        self.aws = aws
        self.settings = settings
        self.discovery = Discovery(aws, settings.function_bases)
        self._functions_in_flight = anyio.CapacityLimiter(settings.concurrency)
        self._iam_gate = IamGate()

    async def run(self, suffixes: Sequence[str]) -> FleetRun:
        inventories, plans, account = await self.discover_and_plan(suffixes)
        fleet = plan_fleet(plans, account)
        run = FleetRun(fleet, account=account)
        outcomes: dict[str, EnvironmentOutcome] = {}

        async def one(env_plan: EnvironmentPlan) -> None:
            inventory = inventories.get(env_plan.suffix)
            outcome = _outcome_from_plan(env_plan, inventory)
            outcomes[env_plan.suffix] = outcome
            if self.settings.dry_run or inventory is None or env_plan.error or env_plan.is_empty:
                return
            with structlog.contextvars.bound_contextvars(suffix=env_plan.suffix):
                try:
                    await self._apply_and_verify(inventory, env_plan, outcome)
                except Exception as error:  # e.g. before-images could not be written
                    outcome.error = errors.describe(error)
                    log.error("environment.failed", error=outcome.error)

        async with anyio.create_task_group() as group:
            for env_plan in fleet.environments:
                group.start_soon(one, env_plan)
        run.environments = [outcomes[env.suffix] for env in fleet.environments]
        return run

    async def discover_and_plan(
        self, suffixes: Sequence[str]
    ) -> tuple[dict[str, EnvironmentInventory], list[EnvironmentPlan], AccountState | None]:
        inventories: dict[str, EnvironmentInventory] = {}
        plans: dict[str, EnvironmentPlan] = {}
        found: dict[str, AccountState] = {}

        async def account() -> None:
            if self.settings.targets.function.reserved_concurrency is not None:
                found["account"] = await self.discovery.account()

        async def environments() -> None:
            for suffix, inventory in (await self.discovery.environments(suffixes)).items():
                if isinstance(inventory, Exception):
                    reason = f"discovery failed: {errors.describe(inventory)}"
                    log.error("environment.discovery_failed", suffix=suffix, error=reason)
                    plans[suffix] = failed_environment(suffix, reason)
                    continue
                inventories[suffix] = inventory
                plans[suffix] = plan_environment(inventory, self.settings.targets)
                log.info(
                    "environment.planned",
                    suffix=suffix,
                    functions=len(inventory.functions),
                    changes=len(plans[suffix].changes),
                    error=plans[suffix].error,
                )

        async with anyio.create_task_group() as group:
            group.start_soon(account)
            group.start_soon(environments)
        return inventories, [plans[s] for s in suffixes], found.get("account")

    # --- one environment ----------------------------------------------------------------

    async def _apply_and_verify(
        self, inventory: EnvironmentInventory, plan: EnvironmentPlan, outcome: EnvironmentOutcome
    ) -> None:
        image = save_before_image(self.settings.before_images_dir, inventory)
        outcome.before_images = str(image)
        log.info("environment.before_image_saved", path=str(image))
        ctx = PlanContext(inventory, self.settings.targets)
        env_results = {o.change.key: o for o in outcome.changes}
        fn_results = {o.change.key: o for fn in outcome.functions for o in fn.changes}
        finished = {step.name: anyio.Event() for step in ENVIRONMENT_STEPS}
        failures: dict[str, str] = {}

        async def environment_step(step: EnvironmentStep, step_plan: StepPlan) -> None:
            try:
                if step_plan.changes:
                    error = await self._run_step(
                        step.name,
                        lambda apply_ctx: step.apply(apply_ctx, step_plan.changes),
                        ctx,
                        [env_results[c.key] for c in step_plan.changes],
                    )
                    if error:
                        failures[step.name] = error
            finally:
                finished[step.name].set()  # dependants learn the outcome either way

        async def function(fn_plan: FunctionPlan) -> None:
            async with self._functions_in_flight, anyio.create_task_group() as group:
                for step in FUNCTION_STEPS:
                    step_plan = fn_plan.steps.get(step.name, StepPlan())
                    if step_plan.changes and not step_plan.blocked:
                        group.start_soon(function_step, step, fn_plan.name, step_plan)

        async def function_step(step: FunctionStep, name: str, step_plan: StepPlan) -> None:
            results = [fn_results[c.key] for c in step_plan.changes]
            for dependency in step.after:
                await finished[dependency].wait()
                if dependency in failures:
                    for result in results:
                        result.status = "failed"
                        result.error = (
                            f"not attempted: {dependency} failed ({failures[dependency]})"
                        )
                    return
            fn = inventory.function(name)
            with structlog.contextvars.bound_contextvars(function=name):
                await self._run_step(
                    step.name,
                    lambda apply_ctx: step.apply(apply_ctx, fn, step_plan.changes),
                    ctx,
                    results,
                )

        async with anyio.create_task_group() as group:
            for env_step in ENVIRONMENT_STEPS:
                group.start_soon(
                    environment_step, env_step, plan.steps.get(env_step.name, StepPlan())
                )
            for fn_plan in plan.functions:
                group.start_soon(function, fn_plan)

        await self._verify(inventory, outcome)
        for fn_outcome in outcome.functions:
            done = [o.change for o in fn_outcome.changes if o.status == "applied" and o.verified]
            fn_outcome.savings = costs.function_savings(inventory.function(fn_outcome.name), done)

    async def _run_step(
        self,
        step: str,
        apply: Callable[[ApplyContext], Awaitable[None]],
        ctx: PlanContext,
        results: list[ChangeOutcome],
    ) -> str | None:
        """Apply one step's changes; record applied or failed on each. Returns the error."""
        with structlog.contextvars.bound_contextvars(step=step):  # AWS calls inside carry it too
            started = anyio.current_time()
            try:
                await apply(ApplyContext(self.aws, ctx, log, self._iam_gate))
            except Exception as error:
                reason = errors.describe(error)
                for result in results:
                    result.status, result.error = "failed", reason
                log.error("step.failed", error=reason)
                return reason
            for result in results:
                result.status = "applied"
            log.info(
                "step.applied",
                changes=len(results),
                duration_ms=round((anyio.current_time() - started) * 1000, 1),
            )
            return None

    async def _verify(self, inventory: EnvironmentInventory, outcome: EnvironmentOutcome) -> None:
        """Re-read what was changed; a change is verified when nothing is left to plan for it."""
        applied = [o for o in outcome.all_changes() if o.status == "applied"]
        if not applied:
            return
        parts = {REGISTRY[o.change.step].part for o in applied}
        functions = {
            fn.name for fn in outcome.functions if any(c.status == "applied" for c in fn.changes)
        }
        fresh = await self.discovery.refresh(inventory, parts, functions)
        remaining = {c.key for c in plan_environment(fresh, self.settings.targets).changes}
        for result in applied:
            result.verified = result.change.key not in remaining
            if not result.verified:
                result.error = "re-read after the update still differs from the target"
        log.info(
            "environment.verified",
            changes=len(applied),
            unverified=sum(not o.verified for o in applied),
        )


def _outcome_from_plan(
    plan: EnvironmentPlan, inventory: EnvironmentInventory | None
) -> EnvironmentOutcome:
    """The run's record of an environment, every planned change still `planned`."""
    outcome = EnvironmentOutcome(suffix=plan.suffix, error=plan.error)
    for step_plan in plan.steps.values():
        outcome.changes += [ChangeOutcome(c) for c in step_plan.changes]
        outcome.unchanged += list(step_plan.unchanged)
        outcome.notes += list(step_plan.notes)
    for name in plan.skipped:
        outcome.notes.append(f"{name} skipped: tagged for another environment")
    for fn_plan in plan.functions:
        fn_outcome = FunctionOutcome(fn_plan.name)
        all_changes: list[Change] = []
        for step_plan in fn_plan.steps.values():
            if step_plan.blocked:
                fn_outcome.changes += [
                    ChangeOutcome(c, status="blocked", error=step_plan.blocked)
                    for c in step_plan.changes
                ]
            else:
                fn_outcome.changes += [ChangeOutcome(c) for c in step_plan.changes]
                all_changes += step_plan.changes
            fn_outcome.unchanged += list(step_plan.unchanged)
            fn_outcome.notes += list(step_plan.notes)
        if inventory is not None:
            fn_outcome.savings = costs.function_savings(
                inventory.function(fn_plan.name), all_changes
            )
        outcome.functions.append(fn_outcome)
    return outcome
