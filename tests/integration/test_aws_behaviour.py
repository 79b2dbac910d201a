"""How the optimizer copes with AWS's behaviour: updates in progress, 409s, failed updates,
quotas, transient faults, concurrent edits. Needs the sandbox's controls to provoke them."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest
import structlog

from optimizer_async.aws.gateway import Aws, AwsSettings
from optimizer_async.aws.iam_gate import IamGate
from optimizer_async.aws.learned import LearnedWait
from optimizer_async.definitions.targets import Targets
from optimizer_async.execution.discovery import Discovery
from optimizer_async.sandbox.clock import ManualClock
from optimizer_async.sandbox.server import EmbeddedSandbox
from optimizer_async.steps.base import ApplyContext, PlanContext
from optimizer_async.steps.function_configuration import FunctionConfiguration
from optimizer_async.steps.latest_reads import LatestReads
from tests.conftest import REGION, ClientFactory
from tests.integration.conftest import LinkedClock, Optimize, new_engine
from tests.integration.test_optimizer import assert_optimised

pytestmark = pytest.mark.sandbox_only("update windows, faults and quotas of the sandbox")
Seed = Callable[..., list[str]]


def _outcomes(sandbox: EmbeddedSandbox, operation: str) -> dict[str, int]:
    rows = sandbox.stats()["calls"]
    return {r["outcome"]: r["count"] for r in rows if r["operation"] == operation}


async def test_update_in_progress_is_waited_for(
    sandbox: EmbeddedSandbox, seed: Seed, client: ClientFactory, tmp_path: Path
) -> None:
    """Someone's deploy is in progress (on virtual time, so it stays in progress until the
    optimizer's own waiting moves the clock): the optimizer waits instead of meeting a 409."""
    seed("dev")
    lam = client("lambda")
    with sandbox.use_clock(ManualClock()) as clock, sandbox.configured(update_s=5.0):
        lam.update_function_configuration(FunctionName="lambda-function-dev", Description="deploy")
        status = lam.get_function(FunctionName="lambda-function-dev")["Configuration"]
        assert status["LastUpdateStatus"] == "InProgress"
        sandbox.reset_stats()
        settings = AwsSettings(region=REGION, endpoint_url=sandbox.endpoint_url)
        async with Aws.open(settings, clock=LinkedClock(clock)) as aws:
            run = await new_engine(aws, tmp_path).run(["dev"])
        assert clock.now() >= 5.0  # it waited the other update out
    assert all(o.status == "applied" and o.verified for o in run.environments[0].all_changes())
    assert _outcomes(sandbox, "UpdateFunctionConfiguration") == {"ok": 1}  # no 409: it waited
    assert_optimised(client, "dev")
    config = lam.get_function(FunctionName="lambda-function-dev")["Configuration"]
    assert config["Description"] == "deploy"  # the other update's change survives


