"""Seeding in-process (EmbeddedSandbox.seed, `serve --seed`) creates what the HTTP Seeder does.

One environment is seeded each way into one sandbox; every answer the optimizer (and the
stack parity test) reads is then read back over HTTP for both and compared, with the
suffix and what differs between any two creations (times, random ids, secret values)
masked out.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest

from optimizer_async.definitions.environment_spec import (
    FUNCTION_PACKAGE_KEY,
    LAYER_PACKAGE_KEY,
    ROLE_LOGS_POLICY_NAME,
)
from optimizer_async.definitions.naming import EnvironmentNames
from optimizer_async.sandbox.patches import shared_blobs
from optimizer_async.sandbox.seeder import Seeder
from optimizer_async.sandbox.server import EmbeddedSandbox
from tests.conftest import ClientFactory
from tests.sandbox.helpers import control, evidence, model_now, whole_hour
from tests.sandbox.test_insights import REPORT_QUERY

pytestmark = pytest.mark.sandbox_only
ACCOUNT = "123456789012"
VIA_HTTP, DIRECT = "viahttp", "direct"
# Differ between any two creations, whichever way: times, generated ids, ARNs with them.
_VOLATILE = frozenset(
    {
        "ResponseMetadata",
        "LastModified",
        "RevisionId",
        "CreateDate",
        "CreatedDate",
        "RoleId",
        "VersionId",
        "VersionIdsToStages",
        "LastChangedDate",
        "LastAccessedDate",
        "creationTime",
        "firstEventTimestamp",
        "lastEventTimestamp",
        "lastIngestionTime",
        "uploadSequenceToken",
        "ingestionTime",
        "timestamp",  # of log events: seeding's now; their offsets are compared below
    }
)
_REQUEST_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_SECRET_ARN = re.compile(r"(:secret:[a-z-]+)-[A-Za-z0-9]{6}")
_STREAM = re.compile(r"\[\$LATEST\][0-9a-f]{32}")  # a hash of the function's name


def _neutral(value: Any, suffix: str) -> Any:
    """The answer with volatile fields dropped, ids masked and the suffix made generic."""
    if isinstance(value, dict):
        return {k: _neutral(v, suffix) for k, v in value.items() if k not in _VOLATILE}
    if isinstance(value, list):
        return [_neutral(item, suffix) for item in value]
    if isinstance(value, str):
        value = _SECRET_ARN.sub(r"\1-XXXXXX", _REQUEST_ID.sub("<id>", value))
        value = _STREAM.sub("[$LATEST]<hash>", value)
        return value.replace(suffix, "<suffix>")
    return value


def _reads(client: ClientFactory, suffix: str) -> dict[str, Any]:
    """What the optimizer, the parity test and the seeder tests read of one environment."""
    names = EnvironmentNames(suffix)
    lam, iam, s3 = client("lambda"), client("iam"), client("s3")
    logs, secrets = client("logs"), client("secretsmanager")
    function, group, bucket = names.function(), names.function_log_group(), names.bucket(ACCOUNT)
    got = lam.get_function(FunctionName=function)
    (layer,) = got["Configuration"]["Layers"]
    answers: dict[str, Any] = {
        "GetFunction": got,
        "ListTags": lam.list_tags(Resource=got["Configuration"]["FunctionArn"]),
        "GetFunctionConcurrency": lam.get_function_concurrency(FunctionName=function),
        "ListLayerVersions": lam.list_layer_versions(LayerName=layer["Arn"].split(":")[6]),
        "GetRole": iam.get_role(RoleName=names.role),
        "ListRolePolicies": iam.list_role_policies(RoleName=names.role),
        "ListAttachedRolePolicies": iam.list_attached_role_policies(RoleName=names.role),
        "GetRolePolicy": iam.get_role_policy(RoleName=names.role, PolicyName=ROLE_LOGS_POLICY_NAME),
        "GetBucketVersioning": s3.get_bucket_versioning(Bucket=bucket),
        "GetBucketLifecycleConfiguration": s3.get_bucket_lifecycle_configuration(Bucket=bucket),
        "GetPublicAccessBlock": s3.get_public_access_block(Bucket=bucket),
        "GetBucketEncryption": s3.get_bucket_encryption(Bucket=bucket),
        "GetBucketTagging": s3.get_bucket_tagging(Bucket=bucket),
        "GetBucketLocation": s3.get_bucket_location(Bucket=bucket),
        "ListObjectsV2": s3.list_objects_v2(Bucket=bucket),
        "ListObjectVersions": s3.list_object_versions(Bucket=bucket),
        "DescribeLogGroups": logs.describe_log_groups(logGroupNamePrefix=group),
        "DescribeLogStreams": logs.describe_log_streams(logGroupName=group)["logStreams"],
        "FilterLogEvents": len(logs.filter_log_events(logGroupName=group)["events"]),
    }
    for key in (FUNCTION_PACKAGE_KEY, LAYER_PACKAGE_KEY):
        head = s3.head_object(Bucket=bucket, Key=key)
        answers[f"HeadObject {key}"] = {
            **head,
            "Body": s3.get_object(Bucket=bucket, Key=key)["Body"].read(),
            "headers": {
                name: value
                for name, value in head["ResponseMetadata"]["HTTPHeaders"].items()
                if name.startswith("x-amz-")
                and name not in ("x-amz-version-id", "x-amzn-requestid")
            },
        }
    for kind, secret in (("database", names.database_url_secret), ("key", names.api_key_secret)):
        answers[f"DescribeSecret {kind}"] = secrets.describe_secret(SecretId=secret)
        answers[f"GetSecretValue {kind}"] = sorted(
            secrets.get_secret_value(SecretId=secret)
        )  # the fields; values are fresh randomness each way
    return answers


def _insights(client: ClientFactory, sandbox: EmbeddedSandbox, suffix: str) -> Any:
    logs = client("logs")
    group = EnvironmentNames(suffix).function_log_group()
    end = whole_hour(model_now(sandbox))
    results = []
    for query in (REPORT_QUERY, "stats count(*) as events, count_distinct(@type) by @memorySize"):
        query_id = logs.start_query(
            logGroupNames=[group],
            startTime=int((end - timedelta(days=14)).timestamp()),
            endTime=int(end.timestamp()),
            queryString=query,
        )["queryId"]
        answer = logs.get_query_results(queryId=query_id)
        rows = [
            {c["field"]: c["value"] for c in row if c["field"] != "@ptr"}
            for row in answer["results"]
        ]
        results.append(sorted(json.dumps(_neutral(row, suffix)) for row in rows))
    metrics = evidence(
        client("cloudwatch"), [EnvironmentNames(suffix).function()], end - timedelta(days=14), end
    )
    return results, _neutral(list(metrics.values()), suffix)


def test_both_ways_build_the_same_environment(
    client: ClientFactory, sandbox: EmbeddedSandbox
) -> None:
    Seeder(sandbox.endpoint_url, profiles=["steady"]).seed([VIA_HTTP])
    (seeded,) = sandbox.seed([DIRECT], profiles=["steady"])
    assert seeded.functions == (EnvironmentNames(DIRECT).function(),)
    assert seeded.bucket == EnvironmentNames(DIRECT).bucket(ACCOUNT)
    assert "://" not in repr(seeded)

    via_http, direct = _reads(client, VIA_HTTP), _reads(client, DIRECT)
    assert via_http.keys() == direct.keys()
    for read in via_http:
        assert _neutral(direct[read], DIRECT) == _neutral(via_http[read], VIA_HTTP), read
    assert direct["DescribeLogStreams"] == []  # the model writes the lines, listed by filters
    assert direct["FilterLogEvents"] == 4 * 44  # a sample: 44 invocations of four events

    assert control(sandbox, "GET", "workload?region=us-east-1") == {
        EnvironmentNames(VIA_HTTP).function(): "steady",
        EnvironmentNames(DIRECT).function(): "steady",
    }
    http_insights, direct_insights = (
        _insights(client, sandbox, VIA_HTTP),
        _insights(client, sandbox, DIRECT),
    )
    assert direct_insights == http_insights


def test_the_profile_mix_and_functions_per_environment(sandbox: EmbeddedSandbox) -> None:
    sandbox.seed(["dev", "staging"], functions_per_env=2, profiles=["slow,idle", "bursty"])
    assert control(sandbox, "GET", "workload?region=us-east-1") == {
        "lambda-function-dev": "slow",
        "lambda-function2-dev": "idle",
        "lambda-function-staging": "bursty",
        "lambda-function2-staging": "slow",  # the mix cycles, as the HTTP Seeder's does
    }


def test_every_environment_shares_one_copy_of_each_large_package(
    client: ClientFactory, sandbox: EmbeddedSandbox
) -> None:
    sandbox.seed([f"env{index}" for index in range(5)])
    Seeder(sandbox.endpoint_url).seed(["viahttp"])  # uploaded bytes are interned too
    assert shared_blobs.shared_count() == 1  # the layer; the function package is small
    s3 = client("s3")
    bodies = {
        s3.get_object(Bucket=EnvironmentNames(s).bucket(ACCOUNT), Key=LAYER_PACKAGE_KEY)[
            "Body"
        ].read()
        for s in ("env0", "env4", "viahttp")
    }
    (body,) = bodies
    assert len(body) >= shared_blobs.MIN_SHARED_SIZE
