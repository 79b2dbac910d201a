"""Discovery and the parts' readers, async, against the test endpoint: what each part reads,
that function parts coalesce across environments, and that refresh re-reads only what it is
asked to."""

from __future__ import annotations

from collections.abc import Callable

from optimizer_async.aws.gateway import Aws
from optimizer_async.definitions.naming import EnvironmentNames
from optimizer_async.definitions.targets import Targets
from optimizer_async.execution.discovery import Discovery, parts_of
from optimizer_async.steps.alarms import ALARMS
from optimizer_async.steps.core import FUNCTION
from optimizer_async.steps.dead_letter_queue import QUEUE
from optimizer_async.steps.deployment_bucket import BUCKET
from optimizer_async.steps.evidence import METRICS, REPORT_LINES
from optimizer_async.steps.log_retention import LOG_GROUP
from optimizer_async.steps.registry import REGISTRY
from optimizer_async.steps.role_policy import ROLE_POLICIES
from optimizer_async.steps.secrets import SECRETS
from tests.conftest import EXTERNAL_ENDPOINT, ClientFactory
from tests.integration.conftest import Unique

Seed = Callable[..., list[str]]


def _count(aws: Aws, operation: str) -> int:
    return sum(n for (_, op, _), n in aws.counter.calls.items() if op == operation)


def _answered(aws: Aws, operation: str) -> int:
    return sum(
        n for (_, op, out), n in aws.counter.calls.items() if op == operation and out == "ok"
    )


def _refused(aws: Aws, operation: str) -> int:
    return _count(aws, operation) - _answered(aws, operation)


async def test_parts_are_read_and_batched_across_environments(
    aws: Aws, seed: Seed, unique: Unique
) -> None:
    suffixes = seed(unique("a"), unique("b"), unique("c"))
    discovery = Discovery(aws, parts=parts_of(REGISTRY, Targets()))
    found = await discovery.environments(suffixes)

    for suffix in suffixes:
        env = found[suffix]
        assert not isinstance(env, Exception), env
        names = EnvironmentNames(suffix)
        (fn,) = env.functions
        assert (fn.name, fn.state.memory_mb) == (names.function(), 3008)
        assert fn.part(LOG_GROUP) is not None
        assert fn.part(LOG_GROUP).retention_days is None  # type: ignore[union-attr]
        assert set(fn.part(ALARMS).values()) == {None}
        assert fn.part(METRICS).invocations > 0
        assert fn.part(REPORT_LINES).memory_max_mb is not None  # whichever way it was read
        assert env.part(QUEUE) is None
        assert all(arn for arn in env.part(SECRETS).values())
        assert env.part(BUCKET).exists
        (policy,) = env.part(ROLE_POLICIES)
        assert (policy.role_name, policy.document) == (names.role, None)
    # Three environments, one call each for the batched function parts.
    batched = ("DescribeLogGroups", "DescribeAlarms", "StartQuery")
    assert [_count(aws, op) for op in batched] == [1, 1, 1]
    # One GetMetricData; an endpoint that cannot compute Duration percentiles (LocalStack)
    # costs two questions more, asked once each, for the whole run.
    assert _answered(aws, "GetMetricData") == 1
    assert _refused(aws, "GetMetricData") == (2 if EXTERNAL_ENDPOINT else 0)
    assert _count(aws, "GetFunction") == 3
    assert _count(aws, "GetCallerIdentity") == 1


async def test_only_the_parts_of_the_chosen_steps_are_read(
    aws: Aws, seed: Seed, unique: Unique
) -> None:
    (suffix,) = seed(unique("dev"))
    discovery = Discovery(aws, parts=parts_of(REGISTRY.select(only=("alarms",)), Targets()))
    env = await discovery.environment(suffix)
    assert set(env.parts) == set()
    assert set(env.functions[0].parts) == {ALARMS.name, METRICS.name}
    read = {op for (_, op, _) in aws.counter.calls}
    # No Logs Insights scan: the alarms need the metrics only.
    assert read == {"GetCallerIdentity", "GetFunction", "DescribeAlarms", "GetMetricData"}


async def test_refresh_rereads_only_the_given_parts(
    aws: Aws, seed: Seed, unique: Unique, client: ClientFactory
) -> None:
    (suffix,) = seed(unique("dev"))
    discovery = Discovery(aws, parts=parts_of(REGISTRY, Targets()))
    before = await discovery.environment(suffix)
    names = EnvironmentNames(suffix)
    client("logs").put_retention_policy(logGroupName=names.function_log_group(), retentionInDays=14)
    client("lambda").update_function_configuration(FunctionName=names.function(), Timeout=60)
    aws.counter.calls.clear()

    after = await discovery.refresh(before, [LOG_GROUP, FUNCTION], {names.function()})

    fn = after.functions[0]
    assert fn.part(LOG_GROUP).retention_days == 14  # type: ignore[union-attr]
    assert fn.state.timeout_s == 60
    assert fn.part(ALARMS) == before.functions[0].part(ALARMS)  # kept as read
    assert {op for (_, op, _) in aws.counter.calls} == {"DescribeLogGroups", "GetFunction"}
