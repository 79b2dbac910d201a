"""The deployment bucket keeps versions, and expires noncurrent ones after 30 days.

Versioning protects packages against overwrite; without expiry every deploy leaves a
version that is paid for forever. The lifecycle rule is added next to the bucket's
existing rules, which are sent back unchanged (PutBucketLifecycleConfiguration replaces
the whole configuration).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Final, cast

from optimizer_async.definitions import baseline
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
)
from optimizer_async.steps.inventory import EnvironmentInventory
from optimizer_async.steps.verifying import not_planned, whole

if TYPE_CHECKING:
    from types_aiobotocore_s3.type_defs import LifecycleRuleTypeDef

VERSIONING: Final = "Versioning"
LIFECYCLE: Final = "NoncurrentVersionExpiration"
_BUCKET_ARN: Final = "arn:{partition}:s3:::{bucket}"


def _covers_bucket(rule: Mapping[str, Any]) -> bool:
    """A rule for every object: no prefix, no tag filter."""
    if rule.get("Prefix"):
        return False
    rule_filter = rule.get("Filter") or {}
    return not any(rule_filter.get(key) for key in ("Prefix", "Tag", "And"))


def expiring_days(rules: tuple[Mapping[str, Any], ...]) -> int | None:
    """The shortest noncurrent-version expiry of an enabled whole-bucket rule, if any."""
    days = [
        int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])
        for rule in rules
        if rule.get("Status") == "Enabled"
        and _covers_bucket(rule)
        and rule.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays")
    ]
    return min(days) if days else None


@dataclass(frozen=True)
class BucketState:
    name: str
    exists: bool
    versioning: str | None  # "Enabled", "Suspended" or None (never enabled)
    lifecycle_rules: tuple[Mapping[str, Any], ...]


class BucketPart(EnvironmentPart[BucketState]):
    """`lambda-deployments-{suffix}-{account}`: its versioning and lifecycle rules."""

    name: ClassVar[str] = "bucket"
    reads = (ApiCall("s3", "GetBucketVersioning"), ApiCall("s3", "GetBucketLifecycleConfiguration"))
    permissions = (
        Permission("s3:GetBucketVersioning", _BUCKET_ARN),
        Permission("s3:GetLifecycleConfiguration", _BUCKET_ARN),
    )  # fmt: skip

    async def read(self, ctx: ReadContext, environment: EnvironmentInventory) -> BucketState:
        s3 = ctx.aws.s3
        name = EnvironmentNames(environment.suffix).bucket(environment.account_id)
        versioning = await ctx.aws.find(s3.get_bucket_versioning, Bucket=name)
        if versioning is None:
            return BucketState(name, exists=False, versioning=None, lifecycle_rules=())
        lifecycle = await ctx.aws.find(s3.get_bucket_lifecycle_configuration, Bucket=name)
        rules = tuple(lifecycle.get("Rules", []) if lifecycle else [])
        return BucketState(name, True, versioning.get("Status"), rules)


BUCKET: Final = BucketPart()


class DeploymentBucket(EnvironmentStep):
    name: ClassVar[str] = "deployment_bucket"
    part = BUCKET
    writes = (
        ApiCall("s3", "PutBucketVersioning"),
        ApiCall("s3", "PutBucketLifecycleConfiguration"),
        ApiCall("s3", "DeleteBucketLifecycle"),  # rollback: the bucket had no rules
    )
    permissions = (
        Permission("s3:PutBucketVersioning", _BUCKET_ARN),
        Permission("s3:PutLifecycleConfiguration", _BUCKET_ARN),
    )

    def plan(self, ctx: PlanContext) -> StepPlan:
        bucket = ctx.environment.part(BUCKET)
        if not bucket.exists:
            return StepPlan(notes=(f"deployment bucket {bucket.name} not found; skipped",))
        changes: list[Change] = []
        unchanged: list[str] = []
        if bucket.versioning == "Enabled":
            unchanged.append(VERSIONING)
        else:
            changes.append(Change(self.name, bucket.name, VERSIONING, bucket.versioning, "Enabled"))
        wanted = ctx.targets.noncurrent_version_expiration_days
        current = expiring_days(bucket.lifecycle_rules)
        if current is not None and current <= wanted:
            unchanged.append(LIFECYCLE)
        else:
            changes.append(Change(self.name, bucket.name, LIFECYCLE, current, wanted))
        return StepPlan(tuple(changes), tuple(unchanged))

    async def apply(self, ctx: ApplyContext, changes: tuple[Change, ...]) -> None:
        s3 = ctx.aws.s3
        bucket = ctx.plan.environment.part(BUCKET)
        for change in changes:
            if change.setting == VERSIONING:
                await s3.put_bucket_versioning(
                    Bucket=bucket.name, VersioningConfiguration={"Status": "Enabled"}
                )
            else:
                rule: LifecycleRuleTypeDef = {
                    "ID": baseline.BUCKET_LIFECYCLE_RULE_ID,
                    "Status": "Enabled",
                    "Filter": {},
                    "NoncurrentVersionExpiration": {"NoncurrentDays": int(change.after)},
                }
                # The bucket's own rules go back as they were read (the call replaces them all).
                kept = [
                    cast("LifecycleRuleTypeDef", dict(r))
                    for r in bucket.lifecycle_rules
                    if r.get("ID") != rule["ID"]
                ]
                await s3.put_bucket_lifecycle_configuration(
                    Bucket=bucket.name, LifecycleConfiguration={"Rules": [*kept, rule]}
                )

    def verify(self, ctx: VerifyContext, change: Change) -> str | None:
        """The environment's own bucket: versioning on, the targets' expiry, never longer."""
        name = ctx.names.bucket(ctx.account_id)
        if change.resource != name:
            return f"{change.resource!r} is not {ctx.suffix}'s deployment bucket {name}"
        if change.setting == VERSIONING:
            if change.before not in (None, "Suspended"):
                return f"{VERSIONING} before {change.before!r} is not one it changes"
            return not_planned(change, change.before, "Enabled")
        if change.setting != LIFECYCLE:
            return f"{change.setting} is not a setting {self.name} writes"
        wanted = ctx.targets.noncurrent_version_expiration_days
        if not (whole(wanted) and wanted >= 1):
            return f"the plan's noncurrent_version_expiration_days {wanted!r} is not 1 or more"
        before = change.before
        if before is not None and not (whole(before) and before > wanted):
            return f"{LIFECYCLE} before {before!r}: {self.name} only shortens an expiry"
        return not_planned(change, before, wanted)

    def current(self, ctx: PlanContext, change: Change) -> Any:
        bucket = ctx.environment.part(BUCKET)
        if change.setting == VERSIONING:
            return bucket.versioning
        return expiring_days(bucket.lifecycle_rules)

    def same(self, setting: str, left: Json, right: Json) -> bool:
        # Versioning once enabled can only be suspended: for the bucket's objects that is
        # what "never enabled" was (new objects get no versions).
        if setting == VERSIONING and {left, right} <= {None, "Suspended"}:
            return True
        return bool(left == right)

    async def undo(
        self, ctx: ApplyContext, changes: tuple[Change, ...], image: Mapping[str, Json]
    ) -> None:
        """Versioning back to suspended (S3 cannot un-version a bucket); the lifecycle rules
        back exactly as they were, or none."""
        s3 = ctx.aws.s3
        name = ctx.plan.environment.part(BUCKET).name
        for change in changes:
            if change.setting == VERSIONING:
                await s3.put_bucket_versioning(
                    Bucket=name, VersioningConfiguration={"Status": "Suspended"}
                )
                continue
            rules = [
                cast("LifecycleRuleTypeDef", dict(rule))
                for rule in (image.get(BUCKET.name) or {}).get("lifecycle_rules") or []
            ]
            if rules:
                await s3.put_bucket_lifecycle_configuration(
                    Bucket=name, LifecycleConfiguration={"Rules": rules}
                )
            else:
                await s3.delete_bucket_lifecycle(Bucket=name)
