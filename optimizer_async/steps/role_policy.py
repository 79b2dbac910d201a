"""The inline policy the optimised functions need, with exact ARNs (least privilege).

sqs:SendMessage on the environment's dead-letter queue, secretsmanager:GetSecretValue on
its two secrets, and the two X-Ray write actions, which AWS only grants on `*`.
One policy, `lambda-optimizer-{suffix}`, on each execution role of the environment.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final
from urllib.parse import unquote

import anyio

from optimizer_async.inventory import EnvironmentInventory
from optimizer_async.naming import EnvironmentNames
from optimizer_async.steps.base import (
    ApiCall,
    ApplyContext,
    Change,
    EnvironmentPart,
    EnvironmentStep,
    Json,
    Permission,
    PlanContext,
    ReadContext,
    StepPlan,
    render_value,
)
from optimizer_async.steps.dead_letter_queue import QUEUE, queue_arn
from optimizer_async.steps.secrets import SECRETS, secret_arns

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


@dataclass(frozen=True)
class RolePolicyState:
    role_name: str
    policy_name: str
    document: Mapping[str, Any] | None  # None: the role has no such inline policy


class RolePoliciesPart(EnvironmentPart[tuple[RolePolicyState, ...]]):
    """The optimizer's inline policy on each execution role of the environment's functions."""

    name: ClassVar[str] = "role_policies"
    reads = (ApiCall("iam", "GetRolePolicy"),)
    permissions = (Permission("iam:GetRolePolicy", _ROLE_ARN),)

    async def read(
        self, ctx: ReadContext, environment: EnvironmentInventory
    ) -> tuple[RolePolicyState, ...]:
        policy_name = EnvironmentNames(environment.suffix).optimizer_policy
        found: dict[str, RolePolicyState] = {}

        async def one(role_name: str) -> None:
            found[role_name] = await _role_policy(ctx, role_name, policy_name)

        async with anyio.create_task_group() as group:
            for role_name in {fn.state.role_name for fn in environment.functions}:
                group.start_soon(one, role_name)
        return tuple(found[name] for name in sorted(found))


async def _role_policy(ctx: ReadContext, role_name: str, policy_name: str) -> RolePolicyState:
    aws = ctx.aws
    answer = await aws.find(aws.iam.get_role_policy, RoleName=role_name, PolicyName=policy_name)
    if answer is None:
        return RolePolicyState(role_name, policy_name, None)
    document: Any = answer["PolicyDocument"]
    if isinstance(document, str):  # IAM returns it URL-encoded; botocore may not decode
        document = json.loads(unquote(document))
    return RolePolicyState(role_name, policy_name, document)


ROLE_POLICIES: Final = RolePoliciesPart()


class RolePolicy(EnvironmentStep):
    name: ClassVar[str] = "role_policy"
    part = ROLE_POLICIES
    uses = (QUEUE, SECRETS)
    writes = (
        ApiCall("iam", "PutRolePolicy"),
        ApiCall("iam", "DeleteRolePolicy"),  # rollback: the policy the run added
    )
    permissions = (
        Permission("iam:PutRolePolicy", _ROLE_ARN),
        Permission("iam:DeleteRolePolicy", _ROLE_ARN),
    )

    def desired(self, ctx: PlanContext) -> dict[str, Any]:
        environment = ctx.environment
        return policy_document(queue_arn(environment), list(secret_arns(environment).values()))

    def plan(self, ctx: PlanContext) -> StepPlan:
        wanted = self.desired(ctx)
        changes: list[Change] = []
        unchanged: list[str] = []
        for policy in ctx.environment.part(ROLE_POLICIES):
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
            if change.after is None:
                await ctx.aws.iam.delete_role_policy(RoleName=role_name, PolicyName=policy_name)
                continue
            await ctx.aws.iam.put_role_policy(
                RoleName=role_name, PolicyName=policy_name, PolicyDocument=json.dumps(change.after)
            )
            ctx.iam_gate.written(role_name)  # Lambda sees it once IAM has propagated it

    def current(self, ctx: PlanContext, change: Change) -> Any:
        for policy in ctx.environment.part(ROLE_POLICIES):
            if f"{policy.role_name}/{policy.policy_name}" == change.resource:
                return None if policy.document is None else dict(policy.document)
        return None

    def same(self, setting: str, left: Json, right: Json) -> bool:
        return canonical(left) == canonical(right)

    def render_value(self, setting: str, value: Json) -> str:
        if isinstance(value, Mapping) and "Statement" in value:
            return f"policy ({len(value['Statement'])} statements)"
        return render_value(value)