async def test_the_waiters_last_read_is_the_verification(
    sandbox: EmbeddedSandbox,
    seed: Seed,
    client: ClientFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One GetFunction to discover, the waiter's polls, and none to verify: the poll that saw
    the update settled was made after the function's last write, so it is the re-read."""
    seed("dev")
    monkeypatch.setattr(random, "uniform", lambda low, high: high)  # no jitter: exact polls
    with sandbox.use_clock(ManualClock()) as clock, sandbox.configured(update_s=1.0):
        sandbox.reset_stats()
        settings = AwsSettings(region=REGION, endpoint_url=sandbox.endpoint_url)
        async with Aws.open(settings, clock=LinkedClock(clock)) as aws:
            run = await new_engine(aws, tmp_path).run(["dev"])
    changes = run.environments[0].all_changes()
    assert changes
    assert all(o.status == "applied" and o.verified for o in changes)
    # Discovery 1; the waiter at 0 and 0.5 (InProgress), 1.25 (Successful); verification 0.
    assert _outcomes(sandbox, "GetFunction") == {"ok": 4}
    assert_optimised(client, "dev")


def test_conflict_is_waited_out_and_retried(
    sandbox: EmbeddedSandbox, seed: Seed, optimize: Optimize, client: ClientFactory
) -> None:
    seed("dev", "staging")
    sandbox.reset_stats()
    with sandbox.configured(collision_rate=1.0, update_s=0.3):
        code, report = optimize("--suffix", "dev,staging")
    assert code == 0, report
    assert _outcomes(sandbox, "UpdateFunctionConfiguration") == {
        "error:ResourceConflictException": 2,
        "ok": 2,
    }
    assert report["status"] == "converged"
    assert_optimised(client, "dev")


def test_failed_update_is_reported_with_aws_reason(
    sandbox: EmbeddedSandbox, seed: Seed, optimize: Optimize
) -> None:
    seed("dev")
    with sandbox.configured(update_failure_rate=1.0, update_s=0.1):
        code, report = optimize("--suffix", "dev")
    assert code == 1
    (function,) = report["environments"][0]["functions"]
    assert function["status"] == "failed"
    failed = [c for c in function["changes"] if c["status"] == "failed"]
    assert {c["setting"] for c in failed} >= {"MemorySize", "Timeout"}
    assert "InternalError" in failed[0]["error"]
    others = [c for c in function["changes"] if c["step"] in ("log_retention", "alarms")]
    assert all(c["status"] == "applied" and c["verified"] for c in others)


def test_a_run_stays_under_the_aws_quotas(
    sandbox: EmbeddedSandbox, seed: Seed, optimize: Optimize, client: ClientFactory
) -> None:
    suffixes = seed("a1", "a2", "a3", "a4", "a5", functions_per_env=2)
    sandbox.reset_stats()
    aws_like = {"rate_limits": True, "time_scale": 10.0, "update_s": 2.5, "iam_propagation_s": 4.0}
    with sandbox.configured(**aws_like):
        code, report = optimize(
            "--suffix", ",".join(suffixes), "--time-scale", "10",
            "--function-base", "lambda-function", "--function-base", "lambda-function2",
        )  # fmt: skip
    assert code == 0, report
    assert "throttled" not in sandbox.stats()["by_outcome"]
    # PutMetricAlarm: 20 alarms at 3/s (x10) - paced, never refused.
    assert _outcomes(sandbox, "PutMetricAlarm") == {"ok": 20}


def test_transient_faults_are_ridden_out(
    sandbox: EmbeddedSandbox, seed: Seed, optimize: Optimize, client: ClientFactory
) -> None:
    seed("dev", "staging", "prod")
    sandbox.reset_stats()
    with sandbox.configured(
        fault_rate=0.1, fault_seed=11, fault_kinds=("throttle", "internal_error", "unavailable")
    ):
        code, report = optimize("--suffix", "dev,staging,prod")
    assert code == 0, report
    faults = {k: v for k, v in sandbox.stats()["by_outcome"].items() if k.startswith("fault:")}
    assert sum(faults.values()) >= 5
    assert report["api_calls"]["attempts"] > report["api_calls"]["total"]
    for suffix in ("dev", "staging", "prod"):
        assert_optimised(client, suffix)


async def test_concurrent_edit_is_merged_not_overwritten(
    sandbox: EmbeddedSandbox, seed: Seed, client: ClientFactory
) -> None:
    """Someone adds a variable between our read and our write: RevisionId catches it (412)."""
    seed("dev")
    lam = client("lambda")
    settings = AwsSettings(region=REGION, endpoint_url=sandbox.endpoint_url)
    async with Aws.open(settings) as aws:
        step = FunctionConfiguration()
        inventory = await Discovery(aws, parts=step.uses).environment("dev")
        variables = dict(inventory.functions[0].state.environment)
        with sandbox.configured(update_s=0.0):
            lam.update_function_configuration(
                FunctionName="lambda-function-dev",
                Environment={"Variables": {**variables, "ADDED_MEANWHILE": "yes"}},
            )
        ctx = PlanContext(inventory, Targets())
        fn = inventory.functions[0]
        changes = tuple(
            c for c in step.plan(ctx, fn).changes if c.setting.startswith("Environment.")
        )
        log = structlog.get_logger("test")
        await step.apply(
            ApplyContext(aws, ctx, log, IamGate(aws.clock), LearnedWait(), LatestReads()),
            fn,
            changes,
        )
        calls = dict(aws.counter.calls)

    assert calls[("lambda", "UpdateFunctionConfiguration", "PreconditionFailedException")] == 1
    variables = lam.get_function(FunctionName="lambda-function-dev")["Configuration"][
        "Environment"
    ]["Variables"]
    assert variables["ADDED_MEANWHILE"] == "yes"
    assert "DATABASE_URL_SECRET_ARN" in variables
