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

from optimizer_async.definitions.naming import EnvironmentNames
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
    VerifyContext,
    render_value,
)
from optimizer_async.steps.dead_letter_queue import QUEUE, queue_arn
from optimizer_async.steps.inventory import EnvironmentInventory, FunctionInventory
from optimizer_async.steps.secrets import SECRETS, secret_arns, secret_names
from optimizer_async.steps.verifying import not_own, not_own_secret

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


def statements(document: Json) -> list[str]:
    """A policy's statements, each as compact JSON with sorted keys (how a diff shows them)."""
    if not isinstance(document, Mapping):
        return []
    found = document.get("Statement", [])
    listed = found if isinstance(found, list) else [found]
    return [json.dumps(item, sort_keys=True, separators=(",", ":")) for item in listed]


def statement_diff(before: Json, after: Json) -> tuple[list[str], list[str], list[str]]:
    """(kept, removed, added): the statements of `after` also in `before`, those only in
    `before`, those only in `after`, each in its document's order."""
    old, new = statements(before), statements(after)
    return (
        [s for s in new if s in old],
        [s for s in old if s not in new],
        [s for s in new if s not in old],
    )


@dataclass(frozen=True)
class RolePolicyState:
    role_name: str
    policy_name: str
    document: Mapping[str, Any] | None  # None: the role has no such inline policy
    role_exists: bool = True


class RolePoliciesPart(EnvironmentPart[tuple[RolePolicyState, ...]]):
    """The optimizer's inline policy on each execution role of the environment's functions."""

    name: ClassVar[str] = "role_policies"
    reads = (
        ApiCall("iam", "GetRolePolicy"),
        ApiCall("iam", "GetRole"),  # only when the policy is not found: is the role there?
    )
    permissions = (
        Permission("iam:GetRolePolicy", _ROLE_ARN),
        Permission("iam:GetRole", _ROLE_ARN),
    )

    def problem(self, value: tuple[RolePolicyState, ...]) -> str | None:
        """A function whose execution role is gone cannot run, nor take a dead-letter
        queue or secrets: the environment is left untouched, found before any write."""
        missing = sorted({state.role_name for state in value if not state.role_exists})
        if missing:
            return f"execution role(s) not found: {', '.join(missing)}; restore them, then re-run"
        return None

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
    if answer is None:  # IAM says NoSuchEntity for a missing role and a missing policy alike
        role = await aws.find(aws.iam.get_role, RoleName=role_name)
        return RolePolicyState(role_name, policy_name, None, role_exists=role is not None)
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

    def basis(self, ctx: PlanContext) -> Json:
        """The ARNs the document grants: the queue's and the secrets'."""
        environment = ctx.environment
        return {"queue_arn": queue_arn(environment), "secret_arns": secret_arns(environment)}

    def verify(self, ctx: VerifyContext, change: Change) -> str | None:
        """Exactly the document this step writes for the environment's own queue and
        secrets, as the environment's inline policy on a role of its recorded functions."""
        if change.setting != SETTING:
            return f"{change.setting} is not a setting {self.name} writes"
        names, basis = ctx.names, ctx.basis
        arns = {entry.get("role") for entry in ctx.functions.values()}
        roles = sorted({str(arn).rsplit("/", 1)[-1] for arn in arns if arn})
        role, _, policy = change.resource.partition("/")
        if policy != names.optimizer_policy or role not in roles:
            return (
                f"{change.resource!r} is not the policy {names.optimizer_policy} on a role of "
                f"{ctx.suffix}'s functions ({', '.join(roles)})"
            )
        queue, secrets = basis["queue_arn"], basis["secret_arns"]
        if sorted(secrets) != sorted(secret_names(names)):
            return f"the recorded secrets {sorted(secrets)} are not {ctx.suffix}'s two"
        foreign = not_own(ctx, queue, "sqs", names.dead_letter_queue) or next(
            (why for name, arn in secrets.items() if (why := not_own_secret(ctx, arn, name))),
            None,
        )
        if foreign is not None:
            return f"the policy would grant {foreign}"
        wanted = policy_document(queue, list(secrets.values()))
        if not isinstance(change.after, Mapping) or canonical(change.after) != canonical(wanted):
            _, lacks, adds = statement_diff(wanted, change.after)
            what = (
                "; ".join([*(f"adds {s}" for s in adds), *(f"lacks {s}" for s in lacks)])
                or "its other fields differ"
            )
            return f"the document is not the one {self.name} writes for {ctx.suffix}: {what}"
        return None

    def review(self, change: Change) -> tuple[str, ...]:
        """The document as a diff of statements: what the role may do after, whole."""
        kept, removed, added = statement_diff(change.before, change.after)
        return (
            "```diff",
            *(f"- {s}" for s in removed),
            *(f"+ {s}" for s in added),
            *(f"  {s}" for s in kept),
            "```",
        )

    def current(self, ctx: PlanContext, change: Change) -> Any:
        for policy in ctx.environment.part(ROLE_POLICIES):
            if f"{policy.role_name}/{policy.policy_name}" == change.resource:
                return None if policy.document is None else dict(policy.document)
        return None

    def serves(self, change: Change, function: FunctionInventory | None) -> bool:
        """A function uses the policy on its own role (as it runs now), not the others'."""
        role = change.resource.split("/", 1)[0]
        return function is None or role == function.state.role_name

    def same(self, setting: str, left: Json, right: Json) -> bool:
        return canonical(left) == canonical(right)

    def render_value(self, setting: str, value: Json) -> str:
        if isinstance(value, Mapping) and "Statement" in value:
            return f"policy ({len(value['Statement'])} statements)"
        return render_value(value)
