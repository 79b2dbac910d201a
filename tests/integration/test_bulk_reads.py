"""Discovery reads each function part of the whole fleet with one bulk read: exact batches
(not whatever a batch loader's window happened to gather), the same values as reading each
function on its own, and a failed read fails only the environments it was for."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import anyio

from optimizer_async.aws.gateway import Aws
from optimizer_async.definitions.baseline import function_bases
from optimizer_async.definitions.naming import EnvironmentNames
from optimizer_async.definitions.targets import Guardrails, Targets
from optimizer_async.execution.discovery import Discovery, parts_of
from optimizer_async.steps.base import (
    ApiCall,
    EnvironmentPart,
    FunctionItems,
    FunctionPart,
    ReadContext,
)
from optimizer_async.steps.core import FUNCTION
from optimizer_async.steps.evidence import METRICS, REPORT_LINES
from optimizer_async.steps.inventory import EnvironmentInventory, FunctionState
from optimizer_async.steps.log_retention import LOG_GROUP
from optimizer_async.steps.registry import REGISTRY
from tests.conftest import EXTERNAL_ENDPOINT, ClientFactory
from tests.integration.conftest import Unique

Seed = Callable[..., list[str]]


def _count(aws: Aws, operation: str) -> int:
    return sum(n for (_, op, _), n in aws.counter.calls.items() if op == operation)


def _found(found: Mapping[str, EnvironmentInventory | Exception]) -> list[EnvironmentInventory]:
    inventories = []
    for suffix, env in found.items():
        assert not isinstance(env, Exception), (suffix, env)
        inventories.append(env)
    return inventories


async def test_discovery_makes_exact_batches_over_the_fleet(
    aws: Aws, seed: Seed, unique: Unique
) -> None:
    environments, per_env = 10, 13  # 130 functions: 260 alarm names, 130 log groups
    suffixes = seed(*(unique(f"e{i}") for i in range(environments)), functions_per_env=per_env)
    targets = Targets(guardrails=Guardrails(max_scan_gb=350.0))  # room for most, not all
    discovery = Discovery(aws, function_bases(per_env), parts_of(REGISTRY, targets), targets)

    found = _found(await discovery.environments(suffixes))

    n = environments * per_env
    assert sum(len(env.functions) for env in found) == n
    assert _count(aws, "GetFunction") == n
    assert _count(aws, "DescribeAlarms") == math.ceil(2 * n / 100)
    assert _count(aws, "DescribeLogGroups") == math.ceil(n / 50)
    # The report lines wait for the metrics part's calls: no GetMetricData of their own. An
    # endpoint without Duration percentiles (LocalStack) costs two questions in all, never
    # one per batch.
    answered = sum(
        count
        for (_, op, outcome), count in aws.counter.calls.items()
        if op == "GetMetricData" and outcome == "ok"
    )
    assert answered == math.ceil(n / 62)
    assert _count(aws, "GetMetricData") - answered == (2 if EXTERNAL_ENDPOINT else 0)
    if not EXTERNAL_ENDPOINT:  # every seeded function ran: one query per 50 log groups
        # One budget decision over the fleet: as many groups as fit, then 50 a query.
        sizes = [fn.part(METRICS).ingested_bytes for env in found for fn in env.functions]
        assert len(set(sizes)) == 1  # one profile: one size
        fit = math.floor(targets.guardrails.max_scan_gb * 1e9 / sizes[0])
        assert 0 < fit < n  # some fit, not all
        scanned = [fn for env in found for fn in env.functions if fn.part(REPORT_LINES).scan]
        assert len(scanned) == fit
        assert _count(aws, "StartQuery") == math.ceil(fit / 50)


async def test_bulk_reads_equal_reading_each_function_on_its_own(
    aws: Aws, seed: Seed, unique: Unique
) -> None:
    suffixes = seed(unique("a"), unique("b"), unique("c"), functions_per_env=2)
    parts = parts_of(REGISTRY, Targets())
    function_parts = [p for p in parts if isinstance(p, FunctionPart)]
    bulk = _found(await Discovery(aws, function_bases(2), parts).environments(suffixes))

    # `refresh` re-reads each function on its own, through the batch loaders.
    single = Discovery(aws, function_bases(2), parts)
    for env in bulk:
        everything = {fn.name for fn in env.functions}
        again = await single.refresh(env, function_parts, everything)
        for before, after in zip(env.functions, again.functions, strict=True):
            assert list(before.parts) == [p.name for p in function_parts]
            assert after.parts == before.parts


async def test_refresh_many_rereads_the_given_parts_of_many_environments_at_once(
    aws: Aws, seed: Seed, unique: Unique, client: ClientFactory
) -> None:
    suffixes = seed(unique("a"), unique("b"), unique("c"))
    discovery = Discovery(aws, parts=parts_of(REGISTRY, Targets()))
    before = {env.suffix: env for env in _found(await discovery.environments(suffixes))}
    first, second, third = (EnvironmentNames(s) for s in suffixes)
    for names in (first, second, third):
        client("logs").put_retention_policy(
            logGroupName=names.function_log_group(), retentionInDays=14
        )
    client("lambda").update_function_configuration(FunctionName=first.function(), Timeout=60)
    aws.counter.calls.clear()

    after = await discovery.refresh_many(
        [
            (before[first.suffix], [LOG_GROUP, FUNCTION], {first.function()}),
            (before[second.suffix], [LOG_GROUP], {second.function()}),
            (before[third.suffix], [LOG_GROUP], set()),  # none of its functions
        ]
    )

    fresh = {env.suffix: env.functions[0] for env in _found(after)}
    assert fresh[first.suffix].state.timeout_s == 60
    assert fresh[first.suffix].part(LOG_GROUP).retention_days == 14  # type: ignore[union-attr]
    assert fresh[second.suffix].part(LOG_GROUP).retention_days == 14  # type: ignore[union-attr]
    assert fresh[third.suffix] == before[third.suffix].functions[0]  # kept as read
    assert list(fresh[first.suffix].parts) == list(before[first.suffix].functions[0].parts)
    assert _count(aws, "DescribeLogGroups") == 1  # both environments' groups, one call
    assert _count(aws, "GetFunction") == 1
    assert {op for (_, op, _) in aws.counter.calls} == {"DescribeLogGroups", "GetFunction"}


class _Refused(FunctionPart[str]):
    """A custom part without a bulk read (the default: each function on its own), which
    fails for the functions of the `refused` environments."""

    name: ClassVar[str] = "refused_in_some"
    reads: ClassVar[tuple[ApiCall, ...]] = ()
    permissions = ()
    refused: ClassVar[set[str]] = set()

    async def read(
        self, ctx: ReadContext, environment: EnvironmentInventory, function: FunctionState
    ) -> str:
        if environment.suffix in self.refused:
            raise RuntimeError(f"no {self.name} for {function.name}")
        return function.name.upper()


async def test_a_failed_read_fails_only_its_own_environment(
    aws: Aws, seed: Seed, unique: Unique
) -> None:
    suffixes = seed(unique("a"), unique("b"), functions_per_env=2)
    part = _Refused()
    _Refused.refused = {suffixes[1]}
    discovery = Discovery(aws, function_bases(2), [part])

    found: Mapping[str, Any] = await discovery.environments(suffixes)

    good = found[suffixes[0]]
    assert [fn.part(part) for fn in good.functions] == [fn.name.upper() for fn in good.functions]
    assert isinstance(found[suffixes[1]], RuntimeError)
    assert str(found[suffixes[1]]).startswith("no refused_in_some for ")


class _Watched(Discovery):
    """Discovery whose last environment's core waits until another environment's own part
    was read: that can only happen if environment parts start as their core is read."""

    def __init__(self, *args: Any, last: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.last = last
        self.part_read = anyio.Event()
        self.cores_read: set[str] = set()

    async def _core(self, suffix: str) -> EnvironmentInventory:
        if suffix == self.last:
            await self.part_read.wait()
        found = await super()._core(suffix)
        self.cores_read.add(suffix)
        return found


class _Named(EnvironmentPart[str]):
    name: ClassVar[str] = "named"
    reads: ClassVar[tuple[ApiCall, ...]] = ()
    permissions = ()
    discovery: ClassVar[_Watched]

    async def read(self, ctx: ReadContext, environment: EnvironmentInventory) -> str:
        self.discovery.part_read.set()
        return environment.suffix.upper()


class _CoresFirst(FunctionPart[int]):
    """Records how many cores were read when the function parts began."""

    name: ClassVar[str] = "cores_first"
    reads: ClassVar[tuple[ApiCall, ...]] = ()
    permissions = ()
    discovery: ClassVar[_Watched]

    async def read(
        self, ctx: ReadContext, environment: EnvironmentInventory, function: FunctionState
    ) -> int:
        return len(self.discovery.cores_read)


async def test_environment_parts_start_as_their_core_is_read(
    aws: Aws, seed: Seed, unique: Unique
) -> None:
    suffixes = seed(unique("a"), unique("b"), unique("c"))
    discovery = _Watched(aws, parts=[_Named(), _CoresFirst()], last=suffixes[-1])
    _Named.discovery = _CoresFirst.discovery = discovery

    with anyio.fail_after(60):  # without the pipeline, the last core would wait forever
        found = _found(await discovery.environments(suffixes))

    assert [env.parts["named"] for env in found] == [suffix.upper() for suffix in suffixes]
    # function parts wait for every core: their batches span the whole fleet
    assert [fn.parts["cores_first"] for env in found for fn in env.functions] == [3, 3, 3]


class _Early(FunctionPart[str]):
    """Takes early batches of two: records each, and lets the last core be read once one
    was read. Its value says whether the function came in an early batch."""

    name: ClassVar[str] = "early"
    reads: ClassVar[tuple[ApiCall, ...]] = ()
    permissions = ()
    early_batch: ClassVar[int] = 2
    discovery: ClassVar[_Watched]
    batches: ClassVar[list[list[str]]] = []

    async def read_early(self, ctx: ReadContext, items: FunctionItems) -> None:
        self.batches.append(sorted(function.name for _, function in items))
        self.discovery.part_read.set()

    async def read(
        self, ctx: ReadContext, environment: EnvironmentInventory, function: FunctionState
    ) -> str:
        early = any(function.name in batch for batch in self.batches)
        return "early" if early else "late"


async def test_whole_early_batches_start_before_every_core_is_read(
    aws: Aws, seed: Seed, unique: Unique
) -> None:
    suffixes = seed(unique("a"), unique("b"), unique("c"))
    discovery = _Watched(aws, parts=[_Early()], last=suffixes[-1])
    _Early.discovery, _Early.batches = discovery, []

    with anyio.fail_after(60):  # without early batches, the last core would wait forever
        found = _found(await discovery.environments(suffixes))

    first_two = sorted(env.functions[0].name for env in found[:2])  # in either order
    assert _Early.batches == [first_two]  # one whole batch; the third function waits
    assert [env.functions[0].parts["early"] for env in found] == ["early", "early", "late"]
