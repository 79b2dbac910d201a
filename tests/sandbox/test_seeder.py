"""The seeder's environments carry exactly the baseline values the stack deploys."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from optimizer_async import baseline
from optimizer_async.environment_spec import ROLE_LOGS_POLICY_NAME
from optimizer_async.naming import EnvironmentNames
from optimizer_async.sandbox.seeder import Seeder
from optimizer_async.sandbox.server import EmbeddedSandbox
from optimizer_async.sandbox.usage import usage_for
from tests.conftest import ClientFactory


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


def test_thirty_days_of_metrics(client: ClientFactory, seeded: list[str]) -> None:
    cloudwatch = client("cloudwatch")
    function = EnvironmentNames("dev").function()
    end = datetime.now(UTC)
    answer = cloudwatch.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "invocations",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/Lambda",
                        "MetricName": "Invocations",
                        "Dimensions": [{"Name": "FunctionName", "Value": function}],
                    },
                    "Period": 86400,
                    "Stat": "Sum",
                },
            }
        ],
        StartTime=end - timedelta(days=31),
        EndTime=end,
    )
    values = answer["MetricDataResults"][0]["Values"]
    assert len(values) == 30
    expected = usage_for(function).invocations_per_day * 30
    assert abs(sum(values) - expected) / expected < 0.05


def test_secret_values_are_not_kept(sandbox: EmbeddedSandbox) -> None:
    environment = Seeder(sandbox.endpoint_url).seed_environment("qa")
    assert "://" not in repr(environment)
    assert set(environment.secret_arns) == {"database-url-qa", "api-key-qa"}


def test_seeder_refuses_to_run_without_an_endpoint() -> None:
    with pytest.raises(ValueError, match="explicit http"):
        Seeder("")
