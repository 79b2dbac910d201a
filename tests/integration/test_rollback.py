"""Rollback: a run undone field by field from its before-images, idempotently, refusing what
someone changed since and keeping what a setting left in place relies on, and from whatever
a killed run left behind."""

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

from optimizer_async.definitions.naming import OPTIMIZER, EnvironmentNames, log_group_name
from optimizer_async.records.state import FINGERPRINT_KEY_NAME
from optimizer_async.sandbox.server import EmbeddedSandbox
from optimizer_async.steps.inventory import EnvironmentVariables
from optimizer_async.steps.role_policy import canonical
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
        group, name = function["log_group"], log_group_name(function["name"])
        found = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
        found = [g for g in found if g["logGroupName"] == name]
        if group is None:  # the run created it, and nothing logged to it since: gone
            assert found == []
        else:
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
        if policy["document"] is not None:
            document = iam.get_role_policy(
                RoleName=policy["role_name"], PolicyName=policy["policy_name"]
            )["PolicyDocument"]
            assert canonical(document) == canonical(policy["document"])
    bucket = image["bucket"]
    if bucket["exists"]:
        s3 = client("s3")
        versioning = s3.get_bucket_versioning(Bucket=bucket["name"]).get("Status")
        # Versioning once enabled goes back to suspended, the same for the bucket's objects.
        assert (versioning or "Suspended") == (bucket["versioning"] or "Suspended")
        try:
            rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket["name"])["Rules"]
        except s3.exceptions.ClientError:
            rules = []
        assert canonical({"Rules": rules}) == canonical({"Rules": bucket["lifecycle_rules"]})


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


