"""Expire the function's logs after the target retention; never lengthen a shorter one.

A function's log group may not exist yet (Lambda creates it on first write, then keeps it
forever); it is created here with the retention set, so it never starts out unbounded.
"""

from __future__ import annotations

from typing import ClassVar, Final

from optimizer_async.aws import errors
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

SETTING: Final = "RetentionInDays"
_LOG_GROUP_ARN: Final = "arn:{partition}:logs:{region}:{account}:log-group:{log_group}"


class LogRetention(FunctionStep):
    name: ClassVar[str] = "log_retention"
    part = "log_group"
    reads = (ApiCall("logs", "DescribeLogGroups"),)
    writes = (ApiCall("logs", "PutRetentionPolicy"), ApiCall("logs", "CreateLogGroup"))
    permissions = (
        Permission("logs:DescribeLogGroups", "arn:{partition}:logs:{region}:{account}:log-group:*"),
        Permission("logs:PutRetentionPolicy", _LOG_GROUP_ARN),
        Permission("logs:CreateLogGroup", _LOG_GROUP_ARN),
    )  # fmt: skip

    def plan(self, ctx: PlanContext, function: FunctionInventory) -> StepPlan:
        wanted = ctx.targets.function.log_retention_days
        group = function.log_group
        resource = function.state.log_group
        if wanted is None:
            return StepPlan(unchanged=(SETTING,))
        if group is None:
            return StepPlan(
                changes=(Change(self.name, resource, SETTING, None, wanted),),
                notes=(f"log group {resource} does not exist yet; created with retention",),
            )
        current = group.retention_days
        if current is not None and current <= wanted:
            note = () if current == wanted else (f"shorter retention {current} days kept",)
            return StepPlan(unchanged=(SETTING,), notes=note)
        return StepPlan(changes=(Change(self.name, resource, SETTING, current, wanted),))

    async def apply(
        self, ctx: ApplyContext, function: FunctionInventory, changes: tuple[Change, ...]
    ) -> None:
        for change in changes:
            if function.log_group is None:
                try:
                    await ctx.aws.call(
                        "logs",
                        "CreateLogGroup",
                        logGroupName=change.resource,
                        tags=ctx.plan.names.optimizer_tags,
                    )
                except Exception as error:
                    if errors.error_code(error) != "ResourceAlreadyExistsException":
                        raise
            await ctx.aws.call(
                "logs",
                "PutRetentionPolicy",
                logGroupName=change.resource,
                retentionInDays=change.after,
            )
