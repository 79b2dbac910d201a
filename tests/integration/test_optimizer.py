"""The optimizer end to end against the sandbox (or LocalStack via AWS_ENDPOINT_URL)."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from optimizer_async.definitions import baseline
from optimizer_async.definitions.naming import EnvironmentNames
from optimizer_async.sandbox.server import EmbeddedSandbox
from tests.conftest import EXTERNAL_ENDPOINT, ClientFactory
from tests.integration.conftest import Optimize, Unique

Seed = Callable[..., list[str]]


def _writes(report: dict[str, Any]) -> int:
    """Write calls the optimizer itself counted (works on LocalStack too)."""
    return int(report["api_calls"]["writes"])


def _sandbox(request: pytest.FixtureRequest) -> EmbeddedSandbox | None:
    return None if EXTERNAL_ENDPOINT else request.getfixturevalue("sandbox")


def _function(report: dict[str, Any], suffix: str) -> dict[str, Any]:
    (env,) = [e for e in report["environments"] if e["suffix"] == suffix]
    return dict(env["functions"][0])


def assert_optimised(client: ClientFactory, suffix: str) -> None:
    """Every target, checked with plain boto3."""
    names = EnvironmentNames(suffix)
    account = client("sts").get_caller_identity()["Account"]
    fn = names.function()
    lam, logs, cw, sqs, iam, s3 = (
        client(s) for s in ("lambda", "logs", "cloudwatch", "sqs", "iam", "s3")
    )
    answer = lam.get_function(FunctionName=fn)
    config = answer["Configuration"]
    queue_url = sqs.get_queue_url(QueueName=names.dead_letter_queue)["QueueUrl"]
    queue = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    assert config["MemorySize"] == 1024
    assert config["Timeout"] == 30
    assert config["TracingConfig"] == {"Mode": "Active"}
    assert config["DeadLetterConfig"] == {"TargetArn": queue["QueueArn"]}
    assert answer["Concurrency"] == {"ReservedConcurrentExecutions": 50}
    variables = config["Environment"]["Variables"]
    for key, value in baseline.baseline_environment(suffix).items():
        assert variables[key] == value  # existing variables intact, byte for byte
    secrets = client("secretsmanager")
    assert (
        variables["DATABASE_URL_SECRET_ARN"]
        == secrets.describe_secret(SecretId=names.database_url_secret)["ARN"]
    )
    assert (
        variables["API_KEY_SECRET_ARN"]
        == secrets.describe_secret(SecretId=names.api_key_secret)["ARN"]
    )
    assert len(variables) == len(baseline.baseline_environment(suffix)) + 2

    group = logs.describe_log_groups(logGroupNamePrefix=names.function_log_group())["logGroups"][0]
    assert group["retentionInDays"] == 7

    alarms = {
        a["AlarmName"]: a
        for a in cw.describe_alarms(AlarmNames=[f"error-rate-{fn}", f"duration-{fn}"])[
            "MetricAlarms"
        ]
    }
    error_rate, duration = alarms[f"error-rate-{fn}"], alarms[f"duration-{fn}"]
    assert error_rate["Threshold"] == 1.0
    assert error_rate["ComparisonOperator"] == "GreaterThanThreshold"
    assert error_rate["TreatMissingData"] == "notBreaching"
    expression = [m for m in error_rate["Metrics"] if m.get("Expression")]
    assert expression[0]["Expression"] == "IF(invocations > 0, 100 * errors / invocations, 0)"
    assert (duration["MetricName"], duration["Threshold"]) == ("Duration", 20_000.0)

    assert queue["MessageRetentionPeriod"] == "1209600"
    assert queue["SqsManagedSseEnabled"] == "true"

    policy = iam.get_role_policy(RoleName=names.role, PolicyName=names.optimizer_policy)
    document = policy["PolicyDocument"]
    document = json.loads(document) if isinstance(document, str) else document
    statements = {s["Sid"]: s for s in document["Statement"]}
    assert statements["DeadLetterQueue"]["Resource"] == queue["QueueArn"]
    assert len(statements["ReadOwnSecrets"]["Resource"]) == 2
    assert all("*" not in arn for arn in statements["ReadOwnSecrets"]["Resource"])

    bucket = names.bucket(account)
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"


def test_dry_run_then_run_then_rerun(
    request: pytest.FixtureRequest,
    seed: Seed,
    optimize: Optimize,
    client: ClientFactory,
    unique: Unique,
) -> None:
    suffixes = seed(unique("dev"), unique("staging"), unique("prod"))
    sandbox = _sandbox(request)

    if sandbox:
        sandbox.reset_stats()
    code, dry = optimize("--suffix", ",".join(suffixes), "--dry-run")
    assert code == 0
    assert dry["dry_run"] is True
    assert dry["status"] == "planned"
    assert _writes(dry) == 0
    if sandbox:
        assert sandbox.stats()["writes"] == 0
        assert sandbox.stats()["total"] == dry["api_calls"]["total"]
    assert lambda_memory(client, f"lambda-function-{suffixes[0]}") == 3008
    assert dry["savings"]["monthly_usd"] > 0

    code, run = optimize("--suffix", ",".join(suffixes))
    assert code == 0, json.dumps(run, indent=1)
    assert run["status"] == "converged"
    for env in run["environments"]:
        assert env["status"] == "changed"
        assert env["before_images"]
        for change in [*env["changes"], *(c for fn in env["functions"] for c in fn["changes"])]:
            assert (change["status"], change["verified"]) == ("applied", True), change
    for suffix in suffixes:
        assert_optimised(client, suffix)
    assert run["savings"]["monthly_usd"] == dry["savings"]["monthly_usd"]

    if sandbox:
        sandbox.reset_stats()
    code, rerun = optimize("--suffix", ",".join(suffixes))
    assert code == 0
    assert rerun["status"] == "nothing_to_do"
    assert _writes(rerun) == 0
    if sandbox:
        assert sandbox.stats()["writes"] == 0
    assert all(e["status"] == "unchanged" for e in rerun["environments"])


def lambda_memory(client: ClientFactory, name: str) -> int:
    return int(client("lambda").get_function(FunctionName=name)["Configuration"]["MemorySize"])


def test_suffix_matches_exactly(
    seed: Seed, optimize: Optimize, client: ClientFactory, unique: Unique
) -> None:
    dev, dev2, dev_old = seed(unique("dev"), unique("dev2"), unique("dev-old"))
    code, report = optimize("--suffix", dev)
    assert code == 0
    assert [e["suffix"] for e in report["environments"]] == [dev]
    assert lambda_memory(client, f"lambda-function-{dev}") == 1024
    lam, cloudwatch, logs = client("lambda"), client("cloudwatch"), client("logs")
    for untouched in (dev2, dev_old):
        function = f"lambda-function-{untouched}"
        assert lambda_memory(client, function) == 3008
        assert "Concurrency" not in lam.get_function(FunctionName=function)
        alarms = cloudwatch.describe_alarms(
            AlarmNames=[f"error-rate-{function}", f"duration-{function}"]
        )["MetricAlarms"]
        assert alarms == []
        group = logs.describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{function}")
        assert {g["logGroupName"]: g.get("retentionInDays") for g in group["logGroups"]} == {
            f"/aws/lambda/{function}": None
        }
    assert_optimised(client, dev)


def test_function_tagged_for_another_environment_is_skipped(
    seed: Seed, optimize: Optimize, client: ClientFactory, unique: Unique
) -> None:
    (qa,) = seed(unique("qa"))
    lam = client("lambda")
    arn = lam.get_function(FunctionName=f"lambda-function-{qa}")["Configuration"]["FunctionArn"]
    lam.tag_resource(Resource=arn, Tags={"environment-suffix": unique("other")})
    code, report = optimize("--suffix", qa)
    assert code == 1
    assert "tagged for another environment" in report["environments"][0]["error"]
    assert lambda_memory(client, f"lambda-function-{qa}") == 3008


def test_missing_secrets_fail_one_environment_alone(
    seed: Seed, optimize: Optimize, client: ClientFactory, unique: Unique
) -> None:
    dev, staging, prod = seed(unique("dev"), unique("staging"), unique("prod"))
    secrets = client("secretsmanager")
    for name in (f"database-url-{staging}", f"api-key-{staging}"):
        secrets.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)

    code, report = optimize("--suffix", f"{dev},{staging},{prod}")
    assert code == 1
    status = {e["suffix"]: e["status"] for e in report["environments"]}
    assert status == {dev: "changed", staging: "failed", prod: "changed"}
    (failed,) = [e for e in report["environments"] if e["suffix"] == staging]
    assert failed["error"] == (
        f"secret(s) not found: api-key-{staging}, database-url-{staging}; create them, then re-run"
    )
    assert lambda_memory(client, f"lambda-function-{staging}") == 3008
    assert_optimised(client, dev)
    assert_optimised(client, prod)


def test_a_missing_role_leaves_its_environment_untouched(
    seed: Seed, optimize: Optimize, client: ClientFactory, unique: Unique
) -> None:
    """Found before any write to the environment: no queue, reservation, retention or
    alarm of it is made while its function's role is gone."""
    dev, qa = seed(unique("dev"), unique("qa"))
    iam = client("iam")
    role = f"lambda-role-{qa}"
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        iam.delete_role_policy(RoleName=role, PolicyName=name)
    for attached in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
        iam.detach_role_policy(RoleName=role, PolicyArn=attached["PolicyArn"])
    iam.delete_role(RoleName=role)

    code, report = optimize("--suffix", f"{dev},{qa}")
    assert code == 1
    (failed,) = [e for e in report["environments"] if e["suffix"] == qa]
    assert failed["status"] == "failed"
    assert failed["error"] == f"execution role(s) not found: {role}; restore them, then re-run"
    assert not [c for c in failed["changes"] if c["status"] == "applied"]
    assert client("sqs").list_queues(QueueNamePrefix=f"lambda-dlq-{qa}").get("QueueUrls") is None
    assert "Concurrency" not in client("lambda").get_function(FunctionName=f"lambda-function-{qa}")
    alarms = client("cloudwatch").describe_alarms(
        AlarmNamePrefix=f"error-rate-lambda-function-{qa}"
    )
    assert alarms["MetricAlarms"] == []
    assert_optimised(client, dev)


