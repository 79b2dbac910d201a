"""The baseline stack under Pulumi mocks: every baseline argument, names, safety, secrets."""

from __future__ import annotations

import json
from pathlib import Path

import pulumi
import pytest
import yaml

from optimizer_async.definitions import baseline
from optimizer_async.definitions.naming import EnvironmentNames
from tests.stack.harness import ACCOUNT, REGION, SECRETS, ProgramRun, run_program

STACK_DIR = Path(__file__).resolve().parents[2] / "pulumi_stack"
# Inputs that hold a resource's physical name, by resource type.
PHYSICAL_NAME = {
    "aws:s3/bucket:Bucket": "bucket",
    "aws:iam/role:Role": "name",
    "aws:iam/rolePolicy:RolePolicy": "role",
    "aws:lambda/function:Function": "name",
    "aws:lambda/layerVersion:LayerVersion": "layerName",
    "aws:cloudwatch/logGroup:LogGroup": "name",
    "aws:secretsmanager/secret:Secret": "name",
}


@pytest.fixture(scope="module")
def stack() -> ProgramRun:
    return run_program("dev")


def test_function_is_at_baseline(stack: ProgramRun) -> None:
    function = stack.one("aws:lambda/function:Function").inputs
    assert function["name"] == "lambda-function-dev"
    assert function["memorySize"] == 3008 == baseline.BASELINE.memory_mb
    assert function["timeout"] == 300 == baseline.BASELINE.timeout_s
    assert "reservedConcurrentExecutions" not in function
    assert function["tracingConfig"] == {"mode": "PassThrough"}
    assert "deadLetterConfig" not in function
    assert function["environment"] == {"variables": baseline.baseline_environment("dev")}
    assert function["runtime"] == baseline.RUNTIME
    assert function["handler"] == baseline.HANDLER
    assert function["layers"] == [f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:shared-deps-dev:1"]
    assert (function["s3Key"], function["s3ObjectVersion"]) == ("packages/function.zip", "v-1")


def test_log_group_has_no_retention_and_the_function_waits_for_it(stack: ProgramRun) -> None:
    group = stack.one("aws:cloudwatch/logGroup:LogGroup").inputs
    assert group["name"] == "/aws/lambda/lambda-function-dev"
    assert "retentionInDays" not in group


def test_bucket_versioning_lifecycle_public_access_and_encryption(stack: ProgramRun) -> None:
    bucket = stack.one("aws:s3/bucket:Bucket").inputs
    assert bucket["bucket"] == f"lambda-deployments-dev-{ACCOUNT}"
    assert bucket["forceDestroy"] is True
    versioning = stack.one("aws:s3/bucketVersioning:BucketVersioning").inputs
    assert versioning["versioningConfiguration"] == {"status": "Enabled"}
    (rule,) = stack.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").inputs[
        "rules"
    ]
    assert rule["status"] == "Enabled"
    assert rule["noncurrentVersionExpiration"] == {"noncurrentDays": 30}
    block = stack.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    assert all(
        block[k] is True
        for k in (
            "blockPublicAcls",
            "ignorePublicAcls",
            "blockPublicPolicy",
            "restrictPublicBuckets",
        )
    )
    (sse,) = stack.one(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    ).inputs["rules"]
    assert sse["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
    keys = sorted(r.inputs["key"] for r in stack.of_type("aws:s3/bucketObjectv2:BucketObjectv2"))
    assert keys == ["packages/function.zip", "packages/layer.zip"]


def test_every_name_carries_the_suffix(stack: ProgramRun) -> None:
    for registration in stack.registrations:
        assert "dev" in registration.name, registration.name
        field = PHYSICAL_NAME.get(registration.type)
        if field:
            assert (
                registration.inputs[field].endswith("-dev") or "-dev-" in registration.inputs[field]
            ), (
                registration.type,
                registration.inputs[field],
            )


def test_a_name_without_the_suffix_would_be_caught() -> None:
    """The check above can fail: another suffix's names do not carry 'dev'."""
    other = run_program("qa")
    assert not any("dev" in r.name for r in other.registrations)


def test_nothing_is_protected_or_retained(stack: ProgramRun) -> None:
    assert not [r.name for r in stack.registrations if r.protect or r.retain_on_delete]
    for secret in stack.of_type("aws:secretsmanager/secret:Secret"):
        assert secret.inputs["recoveryWindowInDays"] == 0


def test_role_may_write_only_its_own_logs(stack: ProgramRun) -> None:
    role = stack.one("aws:iam/role:Role").inputs
    trust = json.loads(role["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
    policy = json.loads(stack.one("aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    (statement,) = policy["Statement"]
    assert sorted(statement["Action"]) == ["logs:CreateLogStream", "logs:PutLogEvents"]
    exact = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/lambda-function-dev"
    for resource in statement["Resource"]:
        assert resource != "*"
        assert resource == f"{exact}:*"  # only the log streams of exactly this group
    assert not stack.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")


def test_tags_on_everything_taggable(stack: ProgramRun) -> None:
    tags = EnvironmentNames("dev").tags
    taggable = [r for r in stack.registrations if "tags" in r.inputs]
    assert len(taggable) >= 7
    for registration in taggable:
        assert registration.inputs["tags"] == tags, registration.name


def test_secret_values_stay_secret(stack: ProgramRun) -> None:
    versions = stack.of_type("aws:secretsmanager/secretVersion:SecretVersion")
    assert sorted(v.inputs["secretString"] for v in versions) == sorted(SECRETS.values())
    assert all(v.secret_inputs == {"secretString"} for v in versions)
    others = json.dumps([r.inputs for r in stack.registrations if r not in versions], default=str)
    exports = json.dumps(stack.outputs, default=str)
    for value in SECRETS.values():
        assert value not in others
        assert value not in exports


def test_outputs(stack: ProgramRun) -> None:
    assert set(stack.outputs) == {
        "environmentSuffix", "functionName", "functionArn", "roleArn", "bucket",
        "layerArn", "logGroup", "databaseUrlSecretArn", "apiKeySecretArn",
    }  # fmt: skip
    assert stack.outputs["functionName"] == "lambda-function-dev"
    assert stack.outputs["bucket"] == f"lambda-deployments-dev-{ACCOUNT}"


@pytest.mark.parametrize("suffix", ["Dev", "dev_1", "-dev", "x" * 40])
def test_bad_suffix_fails_with_a_clear_message(suffix: str) -> None:
    with pytest.raises(pulumi.RunError, match="config environmentSuffix: environment suffix"):
        run_program(suffix)


def test_missing_secret_config_fails() -> None:
    with pytest.raises(pulumi.ConfigMissingError, match="apiKey"):
        run_program("dev", omit=("apiKey",))


def test_localstack_config_points_exactly_the_used_services_at_localstack(
    stack: ProgramRun,
) -> None:
    config = yaml.safe_load((STACK_DIR / "Pulumi.localstack.yaml").read_text())["config"]
    (endpoints,) = config["aws:endpoints"]
    endpoint_key = {"cloudwatch/logGroup": "cloudwatchlogs"}
    used = {"sts"}  # aws.get_caller_identity
    for registration in stack.registrations:
        if registration.type.startswith("aws:"):
            module = registration.type.split(":")[1]
            used.add(endpoint_key.get(module, module.split("/")[0]))
    assert set(endpoints) == used
    assert set(endpoints.values()) == {"http://localhost:4566"}
    for flag in (
        "aws:skipCredentialsValidation",
        "aws:skipRequestingAccountId",
        "aws:s3UsePathStyle",
    ):
        assert config[flag] is True
    assert config["lambda-optimizer-baseline:environmentSuffix"] == "localstack"