def _changes(report: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """Every change of a one-environment report, by (resource, setting)."""
    (env,) = report["environments"]
    found = env["changes"] + [c for fn in env["functions"] for c in fn["changes"]]
    return {(c["resource"], c["setting"]): c for c in found}


def _notes(report: dict[str, Any]) -> list[str]:
    """What the table prints under the environment (its notes, its functions')."""
    (env,) = report["environments"]
    return [*env["notes"], *(note for fn in env["functions"] for note in fn["notes"])]


def _dead_letter_target(client: ClientFactory, function: str) -> str | None:
    config = client("lambda").get_function(FunctionName=function)["Configuration"]
    return (config.get("DeadLetterConfig") or {}).get("TargetArn") or None


def _queue_urls(client: ClientFactory, names: EnvironmentNames) -> list[str]:
    found = client("sqs").list_queues(QueueNamePrefix=names.dead_letter_queue)
    return [url for url in found.get("QueueUrls", []) if url.endswith(names.dead_letter_queue)]


def _has_policy(client: ClientFactory, names: EnvironmentNames) -> bool:
    inline = client("iam").list_role_policies(RoleName=names.role)["PolicyNames"]
    return names.optimizer_policy in inline


def test_a_setting_someone_changed_stays_and_every_other_goes_back(
    seed: Seed, optimize: Optimize, client: ClientFactory, unique: Unique
) -> None:
    """Issue 27's scenario: after the run someone gives the function 2048 MB and its logs 3
    days. Those two stay, each said with what changed; every other setting goes back, the
    function's in one update; and since nothing left in place uses the run's queue and
    policy any more, they go too, leaving no dead-letter target at a deleted queue."""
    (qa,) = seed(unique("qa"))
    names = EnvironmentNames(qa)
    function, group = names.function(), names.function_log_group()
    code, run = optimize("--suffix", qa)
    assert code == 0, run
    image = _image(run)
    lam = client("lambda")
    lam.update_function_configuration(FunctionName=function, MemorySize=2048)
    lam.get_waiter("function_updated_v2").wait(FunctionName=function)
    client("logs").put_retention_policy(logGroupName=group, retentionInDays=3)

    code, rollback = optimize("rollback", "--run-id", run["run_id"])

    assert code == 1, json.dumps(rollback, indent=1)
    changes = _changes(rollback)
    refused = {key: c for key, c in changes.items() if c["status"] != "applied"}
    assert set(refused) == {(function, "MemorySize"), (group, "RetentionInDays")}
    assert {c["status"] for c in refused.values()} == {"blocked"}
    assert "MemorySize is 2048, the run set 1024" in refused[(function, "MemorySize")]["error"]
    assert "RetentionInDays is 3, the run set 7" in refused[(group, "RetentionInDays")]["error"]
    assert all("--force" in c["error"] for c in refused.values())
    notes = _notes(rollback)
    assert [n for n in notes if "MemorySize is 2048" in n or "RetentionInDays is 3" in n]
    assert len(changes) - len(refused) >= 9  # 5 of the function's, queue, policy, alarms...
    assert all(c["verified"] for key, c in changes.items() if key not in refused)
    assert rollback["api_calls"]["by_operation"]["lambda"]["UpdateFunctionConfiguration"] == 1
    (before,) = image["functions"]
    config = lam.get_function(FunctionName=function)["Configuration"]
    assert config["MemorySize"] == 2048
    assert (config["Timeout"], config["TracingConfig"]["Mode"]) == (
        before["timeout_s"],
        before["tracing_mode"],
    )
    assert sorted(config["Environment"]["Variables"]) == before["environment_variable_names"]
    found = client("logs").describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert [g.get("retentionInDays") for g in found] == [3]
    # Nothing left in place uses them: no target at a deleted queue, no variable unreadable.
    assert _dead_letter_target(client, function) is None
    assert (_queue_urls(client, names), _has_policy(client, names)) == ([], False)

    code, forced = optimize("rollback", "--run-id", run["run_id"], "--force")
    assert code == 0, forced
    assert_as_before(client, image, _key(run))


def test_what_a_setting_left_in_place_uses_is_kept_and_said(
    seed: Seed, optimize: Optimize, client: ClientFactory, unique: Unique
) -> None:
    """Someone also pointed the function's dead-letter target at their own queue and a
    secret variable at the secret by name. Those stay, and so do the run's queue and the
    policy on the function's role, each said with what relies on it; the rest goes back;
    --force takes everything back."""
    (qa,) = seed(unique("qa"))
    names = EnvironmentNames(qa)
    function = names.function()
    code, run = optimize("--suffix", qa)
    assert code == 0, run
    image = _image(run)
    sqs, lam = client("sqs"), client("lambda")
    theirs = sqs.create_queue(QueueName=f"theirs-{qa}")["QueueUrl"]
    their_arn = sqs.get_queue_attributes(QueueUrl=theirs, AttributeNames=["QueueArn"])
    their_arn = their_arn["Attributes"]["QueueArn"]
    client("iam").put_role_policy(  # what their queue needs: their own permission
        RoleName=names.role,
        PolicyName="theirs",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": their_arn}]}),
    )  # fmt: skip
    variables = lam.get_function(FunctionName=function)["Configuration"]["Environment"]
    variables = {**variables["Variables"], "DATABASE_URL_SECRET_ARN": names.database_url_secret}
    lam.update_function_configuration(
        FunctionName=function,
        MemorySize=2048,
        DeadLetterConfig={"TargetArn": their_arn},
        Environment={"Variables": variables},
    )
    lam.get_waiter("function_updated_v2").wait(FunctionName=function)

    code, rollback = optimize("rollback", "--run-id", run["run_id"])

    assert code == 1, json.dumps(rollback, indent=1)
    changes = _changes(rollback)
    queue = (names.dead_letter_queue, "Queue")
    policy = (f"{names.role}/{names.optimizer_policy}", "PolicyDocument")
    kept = {key for key, c in changes.items() if c["status"] == "blocked"}
    assert kept == {
        queue,
        policy,
        (function, "MemorySize"),
        (function, "DeadLetterConfig.TargetArn"),
        (function, "Environment.Variables.DATABASE_URL_SECRET_ARN"),
    }
    assert changes[queue]["error"].startswith(
        f"kept: {names.dead_letter_queue} - function {function} may still send its failures "
        "there (its DeadLetterConfig.TargetArn is not rolled back)"
    )
    why = changes[policy]["error"]
    assert why.startswith(f"kept: {names.role}/{names.optimizer_policy} - function {function} ")
    assert "need it to send its failures to the queue and need it to read its secrets" in why
    assert {changes[queue]["error"], why} <= set(_notes(rollback))  # the table says it too
    assert all(
        c["status"] == "applied" and c["verified"] for k, c in changes.items() if k not in kept
    )
    config = lam.get_function(FunctionName=function)["Configuration"]
    assert config["DeadLetterConfig"]["TargetArn"] == their_arn
    left = config["Environment"]["Variables"]
    assert left["DATABASE_URL_SECRET_ARN"] == names.database_url_secret
    assert "API_KEY_SECRET_ARN" not in left  # nobody changed it: it went back
    assert config["Timeout"] == image["functions"][0]["timeout_s"]
    assert (len(_queue_urls(client, names)), _has_policy(client, names)) == (1, True)

    code, forced = optimize("rollback", "--run-id", run["run_id"], "--force")
    assert code == 0, forced
    assert_as_before(client, image, _key(run))


@pytest.mark.sandbox_only("function updates that end Failed")
def test_a_function_whose_rollback_fails_keeps_the_queue_and_policy_it_uses(
    sandbox: EmbeddedSandbox,
    seed: Seed,
    optimize: Optimize,
    client: ClientFactory,
    unique: Unique,
) -> None:
    (qa,) = seed(unique("qa"))
    names = EnvironmentNames(qa)
    function = names.function()
    code, run = optimize("--suffix", qa)
    assert code == 0, run

    with sandbox.configured(update_failure_rate=1.0):
        code, failed = optimize("rollback", "--run-id", run["run_id"])

    assert code == 1, json.dumps(failed, indent=1)
    changes = _changes(failed)
    queue = changes[(names.dead_letter_queue, "Queue")]
    policy = changes[(f"{names.role}/{names.optimizer_policy}", "PolicyDocument")]
    for prerequisite in (queue, policy):
        assert prerequisite["status"] == "failed"
        assert prerequisite["error"].startswith("not attempted: function_configuration failed")
    target = _dead_letter_target(client, function)
    assert target is not None
    assert target.endswith(f":{names.dead_letter_queue}")  # still there, and so is the queue
    assert (len(_queue_urls(client, names)), _has_policy(client, names)) == (1, True)

    code, again = optimize("rollback", "--run-id", run["run_id"])
    assert code == 0, again
    assert_as_before(client, _image(run), _key(run))


def _created(client: ClientFactory, suffix: str) -> set[str]:
    """The ARNs of everything tagged as the optimizer's own in the environment."""
    pages = (
        client("resourcegroupstaggingapi")
        .get_paginator("get_resources")
        .paginate(
            TagFilters=[
                {"Key": "managed-by", "Values": [OPTIMIZER]},
                {"Key": "environment-suffix", "Values": [suffix]},
            ]
        )
    )
    return {r["ResourceARN"] for page in pages for r in page["ResourceTagMappingList"]}


@pytest.mark.sandbox_only("the tagging API lists what a run created")
def test_everything_a_run_creates_is_named_in_its_record_and_goes_with_its_rollback(
    seed: Seed, optimize: Optimize, client: ClientFactory, unique: Unique
) -> None:
    (qa,) = seed(unique("qa"))
    names = EnvironmentNames(qa)
    client("logs").delete_log_group(logGroupName=names.function_log_group())  # the run makes it
    code, run = optimize("--suffix", qa)
    assert code == 0, run
    image = _image(run)
    created = _created(client, qa)
    assert len(created) == 4  # the queue, the log group, two alarms
    named = {change["resource"] for change in image["changes"]}
    assert {arn for arn in created if not any(arn.endswith(f":{r}") for r in named)} == set()

    code, rollback = optimize("rollback", "--run-id", run["run_id"])
    assert code == 0, json.dumps(rollback, indent=1)
    assert _created(client, qa) == set()
    assert_as_before(client, image, _key(run))
    code, again = optimize("rollback", "--run-id", run["run_id"])
    assert (code, again["api_calls"]["writes"]) == (0, 0)


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
