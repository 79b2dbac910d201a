"""The environment's dead-letter queue: SQS, encrypted at rest, messages kept 14 days.

Created when missing; an existing queue gets the attributes it lacks. A queue encrypted
with a KMS key counts as encrypted (SQS-managed SSE is not forced over the user's key).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Final, cast

from optimizer_async.definitions.naming import EnvironmentNames
from optimizer_async.steps.base import (
    ApiCall,
    ApplyContext,
    Change,
    EnvironmentPart,
    EnvironmentStep,
    Permission,
    PlanContext,
    ReadContext,
    StepPlan,
    VerifyContext,
)
from optimizer_async.steps.inventory import EnvironmentInventory, FunctionInventory
from optimizer_async.steps.verifying import not_planned, whole

if TYPE_CHECKING:
    from types_aiobotocore_sqs.literals import QueueAttributeNameType

RETENTION: Final = "MessageRetentionPeriod"
_SQS_MANAGED: Final = "SQS-managed SSE"
# What an attribute that was never set means to SQS (rollback sets it back to that).
_SQS_DEFAULTS: Final = {"MessageRetentionPeriod": "345600", "SqsManagedSseEnabled": "false"}
SSE: Final = "SqsManagedSseEnabled"
QUEUE_SETTING: Final = "Queue"
RETENTION_RANGE_S: Final = (60, 1_209_600)  # what SQS takes as MessageRetentionPeriod
_QUEUE_ARN: Final = "arn:{partition}:sqs:{region}:{account}:{queue}"


@dataclass(frozen=True)
class QueueState:
    name: str
    url: str
    arn: str
    attributes: Mapping[str, str]


class QueuePart(EnvironmentPart[QueueState | None]):
    """The queue `lambda-dlq-{suffix}` and all its attributes; None when there is none."""

    name: ClassVar[str] = "queue"
    reads = (ApiCall("sqs", "GetQueueUrl"), ApiCall("sqs", "GetQueueAttributes"))
    permissions = (
        Permission("sqs:GetQueueUrl", _QUEUE_ARN),
        Permission("sqs:GetQueueAttributes", _QUEUE_ARN),
    )

    async def read(self, ctx: ReadContext, environment: EnvironmentInventory) -> QueueState | None:
        aws = ctx.aws
        name = EnvironmentNames(environment.suffix).dead_letter_queue
        found = await aws.find(aws.sqs.get_queue_url, QueueName=name)
        if found is None:
            return None
        url = found["QueueUrl"]
        answer = await aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
        attributes = {str(key): value for key, value in answer.get("Attributes", {}).items()}
        return QueueState(name=name, url=url, arn=attributes["QueueArn"], attributes=attributes)


QUEUE: Final = QueuePart()


def queue_arn(environment: EnvironmentInventory) -> str:
    """The queue's ARN: as read, or as it will be once the step has created it."""
    queue = environment.part(QUEUE)
    if queue is not None:
        return queue.arn
    name = EnvironmentNames(environment.suffix).dead_letter_queue
    return f"arn:aws:sqs:{environment.region}:{environment.account_id}:{name}"


class DeadLetterQueue(EnvironmentStep):
    name: ClassVar[str] = "dead_letter_queue"
    part = QUEUE
    writes = (
        ApiCall("sqs", "CreateQueue"),
        ApiCall("sqs", "SetQueueAttributes"),
        ApiCall("sqs", "DeleteQueue"),  # rollback: the queue the run created
    )
    permissions = (
        Permission("sqs:CreateQueue", _QUEUE_ARN),
        Permission("sqs:SetQueueAttributes", _QUEUE_ARN),
        Permission("sqs:TagQueue", _QUEUE_ARN),
        Permission("sqs:DeleteQueue", _QUEUE_ARN),
    )

    def desired_attributes(self, ctx: PlanContext) -> dict[QueueAttributeNameType, str]:
        return {RETENTION: str(ctx.targets.dlq_retention_s), SSE: "true"}

    def plan(self, ctx: PlanContext) -> StepPlan:
        queue = ctx.environment.part(QUEUE)
        wanted = self.desired_attributes(ctx)
        name = ctx.names.dead_letter_queue
        if queue is None:
            after = {"retention_s": ctx.targets.dlq_retention_s, "encryption": _SQS_MANAGED}
            return StepPlan(changes=(Change(self.name, name, QUEUE_SETTING, None, after),))
        changes: list[Change] = []
        unchanged: list[str] = []
        if queue.attributes.get(RETENTION) != wanted[RETENTION]:
            before = queue.attributes.get(RETENTION)
            changes.append(Change(self.name, name, RETENTION, before, wanted[RETENTION]))
        else:
            unchanged.append(RETENTION)
        encrypted = queue.attributes.get(SSE) == "true" or bool(
            queue.attributes.get("KmsMasterKeyId")
        )
        if encrypted:
            unchanged.append(SSE)
        else:
            changes.append(Change(self.name, name, SSE, queue.attributes.get(SSE), "true"))
        return StepPlan(tuple(changes), tuple(unchanged))

    async def apply(self, ctx: ApplyContext, changes: tuple[Change, ...]) -> None:
        sqs = ctx.aws.sqs
        queue = ctx.plan.environment.part(QUEUE)
        if any(c.setting == QUEUE_SETTING and c.after is None for c in changes):
            if queue is not None:  # rollback: the run created it
                await sqs.delete_queue(QueueUrl=queue.url)
            return
        if queue is None:
            await sqs.create_queue(
                QueueName=ctx.plan.names.dead_letter_queue,
                Attributes=self.desired_attributes(ctx.plan),
                tags=ctx.plan.names.optimizer_tags,
            )
            return
        attributes = {
            cast("QueueAttributeNameType", change.setting): str(
                _SQS_DEFAULTS[change.setting] if change.after is None else change.after
            )
            for change in changes
        }
        await sqs.set_queue_attributes(QueueUrl=queue.url, Attributes=attributes)

    def verify(self, ctx: VerifyContext, change: Change) -> str | None:
        """Only the environment's own queue, with the attributes the targets give."""
        name = ctx.names.dead_letter_queue
        if change.resource != name:
            return f"{change.resource!r} is not {ctx.suffix}'s dead-letter queue {name}"
        retention, (low, high) = ctx.targets.dlq_retention_s, RETENTION_RANGE_S
        if not (whole(retention) and low <= retention <= high):
            return f"the plan's dlq_retention_s {retention!r} is outside SQS's {low}-{high} s"
        planned: dict[str, tuple[Any, Any]] = {
            QUEUE_SETTING: (None, {"retention_s": retention, "encryption": _SQS_MANAGED}),
            RETENTION: (change.before, str(retention)),
            SSE: (change.before, "true"),
        }
        if change.setting not in planned:
            return f"{change.setting} is not a setting {self.name} writes"
        return not_planned(change, *planned[change.setting])

    def current(self, ctx: PlanContext, change: Change) -> Any:
        queue = ctx.environment.part(QUEUE)
        if queue is None:
            return None
        if change.setting == QUEUE_SETTING:
            return {"retention_s": int(queue.attributes.get(RETENTION, 0)), "encryption": (
                _SQS_MANAGED if queue.attributes.get(SSE) == "true" else None
            )}  # fmt: skip
        return queue.attributes.get(change.setting)

    def serves(self, change: Change, function: FunctionInventory | None) -> bool:
        """A function sending its failures here needs the queue to exist; its retention
        and encryption going back leave it usable."""
        return change.setting == QUEUE_SETTING
