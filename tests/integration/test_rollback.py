"""Rollback: a run undone field by field from its before-images, idempotently, refusing what
someone changed since, and from whatever a killed run left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from optimizer_async.inventory import EnvironmentVariables
from optimizer_async.naming import EnvironmentNames
from optimizer_async.sandbox.server import EmbeddedSandbox
from optimizer_async.state import FINGERPRINT_KEY_NAME
from tests.conftest import ClientFactory
from tests.integration.conftest import Optimize, Unique

Seed = Callable[..., list[str]]


def _image(report: dict[str, Any]) -> dict[str, Any]:
    (env,) = report["environments"]
    image: dict[str, Any] = json.loads(Path(env["before_images"]).read_text())
    return image


def state_key(root: Path) -> bytes:
    """The state dir's fingerprint key (HMAC of the variables in before-images)."""
    return bytes.fromhex(json.loads((root / FINGERPRINT_KEY_NAME).read_text())["key"])


def _key(report: dict[str, Any]) -> bytes:
    (env,) = report["environments"]
    return state_key(Path(env["before_images"]).parents[3])  # {root}/runs/{id}/before-images


def assert_as_before(client: ClientFactory, image: dict[str, Any], key: bytes) -> None:
    """Every setting the optimizer manages, read with boto3, equals the before-image."""
    lam, logs, cw, sqs, iam = (client(s) for s in ("lambda", "logs", "cloudwatch", "sqs", "iam"))
    names = EnvironmentNames(image["suffix"])
    for function in image["functions"]:
        answer = lam.get_function(FunctionName=function["name"])
        config = answer["Configuration"]
        assert config["MemorySize"] == function["memory_mb"]
        assert config["Timeout"] == function["timeout_s"]
        assert config["TracingConfig"]["Mode"] == function["tracing_mode"]
        target = (config.get("DeadLetterConfig") or {}).get("TargetArn") or None
        assert target == function["dead_letter_target"]
        reserved = (answer.get("Concurrency") or {}).get("ReservedConcurrentExecutions")
        assert reserved == function["reserved_concurrency"]
        variables = EnvironmentVariables(config["Environment"]["Variables"])
        assert sorted(variables) == function["environment_variable_names"]
        assert variables.fingerprint(key) == function["environment_fingerprint"]  # byte for byte
        group = function["log_group"]
        found = logs.describe_log_groups(logGroupNamePrefix=group["name"])["logGroups"]
        assert [g.get("retentionInDays") for g in found] == [group["retention_days"]]
        alarms = cw.describe_alarms(AlarmNames=list(function["alarms"]))["MetricAlarms"]
        now = {a["AlarmName"]: (a["Threshold"], a["ComparisonOperator"]) for a in alarms}
        before = {
            name: (a["Threshold"], a["ComparisonOperator"])
            for name, a in function["alarms"].items()
            if a is not None
        }
        assert now == before
    queue = image["queue"]
    urls = sqs.list_queues(QueueNamePrefix=names.dead_letter_queue).get("QueueUrls", [])
    if queue is None:
        assert urls == []
    else:
        attributes = sqs.get_queue_attributes(QueueUrl=urls[0], AttributeNames=["All"])
        for attribute in ("MessageRetentionPeriod", "SqsManagedSseEnabled"):
            assert attributes["Attributes"].get(attribute) == queue["attributes"].get(attribute)
    for policy in image["role_policies"]:
        inline = iam.list_role_policies(RoleName=policy["role_name"])["PolicyNames"]
        assert (policy["policy_name"] in inline) == (policy["document"] is not None)


def test_a_run_rolled_back_is_as_before_and_a_second_rollback_writes_nothing(
    seed: Seed, optimize: Optimize, client: ClientFactory, unique: Unique
) -> None:
    (dev,) = seed(unique("dev"))
    names = EnvironmentNames(dev)
    function = names.function()
    # Things that were there before the run: an alarm it rewrites, a queue it corrects.
    client("cloudwatch").put_metric_alarm(
        AlarmName=f"duration-{function}", Namespace="AWS/Lambda", MetricName="Duration",
        Dimensions=[{"Name": "FunctionName", "Value": function}], Statistic="Maximum",
        Period=300, EvaluationPeriods=2, Threshold=45_000.0,
        ComparisonOperator="GreaterThanThreshold",
    )  # fmt: skip
    client("sqs").create_queue(
        QueueName=names.dead_letter_queue, Attributes={"MessageRetentionPeriod": "86400"}
    )

    code, run = optimize("--suffix", dev)
    assert code == 0, run
    image = _image(run)
    assert (
        client("lambda").get_function(FunctionName=function)["Configuration"]["MemorySize"] == 1024
    )

    code, rollback = optimize("rollback", "--run-id", run["run_id"])
    assert code == 0, json.dumps(rollback, indent=1)
    assert rollback["command"] == "rollback"
    assert rollback["rollback_of"] == run["run_id"]
    changes = [c for e in rollback["environments"] for f in e["functions"] for c in f["changes"]]
    changes += [c for e in rollback["environments"] for c in e["changes"]]
    assert changes
    assert all((c["status"], c["verified"]) == ("applied", True) for c in changes)
    assert_as_before(client, image, _key(run))
    queue = client("sqs").get_queue_url(QueueName=names.dead_letter_queue)  # kept: it was there
    assert queue["QueueUrl"]
    described = client("cloudwatch").describe_alarms(AlarmNames=[f"duration-{function}"])
    assert described["MetricAlarms"][0]["EvaluationPeriods"] == 2  # its own definition back
    assert (
        client("cloudwatch").describe_alarms(AlarmNames=[f"error-rate-{function}"])["MetricAlarms"]
        == []
    )  # created by the run: gone

    code, again = optimize("rollback", "--run-id", run["run_id"])
    assert (code, again["api_calls"]["writes"], again["status"]) == (0, 0, "nothing_to_do")


