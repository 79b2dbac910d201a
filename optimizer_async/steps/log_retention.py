"""Expire the function's logs after the target retention; never lengthen a shorter one.

A function's log group may not exist yet (Lambda creates it on first write, then keeps it
forever); it is created here with the retention set, so it never starts out unbounded. A
rollback deletes such a group again while it is empty, and otherwise removes its retention.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Final

from optimizer_async.aws import errors
from optimizer_async.aws.batching import fetch_batches
from optimizer_async.aws.limits import check_log_retention_days
from optimizer_async.definitions.naming import log_group_name
from optimizer_async.steps import monthly
from optimizer_async.steps.base import (
    ApiCall,
    ApplyContext,
    Change,
    FunctionItems,
    FunctionPart,
    FunctionStep,
    Json,
    MoneyLine,
    Permission,
    PlanContext,
    ReadContext,
    StepPlan,
    VerifyContext,
)
from optimizer_async.steps.evidence import METRICS
from optimizer_async.steps.inventory import EnvironmentInventory, FunctionInventory, FunctionState
from optimizer_async.steps.verifying import not_planned, whole

if TYPE_CHECKING:
    from optimizer_async.aws.gateway import Aws

SETTING: Final = "RetentionInDays"
_LOG_GROUP_ARN: Final = "arn:{partition}:logs:{region}:{account}:log-group:{log_group}"
_LOG_GROUPS_PER_CALL: Final = 50  # DescribeLogGroups' logGroupIdentifiers limit


@dataclass(frozen=True)
class LogGroupState:
    name: str
    retention_days: int | None
    stored_bytes: int


async def _fetch(aws: Aws, names: Sequence[str]) -> Mapping[str, LogGroupState]:
    found: dict[str, LogGroupState] = {}
    async for page in aws.pages(
        "nextToken", aws.logs.describe_log_groups, logGroupIdentifiers=list(names)
    ):
        for group in page.get("logGroups", []):
            name = str(group.get("logGroupName"))
            found[name] = LogGroupState(
                name=name,
                retention_days=group.get("retentionInDays"),
                stored_bytes=int(group.get("storedBytes", 0)),
            )
    return found


class LogGroupPart(FunctionPart[LogGroupState | None]):
    """The function's log group (LoggingConfig's, else `/aws/lambda/{name}`); None if none."""

    name: ClassVar[str] = "log_group"
    reads = (ApiCall("logs", "DescribeLogGroups"),)
    permissions = (
        Permission("logs:DescribeLogGroups", "arn:{partition}:logs:{region}:{account}:log-group:*"),
    )

    async def read(
        self, ctx: ReadContext, environment: EnvironmentInventory, function: FunctionState
    ) -> LogGroupState | None:
        loader = ctx.batched(self.name, lambda names: _fetch(ctx.aws, names), _LOG_GROUPS_PER_CALL)
        return await loader.load(function.log_group)

    async def read_many(
        self, ctx: ReadContext, items: FunctionItems
    ) -> Mapping[str, LogGroupState | Exception | None]:
        """One DescribeLogGroups per 50 distinct log groups."""
        found = await fetch_batches(
            (function.log_group for _, function in items),
            _LOG_GROUPS_PER_CALL,
            lambda names: _fetch(ctx.aws, names),
        )
        return {function.name: found.get(function.log_group) for _, function in items}


LOG_GROUP: Final = LogGroupPart()


class LogRetention(FunctionStep):
    name: ClassVar[str] = "log_retention"
    part = LOG_GROUP
    uses = (METRICS,)  # the log group's ingestion, for the storage it will settle at
    reads = (ApiCall("logs", "DescribeLogStreams"),)  # rollback: has a created group logs?
    writes = (
        ApiCall("logs", "PutRetentionPolicy"),
        ApiCall("logs", "CreateLogGroup"),
        ApiCall("logs", "DeleteRetentionPolicy"),  # rollback: logs were kept forever
        ApiCall("logs", "DeleteLogGroup"),  # rollback: the group the run created, still empty
    )
    permissions = (
        Permission("logs:PutRetentionPolicy", _LOG_GROUP_ARN),
        Permission("logs:CreateLogGroup", _LOG_GROUP_ARN),
        Permission("logs:TagResource", _LOG_GROUP_ARN),
        Permission("logs:DeleteRetentionPolicy", _LOG_GROUP_ARN),
        Permission("logs:DescribeLogStreams", _LOG_GROUP_ARN),
        Permission("logs:DeleteLogGroup", _LOG_GROUP_ARN),
    )

    def plan(self, ctx: PlanContext, function: FunctionInventory) -> StepPlan:
        wanted = ctx.targets.function.log_retention_days
        group = function.part(LOG_GROUP)
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
        logs = ctx.aws.logs
        for change in changes:
            if change.after is None:  # rollback: its retention goes, as before the run
                # (`undo` deletes a group the run created while it is still empty)
                if function.part(LOG_GROUP) is not None:
                    await logs.delete_retention_policy(logGroupName=change.resource)
                continue
            if function.part(LOG_GROUP) is None:
                try:
                    await logs.create_log_group(
                        logGroupName=change.resource, tags=ctx.plan.names.optimizer_tags
                    )
                except Exception as error:
                    if errors.error_code(error) != "ResourceAlreadyExistsException":
                        raise
            await logs.put_retention_policy(
                logGroupName=change.resource, retentionInDays=int(change.after)
            )

    def money(
        self, ctx: PlanContext, function: FunctionInventory, changes: Sequence[Change]
    ) -> tuple[MoneyLine, ...]:
        """Stored logs fall to the steady state of the new retention."""
        group, metrics = function.part(LOG_GROUP), function.part(METRICS)
        per_day = metrics.ingested_bytes / max(metrics.lookback_days, 1)
        stored = 0.0 if group is None else float(group.stored_bytes)
        lines: list[MoneyLine] = []
        for change in changes:
            if change.after is not None:
                days_before = None if change.before is None else int(change.before)
                lines += monthly.log_storage(
                    stored, per_day, days_before, int(change.after), ctx.prices
                )
        return tuple(lines)

    def verify(self, ctx: VerifyContext, change: Change) -> str | None:
        """The recorded function's own log group (apply checks the record against the live
        function), the targets' retention, and only ever shorter than before."""
        assert ctx.function is not None  # plan_check hands a function step its function
        group = ctx.functions[ctx.function].get("log_group")
        default = isinstance(group, str) and group.startswith("/aws/lambda/")
        if default and group != log_group_name(ctx.function):  # another function's default
            return f"the recorded log group {group} is not {ctx.function}'s"
        if change.resource != group:
            return f"{change.resource!r} is not the log group of {ctx.function} ({group})"
        if change.setting != SETTING:
            return f"{change.setting} is not a setting {self.name} writes"
        wanted = ctx.targets.function.log_retention_days
        if wanted is None:
            return "the plan's targets keep logs forever: nothing to set"
        if not whole(change.after):
            return f"{SETTING} {change.after!r} is not a whole number"
        try:
            check_log_retention_days(change.after)
        except ValueError as error:
            return str(error)
        before = change.before
        if before is not None and not (whole(before) and before > wanted):
            return f"{SETTING} before {before!r}: {self.name} only shortens a retention"
        return not_planned(change, before, wanted)

    def current(self, ctx: PlanContext, function: FunctionInventory, change: Change) -> Any:
        group = function.part(LOG_GROUP)
        return None if group is None else group.retention_days

    async def undo(
        self,
        ctx: ApplyContext,
        function: FunctionInventory,
        changes: tuple[Change, ...],
        image: Mapping[str, Json],
    ) -> None:
        """A log group the run created (none in the before-image) goes again, tags and all,
        while it holds no log stream; once the function has logged to it, it stays with its
        retention removed, as Lambda would have made it (deleting it would lose those logs)."""
        created = LOG_GROUP.name in image and image[LOG_GROUP.name] is None
        group = function.part(LOG_GROUP)
        rest: list[Change] = []
        for change in changes:
            if created and change.after is None and group and group.name == change.resource:
                logs = ctx.aws.logs
                found = await logs.describe_log_streams(logGroupName=group.name, limit=1)
                if not found.get("logStreams"):
                    await logs.delete_log_group(logGroupName=group.name)
                    continue
                ctx.log.info(
                    "log_group.kept", log_group=group.name, reason="the function logged to it"
                )
            rest.append(change)
        if rest:
            await self.apply(ctx, function, tuple(rest))