def test_drifted_bucket_is_repaired_keeping_its_own_rules(
    seed: Seed, optimize: Optimize, client: ClientFactory, unique: Unique, account_id: str
) -> None:
    (dev,) = seed(unique("dev"))
    s3 = client("s3")
    bucket = EnvironmentNames(dev).bucket(account_id)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    own_rule = {
        "ID": "tmp",
        "Status": "Enabled",
        "Filter": {"Prefix": "tmp/"},
        "Expiration": {"Days": 1},
    }
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": [own_rule]}
    )

    code, report = optimize("--suffix", dev)
    assert code == 0
    bucket_changes = {
        c["setting"]: c for c in report["environments"][0]["changes"] if c["resource"] == bucket
    }
    assert bucket_changes["Versioning"]["before"] == "Suspended"
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
    assert rules["tmp"]["Expiration"] == {"Days": 1}
    expiring = rules["expire-noncurrent-versions"]["NoncurrentVersionExpiration"]
    assert expiring["NoncurrentDays"] == 30


def test_shorter_retention_survives_a_run(
    seed: Seed, optimize: Optimize, client: ClientFactory, unique: Unique
) -> None:
    (dev,) = seed(unique("dev"))
    logs = client("logs")
    group = f"/aws/lambda/lambda-function-{dev}"
    logs.put_retention_policy(logGroupName=group, retentionInDays=3)
    code, _ = optimize("--suffix", dev)
    assert code == 0
    found = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]
    assert found["retentionInDays"] == 3


