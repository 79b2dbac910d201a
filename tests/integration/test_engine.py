"""The engine, async, against the test endpoint: a dry run writes nothing, a run applies and
verifies everything, and a failed step stops exactly the steps that run after it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import anyio

from optimizer_async.aws.gateway import Aws
from optimizer_async.steps.base import (
    ApiCall,
    ApplyContext,
    Change,
    EnvironmentStep,
    FunctionStep,
    Permission,
    PlanContext,
    StepPlan,
)
from optimizer_async.steps.core import FUNCTION, FUNCTION_ARN
from optimizer_async.steps.inventory import FunctionInventory
from optimizer_async.steps.secrets import SECRETS
from tests.conftest import ClientFactory
from tests.integration.conftest import Unique, new_engine

Seed = Callable[..., list[str]]


async def test_a_dry_run_plans_and_prices_without_writing(
    aws: Aws, seed: Seed, unique: Unique, tmp_path: Path
) -> None:
    suffixes = seed(unique("dev"), unique("prod"))
    run = await new_engine(aws, tmp_path, dry_run=True).run(suffixes)
    assert aws.counter.snapshot()["writes"] == 0
    assert [env.suffix for env in run.environments] == suffixes
    for env in run.environments:
        assert env.status == "planned"
        assert env.before_images is None
        assert env.total_money.net_usd > 0
        counted = {line.label for line in env.total_money.lines if line.counts}
        assert counted == {
            "compute",
            "tracing",
            "dead-letter queue",
            "secret reads",
            "log storage",
            "alarms",
        }
    assert not (tmp_path / "before-images").exists()


async def test_a_run_applies_and_verifies_every_change(
    aws: Aws, seed: Seed, unique: Unique, tmp_path: Path
) -> None:
    (suffix,) = seed(unique("dev"))
    run = await new_engine(aws, tmp_path).run([suffix])
    (env,) = run.environments
    assert env.status == "changed"
    assert env.all_changes()
    assert all(o.status == "applied" and o.verified for o in env.all_changes())
    assert env.before_images is not None
    assert await anyio.Path(env.before_images).is_file()

    again = await new_engine(aws, tmp_path).run([suffix])
    assert again.environments[0].status == "unchanged"


class _Broken(EnvironmentStep):
    name: ClassVar[str] = "broken"
    part = SECRETS
    writes = (ApiCall("secretsmanager", "TagResource"),)
    permissions = (Permission("secretsmanager:TagResource", "*"),)

    def plan(self, ctx: PlanContext) -> StepPlan:
        return StepPlan(changes=(Change(self.name, ctx.names.suffix, "Anything", None, 1),))

    async def apply(self, ctx: ApplyContext, changes: tuple[Change, ...]) -> None:
        raise RuntimeError("boom")

    def current(self, ctx: PlanContext, change: Change) -> None:
        return None


class _Tag(FunctionStep):
    """Tags the function `{name}=yes`; verified through the core part (GetFunction's tags)."""

    name: ClassVar[str] = "tag"
    part = FUNCTION
    writes = (ApiCall("lambda", "TagResource"),)
    permissions = (Permission("lambda:TagResource", FUNCTION_ARN),)
    applied: ClassVar[list[str]] = []

    def plan(self, ctx: PlanContext, function: FunctionInventory) -> StepPlan:
        if function.state.tags.get(self.name) == "yes":
            return StepPlan(unchanged=(self.name,))
        return StepPlan(changes=(Change(self.name, function.name, self.name, None, "yes"),))

    async def apply(
        self, ctx: ApplyContext, function: FunctionInventory, changes: tuple[Change, ...]
    ) -> None:
        self.applied.append(self.name)
        await ctx.aws.lambda_.tag_resource(Resource=function.state.arn, Tags={self.name: "yes"})

    def current(self, ctx: PlanContext, function: FunctionInventory, change: Change) -> object:
        return function.state.tags.get(self.name)


class _TagAfterBroken(_Tag):
    name: ClassVar[str] = "tag_after_broken"
    after: ClassVar[tuple[str, ...]] = ("broken",)


async def test_a_failed_step_stops_only_the_steps_after_it(
    aws: Aws, seed: Seed, unique: Unique, tmp_path: Path, client: ClientFactory
) -> None:
    (suffix,) = seed(unique("dev"))
    _Tag.applied.clear()
    engine = new_engine(aws, tmp_path, (_Broken(), _Tag(), _TagAfterBroken()))
    run = await engine.run([suffix])
    (env,) = run.environments
    outcomes = {o.change.step: o for o in env.all_changes()}
    # What a person watching saw: the failed change and the one not attempted after it.
    counts = engine.settings.progress
    assert (counts.discovered, counts.planned, counts.applied, counts.verified) == (1, 1, 1, 1)
    assert counts.failed == 2
    assert (outcomes["broken"].status, outcomes["broken"].error) == (
        "failed",
        "RuntimeError: boom",
    )
    assert (outcomes["tag_after_broken"].status, outcomes["tag_after_broken"].error) == (
        "failed",
        "not attempted: broken failed (RuntimeError: boom)",
    )
    assert (outcomes["tag"].status, outcomes["tag"].verified) == ("applied", True)
    assert _Tag.applied == ["tag"]
    function = client("lambda").get_function(FunctionName=f"lambda-function-{suffix}")
    assert function["Tags"].get("tag") == "yes"
    assert "tag_after_broken" not in function["Tags"]
    assert env.status == "failed"
