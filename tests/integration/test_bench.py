"""The benchmark's pieces: the sequential reference reaches our end state, and `make bench`'s
orchestration runs end to end on a tiny fleet (never a timing: bench/ prints those)."""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest

from bench import record_calls, run, sdk_reference
from bench.endstate import EndState
from bench.sequential import Reference
from optimizer_async.definitions import baseline
from optimizer_async.definitions.naming import EnvironmentNames
from tests.conftest import EXTERNAL_ENDPOINT
from tests.integration.conftest import Optimize, Unique

pytestmark = pytest.mark.integration


def test_the_reference_and_the_optimizer_reach_the_same_end_state(
    seed: Any,
    optimize: Optimize,
    unique: Unique,
    endpoint_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    theirs, ours = seed(unique("seq"), unique("opt"), functions_per_env=2)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint_url)
    bases = baseline.function_bases(2)
    reader = EndState()
    assert reader.read(theirs, bases) == reader.read(ours, bases)  # both at baseline

    Reference(time_scale=100.0).optimise(theirs, bases)
    after = reader.read(theirs, bases)
    assert after != reader.read(ours, bases)  # the comparison sees a difference
    assert {f["memory_mb"] for f in after["functions"]} == {baseline.TARGET.memory_mb}
    assert {len(f["alarms"]) for f in after["functions"]} == {2}

    code, _ = optimize("--suffix", ours, "--function-base", bases[0], "--function-base", bases[1])
    assert code == 0
    assert reader.read(ours, bases) == after


@pytest.mark.sandbox_only("the bench's own sandbox process")
def test_a_tiny_bench_runs_every_phase_and_both_tools_agree(tmp_path: Path) -> None:
    settings = run.Settings(
        environments=2,
        functions_per_env=1,
        time_scale=20.0,
        read_time_scale=20.0,
        sequential_environments=2,
        scales=(),
    )
    result = run.fleet(settings, tmp_path)

    assert result["end_state"] == {"compared": 2, "equal": True, "differing": []}
    phases = result["phases"]
    assert set(phases) == {"sequential", "dry_run", "run", "rerun"}
    assert {name: p["failures"] for name, p in phases.items()} == dict.fromkeys(phases, 0)
    assert phases["dry_run"]["status"] == "planned"
    assert phases["run"]["status"] == "converged"
    assert phases["rerun"]["status"] == "nothing_to_do"


async def test_the_sdk_reference_replays_the_calls_a_dry_run_made(
    seed: Any, unique: Unique, endpoint_url: str, tmp_path: Path
) -> None:
    """bench.record_calls keeps every call of a real dry run; bench.sdk_reference makes each
    again, with the same answers: at baseline the queue and the optimizer's policy do not
    exist yet, in the dry run and in the replay."""
    (suffix,) = seed(unique("sdk"))
    kept = tmp_path / "calls.pickle"
    argv = ["--suffix", suffix, "--function-base", baseline.function_bases(1)[0], "--dry-run"]
    argv += ["--state-dir", str(tmp_path / "state"), "--output", "json", "--log-level", "error"]
    env = {**os.environ, "AWS_ENDPOINT_URL": endpoint_url}
    with anyio.fail_after(120):
        done = await anyio.run_process(
            [sys.executable, "-m", "bench.record_calls", str(kept), "optimizer_async", *argv],
            env=env,
            check=False,
        )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert json.loads(done.stdout)["status"] == "planned"

    calls = record_calls.read(kept)
    operations = Counter(operation for _, _, operation, _ in calls)
    base = baseline.function_bases(1)[0]
    gets = [params for _, _, operation, params in calls if operation == "GetFunction"]
    assert gets == [{"FunctionName": EnvironmentNames(suffix).function(base)}]
    assert operations["GetQueueUrl"] == operations["GetRolePolicy"] == 1
    assert not {"UpdateFunctionConfiguration", "PutMetricAlarm"} & set(operations)  # a dry run

    replayed = await sdk_reference.measure(calls, endpoint_url)
    assert replayed["calls"] == len(calls)
    # GetQueueUrl and GetRolePolicy, as in the dry run; and where the endpoint computes no
    # percentiles (LocalStack), the run's two p99 questions
    assert replayed["error_answers"] == (4 if EXTERNAL_ENDPOINT else 2)
    assert replayed["cpu_s"] > 0
