"""The environment's dead-letter queue: SQS, encrypted at rest, messages kept 14 days.

Created when missing; an existing queue gets the attributes it lacks. A queue encrypted
with a KMS key counts as encrypted (SQS-managed SSE is not forced over the user's key).
"""

from __future__ import annotations

from typing import ClassVar, Final

from optimizer_async.steps.base import (
    ApiCall,
    ApplyContext,
    Change,
    EnvironmentStep,
    Permission,
    PlanContext,
    StepPlan,
)

RETENTION: Final = "MessageRetentionPeriod"
SSE: Final = "SqsManagedSseEnabled"
QUEUE: Final = "Queue"
_QUEUE_ARN: Final = "arn:{partition}:sqs:{region}:{account}:{queue}"


class DeadLetterQueue(EnvironmentStep):
    name: ClassVar[str] = "dead_letter_queue"
    part = "queue"
    reads = (ApiCall("sqs", "GetQueueUrl"), ApiCall("sqs", "GetQueueAttributes"))
    writes = (ApiCall("sqs", "CreateQueue"), ApiCall("sqs", "SetQueueAttributes"))
    permissions = (
        Permission("sqs:GetQueueUrl", _QUEUE_ARN),
        Permission("sqs:GetQueueAttributes", _QUEUE_ARN),
        Permission("sqs:CreateQueue", _QUEUE_ARN),
        Permission("sqs:SetQueueAttributes", _QUEUE_ARN),
        Permission("sqs:TagQueue", _QUEUE_ARN),
    )

    def desired_attributes(self, ctx: PlanContext) -> dict[str, str]:
        return {RETENTION: str(ctx.targets.dlq_retention_s), SSE: "true"}

    def plan(self, ctx: PlanContext) -> StepPlan:
        queue = ctx.environment.queue
        wanted = self.desired_attributes(ctx)
        name = ctx.names.dead_letter_queue
        if queue is None:
            after = {"retention_s": ctx.targets.dlq_retention_s, "encryption": "SQS-managed SSE"}
            return StepPlan(changes=(Change(self.name, name, QUEUE, None, after),))
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
        queue = ctx.plan.environment.queue
        if queue is None:
            await ctx.aws.call(
                "sqs",
                "CreateQueue",
                QueueName=ctx.plan.names.dead_letter_queue,
                Attributes=self.desired_attributes(ctx.plan),
                tags=ctx.plan.names.optimizer_tags,
            )
            return
        attributes = {change.setting: str(change.after) for change in changes}
        await ctx.aws.call("sqs", "SetQueueAttributes", QueueUrl=queue.url, Attributes=attributes)
