"""Verification is batched across environments like discovery: however far apart the
environments finish applying, their re-reads of alarms and log groups share calls (100
alarm names, 50 log groups a call), and each change is still checked against AWS's answer."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import ClassVar, Final

import anyio
import pytest

from optimizer_async.aws.gateway import Aws, AwsSettings
from optimizer_async.definitions.baseline import function_bases
from optimizer_async.definitions.targets import Guardrails, Targets
from optimizer_async.execution.engine import Engine, EngineSettings
from optimizer_async.records.state import LocalStateStore
from optimizer_async.steps.alarms import Alarms
from optimizer_async.steps.base import ApplyContext, Change, Step
from optimizer_async.steps.inventory import FunctionInventory
from optimizer_async.steps.log_retention import LogRetention
from tests.conftest import REGION
from tests.integration.conftest import Unique

Seed = Callable[..., list[str]]
# Far more than the batch loader's longest wait (0.25 s): applied one environment at a time,
# each environment's re-reads would have a call of their own.
_STAGGER_S: Final = 0.4


@pytest.fixture
async def fast_aws(endpoint_url: str) -> AsyncIterator[Aws]:
    """The gateway, paced 50 times faster than AWS's quotas (the sandbox enforces none here):
    a hundred PutMetricAlarm take two seconds, not forty."""
    settings = AwsSettings(region=REGION, endpoint_url=endpoint_url, time_scale=50.0)
    async with Aws.open(settings) as gateway:
        yield gateway


def _order(suffix: str) -> int:
    return int(suffix.rsplit("-e", 1)[1])


class _StaggeredAlarms(Alarms):
    """The alarms, applied later the later the environment; in `spoiled` environments the
    alarms are deleted again after they are put (someone else removed them)."""

    spoiled: ClassVar[set[str]] = set()

    async def apply(
        self, ctx: ApplyContext, function: FunctionInventory, changes: tuple[Change, ...]
    ) -> None:
        suffix = ctx.plan.environment.suffix
        await anyio.sleep(_STAGGER_S * _order(suffix))
        await super().apply(ctx, function, changes)
        if suffix in self.spoiled:
            names = [c.resource for c in changes]
            await ctx.aws.cloudwatch.delete_alarms(AlarmNames=names)


class _StaggeredRetention(LogRetention):
    """The log retention, staggered the same way; in `spoiled` environments the log group is
    deleted after its retention is set."""

    spoiled: ClassVar[set[str]] = set()

    async def apply(
        self, ctx: ApplyContext, function: FunctionInventory, changes: tuple[Change, ...]
    ) -> None:
        suffix = ctx.plan.environment.suffix
        await anyio.sleep(_STAGGER_S * _order(suffix))
        await super().apply(ctx, function, changes)
        if suffix in self.spoiled:
            await ctx.aws.logs.delete_log_group(logGroupName=function.state.log_group)


def _engine(aws: Aws, tmp_path: Path, steps: Sequence[Step], functions: int) -> Engine:
    settings = EngineSettings(
        targets=Targets(guardrails=Guardrails(mode="off")),
        steps=tuple(steps),
        function_bases=function_bases(functions),
        concurrency=64,
        dry_run=False,
        store=LocalStateStore(tmp_path / "state"),
        run_id="20261127T000000Z-000000",
    )
    return Engine(aws, settings)


def _count(aws: Aws, operation: str) -> int:
    return sum(n for (_, op, _), n in aws.counter.calls.items() if op == operation)


async def test_verification_reads_alarms_and_log_groups_in_batches_across_environments(
    fast_aws: Aws, seed: Seed, unique: Unique, tmp_path: Path
) -> None:
    aws = fast_aws
    environments, functions = 4, 13  # 52 functions: 104 alarm names, 52 log groups
    suffixes = seed(*(unique(f"e{i}") for i in range(environments)), functions_per_env=functions)
    _StaggeredAlarms.spoiled, _StaggeredRetention.spoiled = set(), set()
    steps = (_StaggeredRetention(), _StaggeredAlarms())

    run = await _engine(aws, tmp_path, steps, functions).run(suffixes)

    changes = [c for env in run.environments for c in env.all_changes()]
    assert len(changes) == environments * functions * 3  # a retention and two alarms each
    assert all(c.status == "applied" and c.verified for c in changes)
    names, groups = environments * functions * 2, environments * functions
    # Discovery and verification alike: 100 names, 50 log groups a call (not one per
    # environment, as when each environment re-read on its own when it was done).
    assert _count(aws, "DescribeAlarms") == 2 * math.ceil(names / 100)
    assert _count(aws, "DescribeLogGroups") == 2 * math.ceil(groups / 50)


async def test_a_resource_gone_when_re_read_fails_only_its_own_verification(
    fast_aws: Aws, seed: Seed, unique: Unique, tmp_path: Path
) -> None:
    aws = fast_aws
    suffixes = seed(*(unique(f"e{i}") for i in range(3)))
    _StaggeredAlarms.spoiled = {suffixes[1]}
    _StaggeredRetention.spoiled = {suffixes[2]}
    steps = (_StaggeredRetention(), _StaggeredAlarms())

    run = await _engine(aws, tmp_path, steps, 1).run(suffixes)

    verified = {
        (env.suffix, c.change.step): c.verified
        for env in run.environments
        for c in env.all_changes()
    }
    assert verified == {
        (suffixes[0], "log_retention"): True,
        (suffixes[0], "alarms"): True,
        (suffixes[1], "log_retention"): True,
        (suffixes[1], "alarms"): False,
        (suffixes[2], "log_retention"): False,
        (suffixes[2], "alarms"): True,
    }
    failed = [c for env in run.environments for c in env.all_changes() if not c.verified]
    assert {c.error for c in failed} == {"re-read after the update still differs from the target"}
    assert [env.status for env in run.environments] == ["changed", "failed", "failed"]
    assert _count(aws, "DescribeAlarms") == 2  # one to discover, one to verify
    assert _count(aws, "DescribeLogGroups") == 2
