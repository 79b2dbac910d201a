"""Runs a fleet: discover, plan, save before-images and apply per environment; then verify.

Structured concurrency with anyio: every environment is a task, every function of it a
task bounded by one CapacityLimiter (functions in flight), every step of a function a task.
Steps wait only on what they name in `after` (a function's configuration update waits for
its environment's dead-letter queue and role policy); the rest run side by side. A failure
is recorded where it happened and never cancels a sibling: one broken environment leaves
the others to converge. Verification is a fleet phase, like discovery's reads: once every
environment has applied, all of them re-read at once, so batched parts (alarms, log groups)
fill whole calls across environments. The engine knows the step contract, never a step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import structlog

from optimizer_async.aws import errors
from optimizer_async.aws.gateway import Aws
from optimizer_async.aws.iam_gate import IamGate
from optimizer_async.aws.learned import LearnedWait
from optimizer_async.aws.pricing import PriceBook
from optimizer_async.definitions.targets import Targets
from optimizer_async.execution.discovery import Discovery, Refresh, parts_of
from optimizer_async.execution.progress import Counts
from optimizer_async.execution.results import (
    ChangeOutcome,
    EnvironmentOutcome,
    Facts,
    FunctionOutcome,
)
from optimizer_async.execution.signals import StopRequest
from optimizer_async.money.costs import Money
from optimizer_async.records.snapshot import before_image
from optimizer_async.records.state import StateStore, run_key
from optimizer_async.steps import latest_reads
from optimizer_async.steps.base import (
    ApplyContext,
    Change,
    EnvironmentStep,
    FleetContext,
    FunctionStep,
    Json,
    Part,
    PlanContext,
    Step,
    StepPlan,
)
from optimizer_async.steps.core import FUNCTION
from optimizer_async.steps.inventory import EnvironmentInventory, FunctionInventory, FunctionState
from optimizer_async.steps.latest_reads import LatestReads
from optimizer_async.steps.plan import (
    EnvironmentPlan,
    FunctionPlan,
    Plan,
    failed_environment,
    plan_environment,
    plan_fleet,
)

log = structlog.get_logger("optimizer_async.engine")

# A step's run within an environment: (step name, function name, or None for the environment).
_Slot = tuple[str, str | None]


@dataclass(frozen=True)
class EngineSettings:
    targets: Targets
    steps: tuple[Step, ...]  # the run's steps, in registry order (see steps.registry.select)
    function_bases: tuple[str, ...]
    concurrency: int
    dry_run: bool
    store: StateStore  # where before-images go, under runs/{run_id}/
    run_id: str
    prices: PriceBook | None = None  # None: the dated table of each environment's region
    stop: StopRequest | None = None  # once requested, no new write starts
    # Functions read moments ago by name (`--all`'s finder): discovery takes them as read.
    known_functions: Mapping[str, FunctionState] = field(default_factory=dict)
    # (function, suffix) the finder did not take: not the environment's, whatever its base.
    refused_functions: frozenset[tuple[str, str]] = frozenset()
    progress: Counts = field(default_factory=Counts)  # what people watching the run see


@dataclass
class FleetRun:
    """Everything a run produced, for the report."""

    plan: Plan
    environments: list[EnvironmentOutcome] = field(default_factory=list)
    account: dict[str, Any] = field(default_factory=dict)  # the account-scoped parts
    inventories: dict[str, EnvironmentInventory] = field(default_factory=dict)


class Engine:
    """A forward run: plans from the targets, applies steps in `after` order, prices."""

    priced = True  # whether outcomes carry money

    def __init__(self, aws: Aws, settings: EngineSettings) -> None:
        self.aws = aws
        self.settings = settings
        self.steps = {step.name: step for step in settings.steps}
        self.parts = self._parts()
        self.discovery = Discovery(
            aws,
            settings.function_bases,
            self.parts,
            settings.targets,
            settings.known_functions,
            settings.progress,
            settings.refused_functions,
        )
        self._functions_in_flight = anyio.CapacityLimiter(settings.concurrency)
        self._iam_gate = IamGate(aws.clock)
        self._update_wait = LearnedWait()  # how long this run's function updates take
        self._account: dict[str, Any] = {}  # the account-scoped parts, once read
        self._run: FleetRun | None = None  # filled as the run goes: what `partial` reports
        self._outcomes: dict[str, EnvironmentOutcome] = {}

    # --- what a kind of run decides (a rollback overrides these) ------------------------------

    def _parts(self) -> tuple[Part[Any], ...]:
        return parts_of(self.settings.steps, self.settings.targets)

    def plan_environment(self, inventory: EnvironmentInventory) -> EnvironmentPlan:
        return plan_environment(inventory, self.settings.targets, self.settings.steps)

    async def _apply(
        self,
        step: Step,
        ctx: ApplyContext,
        fn: FunctionInventory | None,
        changes: tuple[Change, ...],
    ) -> None:
        if isinstance(step, FunctionStep) and fn is not None:
            await step.apply(ctx, fn, changes)
        elif isinstance(step, EnvironmentStep):
            await step.apply(ctx, changes)

    def _prerequisites(self, step: Step) -> tuple[str, ...]:
        """The steps that must finish first: those it runs `after`."""
        return step.after

    async def run(self, suffixes: Sequence[str]) -> FleetRun:
        inventories, plans, account = await self.discover_and_plan(suffixes)
        fleet = plan_fleet(plans, FleetContext(account), self.settings.steps)
        run = FleetRun(fleet, account=account, inventories=inventories)
        self._run, outcomes = run, self._outcomes
        applied: dict[str, EnvironmentInventory] = {}

        async def one(env_plan: EnvironmentPlan) -> None:
            inventory = inventories.get(env_plan.suffix)
            outcome = self._outcome_from_plan(env_plan, inventory)
            outcomes[env_plan.suffix] = outcome
            if self.settings.dry_run or inventory is None or env_plan.error or env_plan.is_empty:
                return
            with structlog.contextvars.bound_contextvars(suffix=env_plan.suffix):
                try:
                    await self._apply_environment(inventory, env_plan, outcome)
                except Exception as error:  # e.g. before-images could not be written
                    outcome.error = errors.describe(error)
                    log.error("environment.failed", error=outcome.error)
                    self.settings.progress.failed += 1
                    return
            applied[env_plan.suffix] = inventory

        async with anyio.create_task_group() as group:
            for env_plan in fleet.environments:
                group.start_soon(one, env_plan)
        verifying = [env.suffix for env in fleet.environments if env.suffix in applied]
        await self._verify_fleet([(applied[s], outcomes[s]) for s in verifying])
        run.environments = [outcomes[env.suffix] for env in fleet.environments]
        return run

    def partial(self) -> FleetRun:
        """What an abandoned run got to. A change applied but not re-read says so; one that
        was under way may have been made (the report says to re-run or roll back); money
        counts only what was verified."""
        run = self._run or FleetRun(Plan(()), account=self._account)
        stop = self.settings.stop
        by = f"stopped by {stop.name}" if stop and stop.requested else "abandoned"
        run.environments = [
            self._outcomes[env.suffix]
            for env in run.plan.environments
            if env.suffix in self._outcomes
        ]
        for env in run.environments:
            for change in env.all_changes():
                if change.status == "applied" and change.verified is None:
                    change.error = f"applied, not verified: {by}"
                elif change.status == "planned":
                    change.status = "failed"
                    change.error = (
                        f"not finished: {by} (its write may have been made: re-run, or roll back)"
                    )
            inventory = run.inventories.get(env.suffix)
            if inventory is not None and self.priced:
                self._price(env, inventory, verified_only=True)
        return run

    async def discover_and_plan(
        self, suffixes: Sequence[str]
    ) -> tuple[dict[str, EnvironmentInventory], list[EnvironmentPlan], dict[str, Any]]:
        inventories: dict[str, EnvironmentInventory] = {}
        plans: dict[str, EnvironmentPlan] = {}
        found: dict[str, Any] = {}

        account_error: list[str] = []

        async def account() -> None:
            try:
                found.update(await self.discovery.account())
            except Exception as error:  # e.g. AccessDenied: no environment can be planned safely
                account_error.append(f"account settings unreadable: {errors.describe(error)}")
                log.error("account.read_failed", error=account_error[0])
            self._account = found

        async def environments() -> None:
            for suffix, inventory in (await self.discovery.environments(suffixes)).items():
                if isinstance(inventory, Exception):
                    reason = f"discovery failed: {errors.describe(inventory)}"
                    log.error("environment.discovery_failed", suffix=suffix, error=reason)
                    plans[suffix] = failed_environment(suffix, reason)
                    self.settings.progress.failed += 1
                    continue
                inventories[suffix] = inventory
                plans[suffix] = self.plan_environment(inventory)
                self.settings.progress.planned += 1
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
        if account_error:
            plans = {suffix: failed_environment(suffix, account_error[0]) for suffix in suffixes}
        return inventories, [plans[s] for s in suffixes], found

    # --- one environment ----------------------------------------------------------------

    async def _apply_environment(
        self, inventory: EnvironmentInventory, plan: EnvironmentPlan, outcome: EnvironmentOutcome
    ) -> None:
        """Before-image, then every step's changes; verification comes after, fleet-wide."""
        image = before_image(
            inventory,
            self.parts,
            _planned(plan),
            [step.name for step in self.settings.steps],
            functions={c.key: fn.name for fn in plan.functions for c in fn.changes},
        )
        key = run_key(self.settings.run_id, "before-images", f"{inventory.suffix}.json")
        outcome.before_images = await self.settings.store.write(key, image)
        log.info("environment.before_image_saved", path=outcome.before_images)
        ctx = PlanContext(inventory, self.settings.targets)
        results = {o.change.key: o for o in outcome.all_changes()}
        finished: dict[_Slot, anyio.Event] = {}
        for step in self.settings.steps:
            if isinstance(step, EnvironmentStep):
                finished[(step.name, None)] = anyio.Event()
            else:
                finished.update({(step.name, fn.name): anyio.Event() for fn in plan.functions})
        failures: dict[_Slot, str] = {}

        async def run_step(step: Step, fn: FunctionInventory | None, step_plan: StepPlan) -> None:
            slot = (step.name, None if fn is None else fn.name)
            try:
                if not step_plan.changes or step_plan.blocked:
                    return
                outcomes = [results[c.key] for c in step_plan.changes]
                if self._stopping(outcomes):
                    failures[slot] = "stopped"
                    return
                for dependency in self._dependencies(step, slot[1], plan):
                    await finished[dependency].wait()
                    if dependency in failures:
                        for result in outcomes:
                            result.status = "failed"
                            result.error = (
                                f"not attempted: {dependency[0]} failed ({failures[dependency]})"
                            )
                        failures[slot] = f"{dependency[0]} failed"
                        self.settings.progress.failed += len(outcomes)
                        return
                for name in step.after_if_run:  # an order only: their outcome does not matter
                    soft = (name, slot[1])
                    if soft in finished and name not in self._prerequisites(step):
                        await finished[soft].wait()
                if self._stopping(outcomes):
                    failures[slot] = "stopped"
                    return
                error = await self._run_step(step, fn, step_plan.changes, ctx, outcomes)
                if error:
                    failures[slot] = error
            finally:
                finished[slot].set()  # dependants learn the outcome either way

        async def function(fn_plan: FunctionPlan) -> None:
            fn = inventory.function(fn_plan.name)
            async with self._functions_in_flight, anyio.create_task_group() as group:
                for step in self.settings.steps:
                    if isinstance(step, FunctionStep):
                        group.start_soon(
                            run_step, step, fn, fn_plan.steps.get(step.name, StepPlan())
                        )

        async with anyio.create_task_group() as group:
            for step in self.settings.steps:
                if isinstance(step, EnvironmentStep):
                    group.start_soon(run_step, step, None, plan.steps.get(step.name, StepPlan()))
            for fn_plan in plan.functions:
                group.start_soon(function, fn_plan)

    def _stopping(self, outcomes: list[ChangeOutcome]) -> bool:
        """Asked to stop: the changes not started yet are failed, saying so."""
        stop = self.settings.stop
        if stop is None or not stop.requested:
            return False
        for result in outcomes:
            result.status, result.error = "failed", f"not started: stopped by {stop.name}"
        self.settings.progress.failed += len(outcomes)
        return True

    def _dependencies(self, step: Step, function: str | None, plan: EnvironmentPlan) -> list[_Slot]:
        """The step runs the `after` steps must have finished, in this environment."""
        slots: list[_Slot] = []
        for name in self._prerequisites(step):
            if self.steps[name].scope == "environment":
                slots.append((name, None))
            elif function is not None:
                slots.append((name, function))
            else:
                slots.extend((name, fn.name) for fn in plan.functions)
        return slots

    async def _run_step(
        self,
        step: Step,
        fn: FunctionInventory | None,
        changes: tuple[Change, ...],
        ctx: PlanContext,
        results: list[ChangeOutcome],
    ) -> str | None:
        """Apply one step's changes; record applied or failed on each. Returns the error."""
        scope = {"step": step.name} | ({} if fn is None else {"function": fn.name})
        with structlog.contextvars.bound_contextvars(**scope):  # AWS calls inside carry it too
            started = anyio.current_time()
            latest = self.discovery.context.shared(latest_reads.SHARED_NAME, LatestReads)
            apply_ctx = ApplyContext(self.aws, ctx, log, self._iam_gate, self._update_wait, latest)
            written = fn.name if fn is not None and step.part is FUNCTION else None
            if written is not None:
                latest.begin(written)
            try:
                await self._apply(step, apply_ctx, fn, changes)
            except Exception as error:
                reason = errors.describe(error)
                for result in results:
                    result.status, result.error = "failed", reason
                self.settings.progress.failed += len(results)
                log.error("step.failed", error=reason)
                return reason
            finally:
                if written is not None:
                    latest.end(written)
            for result in results:
                result.status = "applied"
            self.settings.progress.applied += len(results)
            log.info(
                "step.applied",
                changes=len(results),
                duration_ms=round((anyio.current_time() - started) * 1000, 1),
            )
            return None

    async def _verify_fleet(
        self, environments: Sequence[tuple[EnvironmentInventory, EnvironmentOutcome]]
    ) -> None:
        """Verify every applied environment at once, as discovery reads them: one bulk
        re-read per part over all of them (`Discovery.refresh_many`), so batched parts make
        exact, full calls (100 alarm names, 50 log groups a call) across environments. A
        re-read that fails fails its own environments; a change is verified when nothing
        is left to plan for it."""
        requests: list[Refresh] = []
        for inventory, outcome in environments:
            applied = [o for o in outcome.all_changes() if o.status == "applied"]
            if applied:
                parts = list({self.steps[o.change.step].part for o in applied})
                functions = {
                    fn.name
                    for fn in outcome.functions
                    if any(c.status == "applied" for c in fn.changes)
                }
                requests.append((inventory, parts, functions))
        fresh = await self.discovery.refresh_many(requests) if requests else {}
        for inventory, outcome in environments:
            with structlog.contextvars.bound_contextvars(suffix=inventory.suffix):
                found = fresh.get(inventory.suffix)
                if isinstance(found, Exception):  # e.g. the re-read was refused
                    outcome.error = errors.describe(found)
                    log.error("environment.failed", error=outcome.error)
                    self.settings.progress.failed += 1
                    continue
                if found is not None:
                    self._judge(found, outcome)
            if self.priced:
                self._price(outcome, inventory, verified_only=True)

    def _judge(self, fresh: EnvironmentInventory, outcome: EnvironmentOutcome) -> None:
        """A change is verified when the re-read leaves nothing to plan for it."""
        applied = [o for o in outcome.all_changes() if o.status == "applied"]
        remaining = {c.key for c in self.plan_environment(fresh).changes}
        for result in applied:
            result.verified = result.change.key not in remaining
            if not result.verified:
                result.error = "re-read after the update still differs from the target"
        self.settings.progress.verified += sum(bool(o.verified) for o in applied)
        log.info(
            "environment.verified",
            changes=len(applied),
            unverified=sum(not o.verified for o in applied),
        )

    # --- outcomes and money -------------------------------------------------------------

    def _outcome_from_plan(
        self, plan: EnvironmentPlan, inventory: EnvironmentInventory | None
    ) -> EnvironmentOutcome:
        """The run's record of an environment, every planned change still `planned`."""
        outcome = EnvironmentOutcome(suffix=plan.suffix, error=plan.error)
        for step_plan in plan.steps.values():
            outcome.changes += _outcomes(step_plan)
            outcome.unchanged += list(step_plan.unchanged)
            outcome.notes += list(step_plan.notes)
        for name in plan.skipped:
            outcome.notes.append(f"{name} skipped: tagged for another environment")
        outcome.notes += list(plan.notes)
        for fn_plan in plan.functions:
            fn_outcome = FunctionOutcome(fn_plan.name)
            for step_plan in fn_plan.steps.values():
                fn_outcome.changes += _outcomes(step_plan)
                fn_outcome.unchanged += list(step_plan.unchanged)
                fn_outcome.notes += list(step_plan.notes)
                fn_outcome.decisions += list(step_plan.decisions)
            if inventory is not None:
                fn_outcome.facts = self._facts(inventory.function(fn_plan.name).parts)
            outcome.functions.append(fn_outcome)
        if inventory is not None and plan.error is None and self.priced:
            self._price(outcome, inventory, verified_only=False)
        return outcome

    def _facts(self, values: Mapping[str, Any]) -> Callable[[], Facts]:
        """What the function's parts say of it, for the report, made when asked."""
        parts = self.parts

        def facts() -> Facts:
            evidence: dict[str, Json] = {}
            columns: dict[str, str] = {}
            for part in parts:
                if part.name not in values:
                    continue
                reported = part.report(values[part.name])
                if reported is not None:
                    evidence[part.name] = reported
                columns.update(part.columns(values[part.name]) or {})
            return evidence, columns

        return facts

    def _price(
        self, outcome: EnvironmentOutcome, inventory: EnvironmentInventory, verified_only: bool
    ) -> None:
        """Each step prices its changes: the planned ones (not blocked), or, after a run,
        only those applied and verified."""

        def counted(outcomes: list[ChangeOutcome], step: str) -> list[Change]:
            return [
                o.change
                for o in outcomes
                if o.change.step == step
                and (o.status == "applied" and o.verified if verified_only else o.ok)
            ]

        ctx = PlanContext(inventory, self.settings.targets, self.settings.prices, self._account)
        own: list[Money] = []
        for step in self.settings.steps:
            if isinstance(step, EnvironmentStep):
                own.append(Money(step.money(ctx, counted(outcome.changes, step.name))))
        outcome.money = Money.total(own)
        for fn_outcome in outcome.functions:
            fn = inventory.function(fn_outcome.name)
            fn_outcome.money = Money.total(
                Money(step.money(ctx, fn, counted(fn_outcome.changes, step.name)))
                for step in self.settings.steps
                if isinstance(step, FunctionStep)
            )


def _outcomes(step_plan: StepPlan) -> list[ChangeOutcome]:
    held = [ChangeOutcome(c, status="blocked", error=reason) for c, reason in step_plan.held]
    if step_plan.blocked:
        return [
            ChangeOutcome(c, status="blocked", error=step_plan.blocked) for c in step_plan.changes
        ] + held
    return [ChangeOutcome(c) for c in step_plan.changes] + held


def _planned(plan: EnvironmentPlan) -> list[Change]:
    """The changes a run will attempt (blocked ones are not)."""
    own = [
        c for step_plan in plan.steps.values() if not step_plan.blocked for c in step_plan.changes
    ]
    return own + [
        c
        for fn in plan.functions
        for step_plan in fn.steps.values()
        if not step_plan.blocked
        for c in step_plan.changes
    ]
