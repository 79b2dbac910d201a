"""Cap a function's concurrency by reserving the target amount.

Only functions with no reservation get one: an existing reservation, higher or lower, was
set deliberately (to protect capacity, or to throttle) and is kept. The account-wide floor
(unreserved concurrency may not drop below 100) is enforced for the whole fleet in `plan.py`.
"""

from __future__ import annotations

from typing import ClassVar, Final

from optimizer_async.inventory import FunctionInventory
from optimizer_async.steps.base import (
    ApiCall,
    ApplyContext,
    Change,
    FunctionStep,
    Permission,
    PlanContext,
    StepPlan,
)

SETTING: Final = "ReservedConcurrentExecutions"


class ReservedConcurrency(FunctionStep):
    name: ClassVar[str] = "reserved_concurrency"
    part = "function"
    reads = (ApiCall("lambda", "GetFunction"), ApiCall("lambda", "GetAccountSettings"))
    writes = (ApiCall("lambda", "PutFunctionConcurrency"),)
    permissions = (
        Permission(
            "lambda:PutFunctionConcurrency",
            "arn:{partition}:lambda:{region}:{account}:function:{function}",
        ),
        Permission("lambda:GetAccountSettings", "*"),  # an account-level call: no resource
    )

    def plan(self, ctx: PlanContext, function: FunctionInventory) -> StepPlan:
        current = function.state.reserved_concurrency
        wanted = ctx.targets.function.reserved_concurrency
        if wanted is None:
            return StepPlan(unchanged=(SETTING,))
        if current is None:
            return StepPlan(changes=(Change(self.name, function.name, SETTING, None, wanted),))
        note = () if current == wanted else (f"existing reservation {current} kept",)
        return StepPlan(unchanged=(SETTING,), notes=note)

    async def apply(
        self, ctx: ApplyContext, function: FunctionInventory, changes: tuple[Change, ...]
    ) -> None:
        for change in changes:
            await ctx.aws.call(
                "lambda",
                "PutFunctionConcurrency",
                FunctionName=function.name,
                ReservedConcurrentExecutions=change.after,
            )
