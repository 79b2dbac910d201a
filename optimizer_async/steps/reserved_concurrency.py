"""Cap a function's concurrency by reserving the target amount - never below what it needs.

Only functions with no reservation get one: an existing reservation, higher or lower, was
set deliberately (to protect capacity, or to throttle) and is kept. The reservation is never
below the function's observed peak concurrency x its factor (a cap under the peak throttles
real traffic), and throttles already seen are flagged. Across the fleet, new reservations
never push the account's unreserved concurrency below AWS's floor of 100: earlier
environments (in the order given) and functions get the budget first, the rest are blocked
with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Final

from optimizer_async.aws.limits import MIN_UNRESERVED_CONCURRENCY, check_reserved_concurrency
from optimizer_async.definitions.targets import GuardrailMode, Guardrails, Targets
from optimizer_async.steps import monthly
from optimizer_async.steps.base import (
    AccountPart,
    ApiCall,
    ApplyContext,
    Change,
    Decision,
    FleetContext,
    FunctionStep,
    Json,
    MoneyLine,
    Permission,
    PlanContext,
    ReadContext,
    StepPlan,
    VerifyContext,
    to_json,
)
from optimizer_async.steps.core import FUNCTION, FUNCTION_ARN
from optimizer_async.steps.evidence import METRICS, UsageMetrics
from optimizer_async.steps.guardrails import concurrency_floor, decide
from optimizer_async.steps.inventory import FunctionInventory
from optimizer_async.steps.verifying import not_planned, whole

SETTING: Final = "ReservedConcurrentExecutions"


@dataclass(frozen=True)
class AccountConcurrency:
    account_id: str
    region: str
    limit: int
    unreserved: int


class AccountConcurrencyPart(AccountPart[AccountConcurrency]):
    """The account's concurrency limit and what is still unreserved in this region."""

    name: ClassVar[str] = "account_concurrency"
    reads = (ApiCall("lambda", "GetAccountSettings"),)
    permissions = (Permission("lambda:GetAccountSettings", "*"),)  # account-level: no resource

    def needed(self, targets: Targets) -> bool:
        return targets.function.reserved_concurrency is not None

    async def read(self, ctx: ReadContext) -> AccountConcurrency:
        settings = await ctx.aws.lambda_.get_account_settings()
        limit = settings.get("AccountLimit", {})
        return AccountConcurrency(
            account_id=await ctx.aws.account_id(),
            region=ctx.aws.region,
            limit=int(limit.get("ConcurrentExecutions", 0)),
            unreserved=int(limit.get("UnreservedConcurrentExecutions", 0)),
        )


ACCOUNT_CONCURRENCY: Final = AccountConcurrencyPart()


