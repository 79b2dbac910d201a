"""The registry check against a real run: every AWS call the sandbox served was declared by
the core or by a step, reads and writes alike, with its IAM permission - in the spirit of
Cloud Custodian's policy lint, but proven by traffic rather than by reading code."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import pytest

from optimizer_async.aws.operations import iam_action, is_write
from optimizer_async.definitions.naming import EnvironmentNames
from optimizer_async.sandbox.server import EmbeddedSandbox
from optimizer_async.steps.base import (
    ApiCall,
    ApplyContext,
    Change,
    FunctionStep,
    Permission,
    PlanContext,
    StepPlan,
)
from optimizer_async.steps.core import CORE_PERMISSIONS, FUNCTION, FUNCTION_ARN
from optimizer_async.steps.inventory import FunctionInventory
from optimizer_async.steps.registry import REGISTRY, declared_calls, undeclared_calls
from tests.conftest import ClientFactory
from tests.integration.conftest import Optimize

pytestmark = pytest.mark.sandbox_only("the sandbox's per-call counts")
Seed = Callable[..., list[str]]


def _made(sandbox: EmbeddedSandbox) -> set[tuple[str, str]]:
    return {(row["service"], row["operation"]) for row in sandbox.stats()["calls"]}


def test_every_call_of_a_run_is_declared_with_its_permission(
    sandbox: EmbeddedSandbox, seed: Seed, optimize: Optimize, client: ClientFactory
) -> None:
    dev, staging = seed("dev", "staging")
    # Drift, so that every declared write has a reason to happen: dev's log group is gone,
    # staging's queue exists with the wrong retention and its bucket lost versioning.
    client("logs").delete_log_group(logGroupName=EnvironmentNames(dev).function_log_group())
    names = EnvironmentNames(staging)
    client("sqs").create_queue(
        QueueName=names.dead_letter_queue, Attributes={"MessageRetentionPeriod": "60"}
    )
    account = client("sts").get_caller_identity()["Account"]
    s3 = client("s3")
    s3.put_bucket_versioning(
        Bucket=names.bucket(account), VersioningConfiguration={"Status": "Suspended"}
    )
    s3.delete_bucket_lifecycle(Bucket=names.bucket(account))
    sandbox.reset_stats()

    assert optimize("--suffix", f"{dev},{staging}", "--dry-run")[0] == 0
    code, run = optimize("--suffix", f"{dev},{staging}")
    assert code == 0
    assert optimize("--suffix", f"{dev},{staging}")[0] == 0  # the re-run reads, writes nothing
    assert optimize("rollback", "--run-id", run["run_id"])[0] == 0  # the undo writes
    made = _made(sandbox)

    assert undeclared_calls(made, REGISTRY) == []
    declared = declared_calls(REGISTRY)
    writes = {(c.service, c.operation) for c in declared if is_write(c.operation)}
    assert writes <= made, f"declared but never made: {writes - made}"
    granted = {p.action for step in REGISTRY for p in step.declared_permissions()}
    granted |= {p.action for p in CORE_PERMISSIONS}
    needed = {iam_action(service, operation) for service, operation in made} - {None}
    assert needed <= granted, needed - granted


class _Sneaky(FunctionStep):
    """Describes the function (declared) but also lists its versions (not declared)."""

    name: ClassVar[str] = "sneaky"
    part = FUNCTION
    writes = (ApiCall("lambda", "UpdateFunctionConfiguration"),)
    permissions = (Permission("lambda:UpdateFunctionConfiguration", FUNCTION_ARN),)

    def plan(self, ctx: PlanContext, function: FunctionInventory) -> StepPlan:
        return StepPlan(changes=(Change(self.name, function.name, "Description", None, "x"),))

    async def apply(
        self, ctx: ApplyContext, function: FunctionInventory, changes: tuple[Change, ...]
    ) -> None:
        await ctx.aws.lambda_.list_versions_by_function(FunctionName=function.name)
        await ctx.aws.lambda_.update_function_configuration(
            FunctionName=function.name, Description="x"
        )

    def current(self, ctx: PlanContext, function: FunctionInventory, change: Change) -> Any:
        return None


def test_a_step_making_an_undeclared_call_is_caught(
    sandbox: EmbeddedSandbox, seed: Seed, optimize: Optimize
) -> None:
    (dev,) = seed("dev")
    sneaky = _Sneaky()
    with REGISTRY.registered(sneaky):
        sandbox.reset_stats()
        optimize("--suffix", dev, "--only", "sneaky")
        assert REGISTRY.lint() == []  # the declarations look fine on paper...
        # ...but the traffic shows the call nobody declared.
        assert undeclared_calls(_made(sandbox), [sneaky]) == ["lambda.ListVersionsByFunction"]