def test_before_images_are_saved_owner_only_without_values(
    seed: Seed, optimize: Optimize, tmp_path: Path, unique: Unique
) -> None:
    (dev,) = seed(unique("dev"))
    code, report = optimize("--suffix", dev)
    assert code == 0
    path = Path(report["environments"][0]["before_images"])
    assert path.is_relative_to(tmp_path / "state")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    state = tmp_path / "state"
    for directory in (state, *(d for d in state.rglob("*") if d.is_dir())):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory  # every level
    key = state / ".fingerprint-key.json"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    image = json.loads(path.read_text())
    (function,) = image["functions"]
    assert (function["memory_mb"], function["timeout_s"]) == (3008, 300)
    assert function["reserved_concurrency"] is None
    assert sorted(function["environment_variable_names"]) == sorted(
        baseline.baseline_environment(dev)
    )
    assert f"orders-{dev}" not in path.read_text()  # a variable's value


def test_report_schema(seed: Seed, optimize: Optimize, unique: Unique) -> None:
    (dev,) = seed(unique("dev"))
    _, report = optimize("--suffix", dev, "--dry-run")
    assert report["schema_version"] == 1
    assert report["run_id"]
    assert report["dry_run"] is True
    function = _function(report, dev)
    assert function["name"] == f"lambda-function-{dev}"
    assert function["status"] == "planned"
    assert {"step", "resource", "setting", "before", "after", "status", "verified"} <= set(
        function["changes"][0]
    )
    assert isinstance(report["savings"]["monthly_usd"], float)
    assert report["api_calls"]["by_operation"]["lambda"]["GetFunction"] == 1