def test_what_someone_changed_since_is_refused_unless_forced(
    seed: Seed, optimize: Optimize, client: ClientFactory, unique: Unique
) -> None:
    (dev,) = seed(unique("dev"))
    function = EnvironmentNames(dev).function()
    code, run = optimize("--suffix", dev)
    assert code == 0
    client("lambda").update_function_configuration(FunctionName=function, MemorySize=2048)
    client("lambda").get_waiter("function_updated_v2").wait(FunctionName=function)

    code, refused = optimize("rollback", "--run-id", run["run_id"])
    assert code == 1
    (fn,) = refused["environments"][0]["functions"]
    blocked = [c for c in fn["changes"] if c["step"] == "function_configuration"]
    assert {c["status"] for c in blocked} == {"blocked"}
    assert "MemorySize is 2048, the run set 1024" in blocked[0]["error"]
    assert "--force" in blocked[0]["error"]
    # The rest of the run is undone all the same.
    others = [c for c in fn["changes"] if c["step"] != "function_configuration"]
    assert others
    assert all(c["status"] == "applied" for c in others)
    assert (
        client("lambda").get_function(FunctionName=function)["Configuration"]["MemorySize"] == 2048
    )

    code, forced = optimize("rollback", "--run-id", run["run_id"], "--force")
    assert code == 0, forced
    assert_as_before(client, _image(run), _key(run))


def test_a_rollback_dry_run_writes_nothing_and_runs_lists_what_can_be_undone(
    seed: Seed, optimize: Optimize, unique: Unique
) -> None:
    (dev,) = seed(unique("dev"))
    _, dry = optimize("--suffix", dev, "--dry-run")
    code, run = optimize("--suffix", dev)
    assert code == 0
    code, plan = optimize("rollback", "--run-id", run["run_id"], "--dry-run")
    assert (code, plan["status"], plan["api_calls"]["writes"]) == (0, "planned", 0)
    code, listed = optimize("runs")
    assert code == 0
    by_id = {r["run_id"]: r for r in listed["runs"]}
    assert by_id[run["run_id"]]["environments_recorded"] == 1
    assert by_id[run["run_id"]]["status"] == "converged"
    assert by_id[dry["run_id"]]["environments_recorded"] == 0  # a dry run changed nothing
    assert by_id[plan["run_id"]]["command"] == "rollback"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGKILL])
@pytest.mark.sandbox_only("a run killed part way, on the sandbox's update windows")
def test_a_run_killed_mid_apply_leaves_what_rollback_needs(
    sandbox: EmbeddedSandbox,
    seed: Seed,
    optimize: Optimize,
    client: ClientFactory,
    tmp_path: Path,
    signum: signal.Signals,
) -> None:
    seed("dev", "staging")
    environ = {k: v for k, v in os.environ.items() if k != "ENVIRONMENT_SUFFIX"}
    environ["AWS_ENDPOINT_URL"] = sandbox.endpoint_url
    # Slow updates: the kill lands while function updates are still in flight.
    with sandbox.configured(update_s=30.0):
        process = subprocess.Popen(
            [sys.executable, "-m", "optimizer_async", "--suffix", "dev,staging",
             "--log-format", "json", "--state-dir", str(tmp_path / "state")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environ,
        )  # fmt: skip
        try:
            assert process.stderr is not None
            for line in process.stderr:  # once a function's update is under way
                if json.loads(line).get("event") == "step.applied":
                    break
            process.send_signal(signum)
            process.communicate(timeout=60)
        finally:
            process.kill()
    assert process.returncode == (130 if signum == signal.SIGINT else -signal.SIGKILL)
    (run_dir,) = (tmp_path / "state" / "runs").iterdir()
    images = {p.stem: json.loads(p.read_text()) for p in (run_dir / "before-images").glob("*.json")}
    assert images  # saved before the first write

    code, rollback = optimize("rollback", "--run-id", run_dir.name)
    assert code == 0, json.dumps(rollback, indent=1)
    for image in images.values():
        assert_as_before(client, image, state_key(tmp_path / "state"))
