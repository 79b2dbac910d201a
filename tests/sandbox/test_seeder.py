"""The seeder's environments carry exactly the baseline values the stack deploys."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from optimizer_async.definitions import baseline
from optimizer_async.definitions.environment_spec import ROLE_LOGS_POLICY_NAME
from optimizer_async.definitions.naming import EnvironmentNames
from optimizer_async.sandbox.seeder import Seeder
from optimizer_async.sandbox.server import EmbeddedSandbox
from optimizer_async.sandbox.usage import usage_for
from optimizer_async.sandbox.workload.model import FunctionConfig, FunctionModel
from optimizer_async.sandbox.workload.profiles import NAMED
from optimizer_async.sandbox.workload.reports import ReportLine
from tests.conftest import ClientFactory
from tests.sandbox.helpers import control


@pytest.fixture
def seeded(sandbox: EmbeddedSandbox) -> list[str]:
    Seeder(sandbox.endpoint_url, functions_per_env=2, metric_days=30).seed(["dev", "staging"])
    return ["dev", "staging"]


def test_functions_are_at_baseline(client: ClientFactory, seeded: list[str]) -> None:
    lam = client("lambda")
    for suffix in seeded:
        names = EnvironmentNames(suffix)
        for base in baseline.function_bases(2):
            answer = lam.get_function(FunctionName=names.function(base))
            config = answer["Configuration"]
            assert config["MemorySize"] == baseline.BASELINE.memory_mb == 3008
            assert config["Timeout"] == baseline.BASELINE.timeout_s == 300
            assert config["TracingConfig"] == {"Mode": "PassThrough"}
            assert "DeadLetterConfig" not in config
            assert "Concurrency" not in answer
            assert config["Environment"]["Variables"] == baseline.baseline_environment(suffix)
            assert config["Runtime"] == baseline.RUNTIME
            assert config["Role"].endswith(f":role/{names.role}")
            assert [layer["Arn"].split(":")[6] for layer in config["Layers"]] == [names.layer]
            assert answer["Tags"] == names.tags


def test_logs_secrets_bucket_and_role(client: ClientFactory, seeded: list[str]) -> None:
    logs, secrets, s3, iam = client("logs"), client("secretsmanager"), client("s3"), client("iam")
    for suffix in seeded:
        names = EnvironmentNames(suffix)
        group = logs.describe_log_groups(logGroupNamePrefix=names.function_log_group())[
            "logGroups"
        ][0]
        assert "retentionInDays" not in group
        usage = usage_for(names.function())
        assert group["storedBytes"] == usage.stored_log_bytes > 0

        for secret in (names.database_url_secret, names.api_key_secret):
            described = secrets.describe_secret(SecretId=secret)
            assert {t["Key"]: t["Value"] for t in described["Tags"]} == names.tags

        bucket = names.bucket("123456789012")
        assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
        rule = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"][0]
        assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        assert all(block.values())
        keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
        assert keys == {"packages/function.zip", "packages/layer.zip"}

        policies = iam.list_role_policies(RoleName=names.role)["PolicyNames"]
        assert policies == [ROLE_LOGS_POLICY_NAME]
        document = iam.get_role_policy(RoleName=names.role, PolicyName=ROLE_LOGS_POLICY_NAME)
        policy = document["PolicyDocument"]
        policy = json.loads(policy) if isinstance(policy, str) else policy
        resources = policy["Statement"][0]["Resource"]
        assert all("log-group:/aws/lambda/" in r and r.endswith(f"-{suffix}:*") for r in resources)
        assert not iam.list_attached_role_policies(RoleName=names.role)["AttachedPolicies"]


def test_functions_get_the_profile_mix_in_order(sandbox: EmbeddedSandbox) -> None:
    seeder = Seeder(sandbox.endpoint_url, functions_per_env=2, profiles=["slow,idle", "bursty"])
    seeder.seed(["dev", "staging"])
    expected = {
        "lambda-function-dev": "slow",
        "lambda-function2-dev": "idle",
        "lambda-function-staging": "bursty",
        "lambda-function2-staging": "slow",  # the mix cycles
    }
    assert control(sandbox, "GET", "workload?region=us-east-1") == expected
    assert {name: seeder.profile_of(name) for name in expected} == expected
    assert Seeder(sandbox.endpoint_url).profiles == ("default",)
    with pytest.raises(ValueError, match="unknown workload profile 'busy'"):
        Seeder(sandbox.endpoint_url, profiles=["steady", "busy"])


def test_log_groups_hold_what_lambda_writes(client: ClientFactory, seeded: list[str]) -> None:
    """The sandbox's model writes each function's lines: FilterLogEvents lists a sample of
    whole invocations (START, the function's line, END, REPORT), oldest first."""
    logs = client("logs")
    group = EnvironmentNames("dev").function_log_group()
    assert logs.describe_log_streams(logGroupName=group)["logStreams"] == []  # nothing put
    now = int(datetime.now(UTC).timestamp() * 1000)
    window = {"startTime": now - 7 * 86_400_000, "endTime": now}
    events = logs.filter_log_events(logGroupName=group, **window)["events"]
    assert [event["timestamp"] for event in events] == sorted(e["timestamp"] for e in events)
    assert {event["logStreamName"].split("/")[3][:9] for event in events} == {"[$LATEST]"}
    reports = [ReportLine.parse(e["message"]) for e in events if e["message"].startswith("REPORT")]
    assert len(reports) == len(events) // 4 > 0
    assert {report.memory_size_mb for report in reports} == {3008}
    starts = [e["message"] for e in events if e["message"].startswith("START")]
    assert starts == [f"START RequestId: {r.request_id} Version: $LATEST" for r in reports]
    only = logs.filter_log_events(logGroupName=group, filterPattern='"REPORT RequestId"', **window)
    assert [e["message"] for e in only["events"]] == [r.format() for r in reports]


def test_without_the_sandbox_the_seeder_writes_a_day_of_log_lines(
    client: ClientFactory, sandbox: EmbeddedSandbox
) -> None:
    Seeder(sandbox.endpoint_url, profiles=["steady"], sandbox_control=False).seed(["dev"])
    logs = client("logs")
    group = EnvironmentNames("dev").function_log_group()
    (stream,) = logs.describe_log_streams(logGroupName=group)["logStreams"]
    assert "/[$LATEST]" in stream["logStreamName"]
    events = logs.get_log_events(
        logGroupName=group, logStreamName=stream["logStreamName"], startFromHead=True
    )["events"]
    messages = [event["message"] for event in events]
    assert len(messages) == 3 * 24  # START, END and REPORT, one invocation an hour
    reports = [ReportLine.parse(m) for m in messages if m.startswith("REPORT")]
    assert len(reports) == 24
    assert {report.memory_size_mb for report in reports} == {3008}
    assert sum(report.init_duration_ms is not None for report in reports) == 1
    for start, end, report in zip(messages[::3], messages[1::3], reports, strict=True):
        assert start == f"START RequestId: {report.request_id} Version: $LATEST"
        assert end == f"END RequestId: {report.request_id}"


def test_without_the_sandbox_the_seeder_writes_the_models_metrics(
    client: ClientFactory, sandbox: EmbeddedSandbox
) -> None:
    """LocalStack has no workload model: the seeder writes the model's daily figures."""
    seeder = Seeder(
        sandbox.endpoint_url, metric_days=30, profiles=["steady"], sandbox_control=False
    )
    (environment,) = seeder.seed(["dev"])
    (function,) = environment.functions
    assert control(sandbox, "GET", "workload?region=us-east-1") == {}  # moto answers
    model = FunctionModel.start(
        "us-east-1", function, NAMED["steady"], FunctionConfig(3008, 300, None)
    )
    cloudwatch = client("cloudwatch")
    end = datetime.now(UTC)

    def daily(metric: str, statistic: str) -> dict[datetime, float]:
        answer = cloudwatch.get_metric_statistics(
            Namespace="AWS/Lambda",
            MetricName=metric,
            Dimensions=[{"Name": "FunctionName", "Value": function}],
            StartTime=end - timedelta(days=31),
            EndTime=end,
            Period=86_400,
            Statistics=[statistic],
        )
        return {point["Timestamp"]: point[statistic] for point in answer["Datapoints"]}

    invocations = daily("Invocations", "Sum")
    assert len(invocations) == 30
    for day, value in invocations.items():
        assert day.hour == 0
        expected = model.statistic("AWS/Lambda", "Invocations", "Sum", day, day + timedelta(1))
        assert value == expected
    assert max(daily("ConcurrentExecutions", "Maximum").values()) == 10.0  # weekdays
    assert set(daily("Duration", "Maximum").values()) == {2000.0}
    assert sum(daily("Errors", "Sum").values()) == pytest.approx(0.002 * sum(invocations.values()))


def test_secret_values_are_not_kept(sandbox: EmbeddedSandbox) -> None:
    environment = Seeder(sandbox.endpoint_url).seed_environment("qa")
    assert "://" not in repr(environment)
    assert set(environment.secret_arns) == {"database-url-qa", "api-key-qa"}


def test_seeder_refuses_to_run_without_an_endpoint() -> None:
    with pytest.raises(ValueError, match="explicit http"):
        Seeder("")
