"""A fleet made with plain boto3, its usage put exactly as AWS writes it (REPORT lines and
platform.report records through PutLogEvents, Lambda's metrics through PutMetricData),
and nothing from the sandbox's workload model: a default run sets exactly what that data
says, on the sandbox and on LocalStack alike (there, from the reports read event by
event, for LocalStack computes no Logs Insights statistics and no percentiles).

Every expectation is worked out here from the numbers the test wrote: memory = max used
x 1.25 in 64 MB steps (or the target), timeout = the p99 x 1.5 and the maximum duration
x 1.1 projected to the new memory (or the target; without a p99 the maximum stands in for
it), reservation = the peak concurrency x 1.5 (or the target).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from optimizer_async.sandbox.seeder import Seeder
from tests.aws_data import Usage, put_metrics, put_reports, usage
from tests.integration.conftest import Optimize, Unique

TARGET_MEMORY, TARGET_TIMEOUT, TARGET_RESERVATION = 1024, 30, 50
FULL_CPU_MB = 1769
# The four shapes of the issue: steady; memory-hungry; slow (two long invocations, so the
# maximum, not the p99, decides the timeout with or without a p99); bursty.
FLEET: dict[str, Usage] = {
    "steady": usage(200, (180, 412), (90.0, 800.0), peak_concurrency=8),
    "hungry": usage(200, (900, 1_800), (300.0, 2_000.0), peak_concurrency=5),
    "slow": usage(200, (120, 300), (2_000.0, 12_000.0), 3, outliers=2, outlier_ms=20_000.0),
    "bursty": usage(200, (150, 500), (50.0, 400.0), peak_concurrency=400),
}


def expected_memory(used: Usage) -> int:
    floor = math.ceil(max(used.memory_used_mb) * 1.25 / 64) * 64
    return min(3008, max(TARGET_MEMORY, floor))


def expected_timeout(used: Usage, memory_mb: int, p99_ms: float | None) -> int:
    """Above the p99 x 1.5 and the maximum x 1.1, projected; where the endpoint computes no
    p99 (LocalStack), the maximum stands in for it."""
    slowdown = min(3008, FULL_CPU_MB) / min(memory_mb, FULL_CPU_MB)
    highest = max(used.durations_ms)
    p99 = highest if p99_ms is None else p99_ms
    floor = math.ceil(max(p99 * 1.5, highest * 1.1) * slowdown / 1000)
    return max(TARGET_TIMEOUT, floor)


def expected_reservation(used: Usage) -> int:
    return max(TARGET_RESERVATION, math.ceil(used.peak_concurrency * 1.5))


@pytest.fixture
def plain_fleet(
    endpoint_url: str, client: Callable[..., Any], unique: Unique
) -> Iterator[dict[str, str]]:
    """The stack's resources made with plain boto3 (an idle profile: no usage of the
    model's), then each function's usage put as AWS writes it. Suffix -> function."""
    suffixes = {name: unique(name) for name in FLEET}
    seeder = Seeder(endpoint_url, sandbox_control=False, profiles=("idle",))
    seeded = {env.suffix: env.functions[0] for env in seeder.seed(list(suffixes.values()))}
    logs, cloudwatch = client("logs"), client("cloudwatch")
    for name, suffix in suffixes.items():
        function = seeded[suffix]
        put_reports(logs, f"/aws/lambda/{function}", FLEET[name])
        put_metrics(cloudwatch, function, FLEET[name])
    yield {name: seeded[suffix] for name, suffix in suffixes.items()}
    lam = client("lambda")
    for function in seeded.values():  # a long-lived endpoint's shared pool
        lam.delete_function_concurrency(FunctionName=function)


def _functions(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {fn["name"]: fn for env in report["environments"] for fn in env["functions"]}


def _applied(function: dict[str, Any]) -> dict[str, Any]:
    return {c["setting"]: c["after"] for c in function["changes"] if c["status"] == "applied"}


def test_a_default_run_sets_what_the_data_put_says(
    plain_fleet: dict[str, str], optimize: Optimize, client: Callable[..., Any]
) -> None:
    suffixes = [function.removeprefix("lambda-function-") for function in plain_fleet.values()]
    code, report = optimize("--suffix", ",".join(suffixes))
    assert code == 0, report
    functions = _functions(report)
    lam = client("lambda")
    for name, function in plain_fleet.items():
        used, outcome = FLEET[name], functions[function]
        lines = outcome["evidence"]["report_lines"]
        assert lines["reports"] == used.invocations, lines
        assert lines["memory_max_mb"] == max(used.memory_used_mb)
        assert lines["source"] == "logs insights" or lines["source"].startswith(
            "log events read one by one"
        )
        metrics = outcome["evidence"]["metrics"]
        assert metrics["invocations"] == used.invocations
        assert metrics["duration_max_ms"] == max(used.durations_ms)
        assert metrics["concurrency_max"] == used.peak_concurrency

        p99 = metrics["duration_p99_ms"]
        if p99 is not None:  # the 198th of 200 durations (nearest rank)
            assert p99 == sorted(used.durations_ms)[197]
        memory, timeout = expected_memory(used), expected_timeout(used, expected_memory(used), p99)
        applied = _applied(outcome)
        assert applied.get("MemorySize", 3008) == memory, name
        assert applied.get("Timeout", 300) == timeout, name
        assert applied["ReservedConcurrentExecutions"] == expected_reservation(used), name
        live = lam.get_function(FunctionName=function)
        assert live["Configuration"]["MemorySize"] == memory
        assert live["Configuration"]["Timeout"] == timeout
        assert live["Concurrency"]["ReservedConcurrentExecutions"] == expected_reservation(used)
    # the shapes show: hungry needs more than the target, slow a longer timeout, bursty more
    # concurrency; steady takes every target
    assert _applied(functions[plain_fleet["hungry"]])["MemorySize"] == 2304
    slow_p99 = functions[plain_fleet["slow"]]["evidence"]["metrics"]["duration_p99_ms"]
    assert _applied(functions[plain_fleet["slow"]])["Timeout"] == (39 if slow_p99 else 52)
    assert _applied(functions[plain_fleet["bursty"]])["ReservedConcurrentExecutions"] == 600
    assert _applied(functions[plain_fleet["steady"]])["MemorySize"] == TARGET_MEMORY
