"""Create baseline environments in the sandbox (or LocalStack) exactly as the stack would.

Per environment: the role (may write to its own log groups only), the deployment bucket
(versioning, lifecycle, public access block, encryption) holding the function and layer
packages, the layer, one log group per function with no retention, the two secrets, the
function(s) at BASELINE, and 30 days of CloudWatch metrics plus log-group stored bytes from
a usage profile. Names and values come from `environment_spec`, like the Pulumi stack's.

The seeder only runs against an explicit endpoint: it never creates resources in real AWS.
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.request
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from optimizer_async import baseline, lambda_build
from optimizer_async.environment_spec import (
    FUNCTION_PACKAGE_KEY,
    LAMBDA_TRUST_POLICY,
    LAYER_PACKAGE_KEY,
    ROLE_LOGS_POLICY_NAME,
    EnvironmentSpec,
    FunctionSpec,
    environment_spec,
)
from optimizer_async.sandbox.usage import DEFAULT_USAGE, UsageProfile, daily_metric_data, usage_for

_METRIC_BATCH: Final = 1000  # PutMetricData's limit of datums per request
_ROLE_NOT_READY: Final = "cannot be assumed by Lambda"  # a fresh role, IAM not caught up yet


@dataclass(frozen=True)
class SeededEnvironment:
    """What was created; secret values are deliberately not kept."""

    suffix: str
    account_id: str
    functions: tuple[str, ...]
    role_arn: str
    bucket: str
    layer_version_arn: str
    secret_arns: dict[str, str]


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in sorted(tags.items())]


class Seeder:
    def __init__(
        self,
        endpoint_url: str,
        region: str = "us-east-1",
        *,
        functions_per_env: int = 1,
        metric_days: int = 30,
        usage: UsageProfile = DEFAULT_USAGE,
        sandbox_control: bool = True,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        if not endpoint_url.startswith(("http://", "https://")):
            raise ValueError(
                "the seeder needs an explicit http(s) endpoint (sandbox or LocalStack)"
            )
        self.endpoint_url = endpoint_url.rstrip("/")
        self.region = region
        self.function_bases = baseline.function_bases(functions_per_env)
        self.metric_days = metric_days
        self.usage = usage
        self.sandbox_control = sandbox_control
        access_key, secret_key = credentials or (None, None)
        session = boto3.session.Session(
            aws_access_key_id=access_key, aws_secret_access_key=secret_key, region_name=region
        )
        config = Config(retries={"mode": "standard", "max_attempts": 10}, max_pool_connections=32)
        self._clients: dict[str, Any] = {
            name: session.client(name, endpoint_url=self.endpoint_url, config=config)
            for name in ("iam", "s3", "lambda", "logs", "secretsmanager", "cloudwatch", "sts")
        }
        self._account_id: str | None = None

    @property
    def account_id(self) -> str:
        if self._account_id is None:
            self._account_id = str(self._clients["sts"].get_caller_identity()["Account"])
        return self._account_id

    def seed(self, suffixes: Iterable[str], parallel: int = 8) -> list[SeededEnvironment]:
        """Seed several environments concurrently; results in the order given."""
        suffixes = list(suffixes)
        _ = self.account_id  # resolve once, before the threads start
        with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(suffixes)))) as pool:
            return list(pool.map(self.seed_environment, suffixes))

    def seed_environment(self, suffix: str) -> SeededEnvironment:
        spec = environment_spec(suffix, self.function_bases)
        role_arn = self._role(spec)
        bucket = spec.names.bucket(self.account_id)
        versions = self._bucket(spec, bucket)
        layer_arn = self._layer(spec, bucket, versions[LAYER_PACKAGE_KEY])
        secret_arns = self._secrets(spec)
        for function in spec.functions:
            self._log_group(spec, function)
            self._function(spec, function, role_arn, layer_arn, bucket, versions)
            self._usage(function)
        return SeededEnvironment(
            suffix=suffix,
            account_id=self.account_id,
            functions=tuple(f.name for f in spec.functions),
            role_arn=role_arn,
            bucket=bucket,
            layer_version_arn=layer_arn,
            secret_arns=secret_arns,
        )

    # --- one method per resource --------------------------------------------------------

    def _role(self, spec: EnvironmentSpec) -> str:
        iam = self._clients["iam"]
        role = iam.create_role(
            RoleName=spec.names.role,
            AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST_POLICY),
            Description=f"Execution role of the {spec.names.suffix} environment",
            Tags=_tag_list(spec.tags),
        )["Role"]
        iam.put_role_policy(
            RoleName=spec.names.role,
            PolicyName=ROLE_LOGS_POLICY_NAME,
            PolicyDocument=json.dumps(spec.role_logs_policy(self.region, self.account_id)),
        )
        return str(role["Arn"])

    def _bucket(self, spec: EnvironmentSpec, bucket: str) -> dict[str, str]:
        s3 = self._clients["s3"]
        if self.region == "us-east-1":
            s3.create_bucket(Bucket=bucket)
        else:
            s3.create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": self.region}
            )
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": _tag_list(spec.tags)})
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        s3.put_public_access_block(
            Bucket=bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
        s3.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [
                    {
                        "ApplyServerSideEncryptionByDefault": {
                            "SSEAlgorithm": baseline.BUCKET_SSE_ALGORITHM
                        }
                    }
                ]
            },
        )
        s3.put_bucket_lifecycle_configuration(
            Bucket=bucket,
            LifecycleConfiguration={
                "Rules": [
                    {
                        "ID": baseline.BUCKET_LIFECYCLE_RULE_ID,
                        "Status": "Enabled",
                        "Filter": {},
                        "NoncurrentVersionExpiration": {
                            "NoncurrentDays": baseline.NONCURRENT_VERSION_EXPIRATION_DAYS
                        },
                    }
                ]
            },
        )
        versions = {}
        for key, package in (
            (FUNCTION_PACKAGE_KEY, lambda_build.function_package()),
            (LAYER_PACKAGE_KEY, lambda_build.layer_package()),
        ):
            put = s3.put_object(Bucket=bucket, Key=key, Body=package.data)
            versions[key] = str(put["VersionId"])
        return versions

    def _layer(self, spec: EnvironmentSpec, bucket: str, version: str) -> str:
        layer = self._clients["lambda"].publish_layer_version(
            LayerName=spec.names.layer,
            Description=f"Shared dependencies of the {spec.names.suffix} environment",
            Content={"S3Bucket": bucket, "S3Key": LAYER_PACKAGE_KEY, "S3ObjectVersion": version},
            CompatibleRuntimes=[baseline.RUNTIME],
            CompatibleArchitectures=[baseline.ARCHITECTURE],
        )
        return str(layer["LayerVersionArn"])

    def _secrets(self, spec: EnvironmentSpec) -> dict[str, str]:
        client = self._clients["secretsmanager"]
        values = {
            spec.names.database_url_secret: (
                f"postgresql://orders:{secrets.token_urlsafe(24)}@db.internal:5432/orders"
            ),
            spec.names.api_key_secret: secrets.token_urlsafe(32),
        }
        arns = {}
        for name, value in values.items():
            created = client.create_secret(Name=name, SecretString=value, Tags=_tag_list(spec.tags))
            arns[name] = str(created["ARN"])
        return arns

    def _log_group(self, spec: EnvironmentSpec, function: FunctionSpec) -> None:
        self._clients["logs"].create_log_group(logGroupName=function.log_group, tags=spec.tags)

    def _function(
        self,
        spec: EnvironmentSpec,
        function: FunctionSpec,
        role_arn: str,
        layer_arn: str,
        bucket: str,
        versions: dict[str, str],
    ) -> None:
        settings = function.settings
        arguments: dict[str, Any] = {
            "FunctionName": function.name,
            "Runtime": function.runtime,
            "Role": role_arn,
            "Handler": function.handler,
            "Description": function.description,
            "Code": {
                "S3Bucket": bucket,
                "S3Key": FUNCTION_PACKAGE_KEY,
                "S3ObjectVersion": versions[FUNCTION_PACKAGE_KEY],
            },
            "MemorySize": settings.memory_mb,
            "Timeout": settings.timeout_s,
            "Environment": {"Variables": dict(function.environment)},
            "TracingConfig": {"Mode": settings.tracing_mode},
            "Layers": [layer_arn],
            "Architectures": [function.architecture],
            "Tags": spec.tags,
        }
        for attempt in range(10):
            try:
                self._clients["lambda"].create_function(**arguments)
                return
            except ClientError as error:
                if _ROLE_NOT_READY not in str(error) or attempt == 9:
                    raise
                time.sleep(1.0 + attempt)

    def _usage(self, function: FunctionSpec) -> None:
        usage = usage_for(function.name, self.usage)
        data = daily_metric_data(function.name, usage, datetime.now(UTC), self.metric_days)
        cloudwatch = self._clients["cloudwatch"]
        for start in range(0, len(data), _METRIC_BATCH):
            cloudwatch.put_metric_data(
                Namespace="AWS/Lambda", MetricData=data[start : start + _METRIC_BATCH]
            )
        if self.sandbox_control:
            self._control(
                "PUT",
                "logs/stored-bytes",
                {
                    "region": self.region,
                    "logGroupName": function.log_group,
                    "storedBytes": usage.stored_log_bytes,
                },
            )

    def _control(self, method: str, route: str, payload: dict[str, Any]) -> None:
        request = urllib.request.Request(  # noqa: S310 - http(s) checked in __init__
            f"{self.endpoint_url}/_sandbox/{route}",
            data=json.dumps(payload).encode(),
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - http(s) checked in __init__
            response.read()