def test_skip_alarms_converges_the_rest_and_writes_no_alarm(
    request: pytest.FixtureRequest,
    seed: Seed,
    optimize: Optimize,
    client: ClientFactory,
    unique: Unique,
) -> None:
    suffixes = seed(unique("dev"), unique("staging"))
    sandbox = _sandbox(request)
    if sandbox:
        sandbox.reset_stats()
    code, run = optimize("--suffix", ",".join(suffixes), "--skip", "alarms")
    assert code == 0, json.dumps(run, indent=1)
    assert run["status"] == "converged"
    assert "alarms" not in run["steps"]
    assert "alarms_monthly_usd" not in run["savings"]
    for env in run["environments"]:
        changes = [*env["changes"], *(c for fn in env["functions"] for c in fn["changes"])]
        assert changes
        # every step that ran changed something (the seeded bucket is already right)
        assert {c["step"] for c in changes} == set(run["steps"]) - {"deployment_bucket"}
        assert all((c["status"], c["verified"]) == ("applied", True) for c in changes)
    assert "PutMetricAlarm" not in run["api_calls"]["by_operation"].get("cloudwatch", {})
    assert "DescribeAlarms" not in run["api_calls"]["by_operation"].get("cloudwatch", {})
    if sandbox:
        assert not [r for r in sandbox.stats()["calls"] if r["service"] == "cloudwatch"
                    and r["operation"] in ("PutMetricAlarm", "DescribeAlarms")]  # fmt: skip
    cloudwatch = client("cloudwatch")
    for suffix in suffixes:
        function = EnvironmentNames(suffix).function()
        alarms = cloudwatch.describe_alarms(
            AlarmNames=[f"error-rate-{function}", f"duration-{function}"]
        )["MetricAlarms"]
        assert alarms == []
        assert lambda_memory(client, function) == 1024

    code, rerun = optimize("--suffix", ",".join(suffixes), "--skip", "alarms")
    assert (code, rerun["status"], _writes(rerun)) == (0, "nothing_to_do", 0)
    # Without the flag the alarms are all that is left to do.
    code, dry = optimize("--suffix", ",".join(suffixes), "--dry-run")
    planned = {c["step"] for e in dry["environments"] for f in e["functions"] for c in f["changes"]}
    assert (code, planned) == (0, {"alarms"})
