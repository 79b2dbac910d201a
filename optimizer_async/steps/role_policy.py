"""The inline policy the optimised functions need, with exact ARNs (least privilege).

sqs:SendMessage on the environment's dead-letter queue, secretsmanager:GetSecretValue on
its two secrets, and the two X-Ray write actions, which AWS only grants on `*`.
One policy, `lambda-optimizer-{suffix}`, on each execution role of the environment.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar, Final

from optimizer_async.steps.base import (
    ApiCall,
    ApplyContext,
    Change,
    EnvironmentStep,
    Permission,
    PlanContext,
    StepPlan,
)

SETTING: Final = "PolicyDocument"
_ROLE_ARN: Final = "arn:{partition}:iam::{account}:role/{role}"


def policy_document(queue_arn: str, secret_arns: list[str]) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DeadLetterQueue",
                "Effect": "Allow",
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
            },
            {
                "Sid": "ReadOwnSecrets",
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": sorted(secret_arns),
            },
            {
                "Sid": "XRayTracing",
                "Effect": "Allow",
                "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
                "Resource": "*",  # X-Ray's write actions support no resource-level scoping
            },
        ],
    }


def canonical(document: Mapping[str, Any] | None) -> str | None:
    """Compare documents by content, not by key order or list order."""

    def normalise(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {key: normalise(item) for key, item in sorted(value.items())}
        if isinstance(value, list):
            items = [normalise(item) for item in value]
            return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))
        return value

    return None if document is None else json.dumps(normalise(document), sort_keys=True)


class RolePolicy(EnvironmentStep):
    name: ClassVar[str] = "role_policy"
    part = "role_policies"
    reads = (ApiCall("iam", "GetRolePolicy"),)
    writes = (ApiCall("iam", "PutRolePolicy"),)
    permissions = (
        Permission("iam:GetRolePolicy", _ROLE_ARN),
        Permission("iam:PutRolePolicy", _ROLE_ARN),
    )

    def desired(self, ctx: PlanContext) -> dict[str, Any]:
        return policy_document(ctx.queue_arn, list(ctx.secret_arns.values()))

    def plan(self, ctx: PlanContext) -> StepPlan:
        wanted = self.desired(ctx)
        changes: list[Change] = []
        unchanged: list[str] = []
        for policy in ctx.environment.role_policies:
            resource = f"{policy.role_name}/{policy.policy_name}"
            if canonical(policy.document) == canonical(wanted):
                unchanged.append(resource)
            else:
                before = None if policy.document is None else dict(policy.document)
                changes.append(Change(self.name, resource, SETTING, before, wanted))
        return StepPlan(tuple(changes), tuple(unchanged))

    async def apply(self, ctx: ApplyContext, changes: tuple[Change, ...]) -> None:
        for change in changes:
            role_name, policy_name = change.resource.split("/", 1)
            await ctx.aws.call(
                "iam",
                "PutRolePolicy",
                RoleName=role_name,
                PolicyName=policy_name,
                PolicyDocument=json.dumps(change.after),
            )