class ReservedConcurrency(FunctionStep):
    name: ClassVar[str] = "reserved_concurrency"
    part = FUNCTION
    uses = (ACCOUNT_CONCURRENCY, METRICS)
    writes = (
        ApiCall("lambda", "PutFunctionConcurrency"),
        ApiCall("lambda", "DeleteFunctionConcurrency"),  # rollback: there was none
    )
    permissions = (
        Permission("lambda:PutFunctionConcurrency", FUNCTION_ARN),
        Permission("lambda:DeleteFunctionConcurrency", FUNCTION_ARN),
    )

    def plan(self, ctx: PlanContext, function: FunctionInventory) -> StepPlan:
        current = function.state.reserved_concurrency
        wanted = ctx.targets.function.reserved_concurrency
        if wanted is None:
            return StepPlan(unchanged=(SETTING,))
        if current == 0:  # how an owner switches a function off: every call is throttled
            disabled = "reserved concurrency 0 kept: the function is disabled by its owner"
            return StepPlan(unchanged=(SETTING,), notes=(disabled,))
        if current is not None:
            note = () if current == wanted else (f"existing reservation {current} kept",)
            return StepPlan(unchanged=(SETTING,), notes=note)
        metrics, rules = function.part(METRICS), ctx.targets.guardrails
        notes: list[str] = []
        if metrics.throttles > 0:
            notes.append(
                f"{metrics.throttles:,.0f} throttles in the last {metrics.lookback_days} days "
                "already: the function needs more concurrency than it gets"
            )
        decision = self._decide(metrics.concurrency_max, metrics.idle, wanted, rules.mode, rules,
                                metrics.lookback_days)  # fmt: skip
        if decision.risk == "at risk":
            notes.append(f"WARNING {SETTING}: {decision.why}")
        changes: tuple[Change, ...] = ()
        if decision.chosen is not None:
            changes = (Change(self.name, function.name, SETTING, None, decision.chosen),)
        unchanged = () if changes else (SETTING,)
        return StepPlan(changes, unchanged, tuple(notes), decisions=(decision,))

    @staticmethod
    def _decide(
        peak: float | None,
        idle: bool,
        wanted: int,
        mode: GuardrailMode,
        rules: Guardrails,
        days: int,
    ) -> Decision:
        if idle or peak is None:
            floor, basis = None, f"no invocations in the last {days} days"
        else:
            floor = concurrency_floor(peak, rules)
            basis = f"peak concurrency {peak:g} x {rules.concurrency_peak_factor:g}"
        return decide(SETTING, None, wanted, floor, mode, "", basis, active=not idle)

    def guard_fleet(self, fleet: FleetContext, plans: Sequence[StepPlan]) -> list[StepPlan]:
        account = fleet.part(ACCOUNT_CONCURRENCY)
        if account is None:
            return list(plans)
        budget = account.unreserved - MIN_UNRESERVED_CONCURRENCY
        asking = [sum(int(c.after) for c in plan.changes) for plan in plans]
        fits = [False] * len(plans)
        left_over = budget
        for index, wanted in enumerate(asking):
            if wanted and wanted <= left_over:
                fits[index], left_over = True, left_over - wanted
        asked = sum(1 for wanted in asking if wanted)
        # The limit that would hold every reservation: what is reserved already, all asked
        # for, and the floor AWS keeps unreserved.
        reserved = account.limit - account.unreserved
        enough = reserved + sum(asking) + MIN_UNRESERVED_CONCURRENCY
        guarded: list[StepPlan] = []
        for plan, wanted, fit in zip(plans, asking, fits, strict=True):
            if wanted and not fit:
                reason = (
                    f"reserving {wanted} would leave the account's unreserved concurrency below "
                    f"AWS's minimum of {MIN_UNRESERVED_CONCURRENCY}: {sum(fits)} of {asked} "
                    f"reservations fit the account's limit of {account.limit}; a limit of "
                    f"{enough} would fit them all (Service Quotas: Lambda concurrent executions)"
                )
                plan = replace(plan, blocked=reason)
            guarded.append(plan)
        return guarded

    async def apply(
        self, ctx: ApplyContext, function: FunctionInventory, changes: tuple[Change, ...]
    ) -> None:
        for change in changes:
            if change.after is None:
                await ctx.aws.lambda_.delete_function_concurrency(FunctionName=function.name)
            else:
                await ctx.aws.lambda_.put_function_concurrency(
                    FunctionName=function.name, ReservedConcurrentExecutions=int(change.after)
                )

    def money(
        self, ctx: PlanContext, function: FunctionInventory, changes: Sequence[Change]
    ) -> tuple[MoneyLine, ...]:
        """The cap bounds what the function can spend: shown before and after, not netted.
        Without a reservation it can take all the account's unreserved concurrency."""
        account = ctx.account.get(ACCOUNT_CONCURRENCY.name)
        state = function.state
        lines: list[MoneyLine] = []
        for change in changes:
            if change.after is None or change.before is not None:
                continue
            before = account.unreserved if isinstance(account, AccountConcurrency) else None
            if before is None:
                continue  # the account's concurrency was not read: no exposure to compare
            lines += monthly.exposure(
                before, int(change.after), state.memory_mb, state.architecture, ctx.prices
            )
        return tuple(lines)

    def basis(self, ctx: PlanContext, function: FunctionInventory) -> Json:
        """The evidence the guardrail used: the peak concurrency, whether it ran at all."""
        return {"metrics": to_json(function.part(METRICS))}

    def verify(self, ctx: VerifyContext, change: Change) -> str | None:
        """A new reservation for a function that had none, as the guardrail decides on the
        recorded peak. (The account's unreserved floor is AWS's to enforce at apply.)"""
        if change.resource != ctx.function:
            return f"{change.resource!r} is not the function {ctx.function} it is recorded under"
        if change.setting != SETTING:
            return f"{change.setting} is not a setting {self.name} writes"
        wanted, rules = ctx.targets.function.reserved_concurrency, ctx.targets.guardrails
        if wanted is None:
            return "the plan's targets reserve no concurrency"
        if not whole(change.after):
            return f"{SETTING} {change.after!r} is not a whole number"
        try:
            check_reserved_concurrency(change.after)
        except ValueError as error:
            return str(error)
        metrics = UsageMetrics(**ctx.basis["metrics"])
        decision = self._decide(metrics.concurrency_max, metrics.idle, wanted, rules.mode, rules,
                                metrics.lookback_days)  # fmt: skip
        if decision.chosen is None:
            return f"the evidence reserves nothing: {decision.why}"
        return not_planned(change, None, decision.chosen, decision.why)

    def current(self, ctx: PlanContext, function: FunctionInventory, change: Change) -> Any:
        return function.state.reserved_concurrency
