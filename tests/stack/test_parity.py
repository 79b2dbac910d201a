"""What the stack registers equals what the sandbox seeder creates: they cannot drift.

Both sides are reduced to the same neutral shape (names, settings, tags, policies) — the
stack from its registered inputs, the seeder from plain boto3 reads of the sandbox.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from optimizer_async.sandbox.seeder import Seeder
from optimizer_async.sandbox.server import EmbeddedSandbox
from tests.conftest import ClientFactory
from tests.stack.harness import ProgramRun, run_program

pytestmark = pytest.mark.sandbox_only
SUFFIX = "parity"


def _tags(pairs: list[dict[str, str]]) -> dict[str, str]:
    return {p["Key"]: p["Value"] for p in pairs}


def _document(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def from_stack(stack: ProgramRun) -> dict[str, Any]:
    function = stack.one("aws:lambda/function:Function").inputs
    role = stack.one("aws:iam/role:Role").inputs
    role_policy = stack.one("aws:iam/rolePolicy:RolePolicy").inputs
    group = stack.one("aws:cloudwatch/logGroup:LogGroup").inputs
    bucket = stack.one("aws:s3/bucket:Bucket").inputs
    (rule,) = stack.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").inputs[
        "rules"
    ]
    (sse,) = stack.one(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    ).inputs["rules"]
    block = stack.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    layer = stack.one("aws:lambda/layerVersion:LayerVersion").inputs
    return {
        "function": {
            "name": function["name"],
            "memory": function["memorySize"],
            "timeout": function["timeout"],
            "runtime": function["runtime"],
            "handler": function["handler"],
            "description": function["description"],
            "architectures": function["architectures"],
            "variables": function["environment"]["variables"],
            "tracing": function["tracingConfig"]["mode"],
            "reserved_concurrency": function.get("reservedConcurrentExecutions"),
            "dead_letter": function.get("deadLetterConfig"),
            "layers": len(function["layers"]),
            "package_key": function["s3Key"],
            "tags": function["tags"],
        },
        "role": {
            "name": role["name"],
            "description": role["description"],
            "trust": _document(role["assumeRolePolicy"]),
            "inline": {role_policy["name"]: _document(role_policy["policy"])},
            "tags": role["tags"],
        },
        "log_group": {
            "name": group["name"],
            "retention": group.get("retentionInDays"),
            "tags": group["tags"],
        },
        "bucket": {
            "name": bucket["bucket"],
            "versioning": stack.one("aws:s3/bucketVersioning:BucketVersioning").inputs[
                "versioningConfiguration"
            ]["status"],
            "lifecycle": (
                rule["id"],
                rule["status"],
                rule["noncurrentVersionExpiration"]["noncurrentDays"],
            ),
            "encryption": sse["applyServerSideEncryptionByDefault"]["sseAlgorithm"],
            "public_access_block": all(
                block[k]
                for k in (
                    "blockPublicAcls",
                    "ignorePublicAcls",
                    "blockPublicPolicy",
                    "restrictPublicBuckets",
                )
            ),
            "objects": sorted(
                r.inputs["key"] for r in stack.of_type("aws:s3/bucketObjectv2:BucketObjectv2")
            ),
            "tags": bucket["tags"],
        },
        "layer": {
            "name": layer["layerName"],
            "description": layer["description"],
            "runtimes": layer["compatibleRuntimes"],
            "architectures": layer["compatibleArchitectures"],
            "package_key": layer["s3Key"],
        },
        "secrets": sorted(
            (r.inputs["name"], json.dumps(r.inputs["tags"], sort_keys=True))
            for r in stack.of_type("aws:secretsmanager/secret:Secret")
        ),
    }


def from_sandbox(client: ClientFactory) -> dict[str, Any]:
    lam, iam, logs, s3, sm = (client(s) for s in ("lambda", "iam", "logs", "s3", "secretsmanager"))
    answer = lam.get_function(FunctionName=f"lambda-function-{SUFFIX}")
    config = answer["Configuration"]
    role = iam.get_role(RoleName=f"lambda-role-{SUFFIX}")["Role"]
    inline = {
        name: _document(
            iam.get_role_policy(RoleName=role["RoleName"], PolicyName=name)["PolicyDocument"]
        )
        for name in iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]
    }
    group = logs.describe_log_groups(logGroupNamePrefix=f"/aws/lambda/lambda-function-{SUFFIX}")[
        "logGroups"
    ][0]
    group_tags = logs.list_tags_for_resource(resourceArn=group["arn"].removesuffix(":*"))["tags"]
    bucket = f"lambda-deployments-{SUFFIX}-123456789012"
    (rule,) = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    sse = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    layer_arn = config["Layers"][0]["Arn"]
    layer_name, layer_version = layer_arn.split(":")[6:8]
    layer = lam.get_layer_version(LayerName=layer_name, VersionNumber=int(layer_version))
    secrets = []
    for name in (f"database-url-{SUFFIX}", f"api-key-{SUFFIX}"):
        tags = _tags(sm.describe_secret(SecretId=name)["Tags"])
        secrets.append((name, json.dumps(tags, sort_keys=True)))
    return {
        "function": {
            "name": config["FunctionName"],
            "memory": config["MemorySize"],
            "timeout": config["Timeout"],
            "runtime": config["Runtime"],
            "handler": config["Handler"],
            "description": config["Description"],
            "architectures": config["Architectures"],
            "variables": config["Environment"]["Variables"],
            "tracing": config["TracingConfig"]["Mode"],
            "reserved_concurrency": answer.get("Concurrency", {}).get(
                "ReservedConcurrentExecutions"
            ),
            "dead_letter": config.get("DeadLetterConfig"),
            "layers": len(config["Layers"]),
            "package_key": "packages/function.zip"
            if _has_object(s3, bucket, "packages/function.zip")
            else None,
            "tags": answer["Tags"],
        },
        "role": {
            "name": role["RoleName"],
            "description": role["Description"],
            "trust": _document(role["AssumeRolePolicyDocument"]),
            "inline": inline,
            "tags": _tags(iam.list_role_tags(RoleName=role["RoleName"])["Tags"]),
        },
        "log_group": {
            "name": group["logGroupName"],
            "retention": group.get("retentionInDays"),
            "tags": group_tags,
        },
        "bucket": {
            "name": bucket,
            "versioning": s3.get_bucket_versioning(Bucket=bucket)["Status"],
            "lifecycle": (
                rule["ID"],
                rule["Status"],
                rule["NoncurrentVersionExpiration"]["NoncurrentDays"],
            ),
            "encryption": sse["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"],
            "public_access_block": all(
                s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"].values()
            ),
            "objects": sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]),
            "tags": _tags(s3.get_bucket_tagging(Bucket=bucket)["TagSet"]),
        },
        "layer": {
            "name": layer_name,
            "description": layer["Description"],
            "runtimes": layer["CompatibleRuntimes"],
            "architectures": layer["CompatibleArchitectures"],
            "package_key": "packages/layer.zip"
            if _has_object(s3, bucket, "packages/layer.zip")
            else None,
        },
        "secrets": sorted(secrets),
    }


def _has_object(s3: Any, bucket: str, key: str) -> bool:
    return any(o["Key"] == key for o in s3.list_objects_v2(Bucket=bucket)["Contents"])


def test_stack_and_seeder_build_the_same_environment(
    sandbox: EmbeddedSandbox, client: ClientFactory
) -> None:
    Seeder(sandbox.endpoint_url).seed_environment(SUFFIX)
    stack, seeded = from_stack(run_program(SUFFIX)), from_sandbox(client)
    for part in stack:
        assert stack[part] == seeded[part], part
