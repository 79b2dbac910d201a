"""Create baseline environments in the sandbox (or LocalStack) exactly as the stack would.

Per environment: the role (may write to its own log groups only), the deployment bucket
(versioning, lifecycle, public access block, encryption) holding the function and layer
packages, the layer, one log group per function with no retention, the two secrets, the
function(s) at BASELINE, and each function's workload. Names and values come from
`environment_spec`, like the Pulumi stack's.

Workloads: each function gets a named profile (`workload/profiles.py`); `profiles` is a mix
assigned to the seeded functions in order (environments in the order given, functions in
spec order within each), cycling: `steady,slow` gives steady, slow, steady, ... In the
sandbox the profile is attached through `PUT /_sandbox/workload`: its metrics and Logs
Insights answers then come from the model, under whatever configuration the function has
over time, and the model writes the function's log lines. Elsewhere (LocalStack:
`sandbox_control=False`) the seeder writes `metric_days` of daily PutMetricData points
computed by the same model at baseline, and a day of real START / END / REPORT lines in
each log group, one invocation an hour.

Accounts: the seeder works in the account of its credentials (`credentials`: an access key
and secret, with a session token for credentials STS AssumeRole handed out; default: the
environment's). Seeding through a member account's assumed-role credentials creates
everything in that account, and the workload is attached there (`"account"` in the control
payloads), so its metrics are answered to that account's callers.

The seeder only runs against an explicit endpoint: it never creates resources in real AWS.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
import urllib.request
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from optimizer_async.definitions import baseline, lambda_build
from optimizer_async.definitions.environment_spec import (
    FUNCTION_PACKAGE_KEY,
    LAMBDA_TRUST_POLICY,
    LAYER_PACKAGE_KEY,
    ROLE_LOGS_POLICY_NAME,
    EnvironmentSpec,
    FunctionSpec,
    environment_spec,
)
from optimizer_async.sandbox.workload import reports
from optimizer_async.sandbox.workload.model import FunctionConfig, FunctionModel
from optimizer_async.sandbox.workload.profiles import (
    DEFAULT_PROFILE,
    WorkloadProfile,
    assign,
    check_mix,
    profile_for,
)

_METRIC_BATCH: Final = 1000  # PutMetricData's limit of datums per request
_ROLE_NOT_READY: Final = "cannot be assumed by Lambda"  # a fresh role, IAM not caught up yet
_LOGGED_HOURS: Final = 24  # REPORT lines written per log group: one an hour, the last day


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
        metric_days: int = 15,  # the optimizer's 14-day window, whole; LocalStack stores
        # each datum with its own sqlite commit (1.5 ms): a month would double the seeding
        profiles: Sequence[str] = (DEFAULT_PROFILE,),
        sandbox_control: bool = True,
        credentials: tuple[str, str] | tuple[str, str, str] | None = None,
    ) -> None:
        if not endpoint_url.startswith(("http://", "https://")):
            raise ValueError(
                "the seeder needs an explicit http(s) endpoint (sandbox or LocalStack)"
            )
        self.endpoint_url = endpoint_url.rstrip("/")
        self.region = region
        self.function_bases = baseline.function_bases(functions_per_env)
        self.metric_days = metric_days
        self.profiles = check_mix(profiles)
        self.sandbox_control = sandbox_control
        access_key = secret_key = token = None
        if credentials:  # (key, secret) or, from STS, (key, secret, session token)
            access_key, secret_key = credentials[0], credentials[1]
            token = credentials[2] if len(credentials) == 3 else None
        session = boto3.session.Session(
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            aws_session_token=token,
            region_name=region,
        )
        config = Config(retries={"mode": "standard", "max_attempts": 10}, max_pool_connections=32)
        self._clients: dict[str, Any] = {
            name: session.client(name, endpoint_url=self.endpoint_url, config=config)
            for name in ("iam", "s3", "lambda", "logs", "secretsmanager", "cloudwatch", "sts")
        }
        self._account_id: str | None = None
        self._assigned: dict[str, str] = {}  # function name -> profile, set by `seed`

    @property
    def account_id(self) -> str:
        """The credentials' account, as STS GetCallerIdentity tells it (asked once)."""
        if self._account_id is None:
            self._account_id = str(self._clients["sts"].get_caller_identity()["Account"])
        return self._account_id

    def seed(self, suffixes: Iterable[str], parallel: int = 8) -> list[SeededEnvironment]:
        """Seed several environments concurrently; results in the order given."""
        suffixes = list(suffixes)
        _ = self.account_id  # resolve once, before the threads start
        functions = [
            function.name
            for suffix in suffixes
            for function in environment_spec(suffix, self.function_bases).functions
        ]
        self._assigned = assign(functions, self.profiles)
        with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(suffixes)))) as pool:
            return list(pool.map(self.seed_environment, suffixes))

    def seed_environment(self, suffix: str) -> SeededEnvironment:
        spec = environment_spec(suffix, self.function_bases)
        role_arn = self._role(spec)
        bucket = spec.names.bucket(self.account_id)
        versions = self._bucket(spec, bucket)
        layer_arn = self._layer(spec, bucket, versions[LAYER_PACKAGE_KEY])
        secret_arns = self._secrets(spec)
        for index, function in enumerate(spec.functions):
            self._log_group(spec, function)
            self._function(spec, function, role_arn, layer_arn, bucket, versions)
            mix = self.profiles[index % len(self.profiles)]
            self._workload(function, self._assigned.get(function.name, mix))
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
            LifecycleConfiguration={"Rules": baseline.bucket_lifecycle_rules()},
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
            **layer_request(spec, bucket, version)
        )
        return str(layer["LayerVersionArn"])

    def _secrets(self, spec: EnvironmentSpec) -> dict[str, str]:
        client = self._clients["secretsmanager"]
        arns = {}
        for name, value in secret_values(spec).items():
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
        arguments = function_request(
            spec, function, role_arn, layer_arn, bucket, versions[FUNCTION_PACKAGE_KEY]
        )
        for attempt in range(10):
            try:
                self._clients["lambda"].create_function(**arguments)
                return
            except ClientError as error:
                if _ROLE_NOT_READY not in str(error) or attempt == 9:
                    raise
                time.sleep(1.0 + attempt)

    def profile_of(self, function_name: str) -> str:
        """The profile `seed` gave a function (the mix's first for one it did not seed)."""
        return self._assigned.get(function_name, self.profiles[0])

    def _workload(self, function: FunctionSpec, profile_name: str) -> None:
        profile = profile_for(profile_name, function.name)
        model = baseline_model(self.region, function, profile)
        if self.sandbox_control:
            self._control(
                "PUT",
                "workload",
                {
                    "account": self.account_id,
                    "region": self.region,
                    "functionName": function.name,
                    "profile": profile_name,
                },
            )
            self._control(
                "PUT",
                "logs/stored-bytes",
                {
                    "account": self.account_id,
                    "region": self.region,
                    "logGroupName": function.log_group,
                    "storedBytes": profile.stored_log_bytes,
                },
            )
        else:
            data = daily_metric_data(model, datetime.now(UTC), self.metric_days)
            cloudwatch = self._clients["cloudwatch"]
            for namespace in ("AWS/Lambda", "AWS/Logs"):
                datums = [datum for space, datum in data if space == namespace]
                for start in range(0, len(datums), _METRIC_BATCH):
                    cloudwatch.put_metric_data(
                        Namespace=namespace, MetricData=datums[start : start + _METRIC_BATCH]
                    )
            # The sandbox's model writes its own lines; anywhere else, a day of them.
            self._report_lines(function, model, profile)

    def _report_lines(
        self, function: FunctionSpec, model: FunctionModel, profile: WorkloadProfile
    ) -> None:
        stream = report_stream(function, model, profile)
        if stream is None:
            return
        name, events = stream
        logs = self._clients["logs"]
        logs.create_log_stream(logGroupName=function.log_group, logStreamName=name)
        logs.put_log_events(logGroupName=function.log_group, logStreamName=name, logEvents=events)

    def _control(self, method: str, route: str, payload: dict[str, Any]) -> None:
        request = urllib.request.Request(  # noqa: S310 - http(s) checked in __init__
            f"{self.endpoint_url}/_sandbox/{route}",
            data=json.dumps(payload).encode(),
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - http(s) checked in __init__
            response.read()


# --- what both seeders create (this one over HTTP, direct_seeder in moto's backends) ------


def secret_values(spec: EnvironmentSpec) -> dict[str, str]:
    """The environment's two secrets, fresh random values (never kept by the seeders)."""
    return {
        spec.names.database_url_secret: (
            f"postgresql://orders:{secrets.token_urlsafe(24)}@db.internal:5432/orders"
        ),
        spec.names.api_key_secret: secrets.token_urlsafe(32),
    }


def layer_request(spec: EnvironmentSpec, bucket: str, version: str) -> dict[str, Any]:
    """PublishLayerVersion's arguments: the layer package from the deployment bucket."""
    return {
        "LayerName": spec.names.layer,
        "Description": f"Shared dependencies of the {spec.names.suffix} environment",
        "Content": {"S3Bucket": bucket, "S3Key": LAYER_PACKAGE_KEY, "S3ObjectVersion": version},
        "CompatibleRuntimes": [baseline.RUNTIME],
        "CompatibleArchitectures": [baseline.ARCHITECTURE],
    }


def function_request(
    spec: EnvironmentSpec,
    function: FunctionSpec,
    role_arn: str,
    layer_arn: str,
    bucket: str,
    version: str,
) -> dict[str, Any]:
    """CreateFunction's arguments: the function at BASELINE, its package from the bucket."""
    settings = function.settings
    return {
        "FunctionName": function.name,
        "Runtime": function.runtime,
        "Role": role_arn,
        "Handler": function.handler,
        "Description": function.description,
        "Code": {"S3Bucket": bucket, "S3Key": FUNCTION_PACKAGE_KEY, "S3ObjectVersion": version},
        "MemorySize": settings.memory_mb,
        "Timeout": settings.timeout_s,
        "Environment": {"Variables": dict(function.environment)},
        "TracingConfig": {"Mode": settings.tracing_mode},
        "Layers": [layer_arn],
        "Architectures": [function.architecture],
        "Tags": spec.tags,
    }


def baseline_model(region: str, function: FunctionSpec, profile: WorkloadProfile) -> FunctionModel:
    """The workload model of a function at its baseline configuration."""
    settings = function.settings
    return FunctionModel.start(
        region,
        function.name,
        profile,
        FunctionConfig(settings.memory_mb, settings.timeout_s, settings.reserved_concurrency),
    )


def report_stream(
    function: FunctionSpec, model: FunctionModel, profile: WorkloadProfile
) -> tuple[str, list[dict[str, Any]]] | None:
    """A day of what Lambda writes: START, END and REPORT, one invocation an hour, as
    (stream name, PutLogEvents events); None for a function with no traffic."""
    if profile.invocations_per_day <= 0:
        return None
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(hours=_LOGGED_HOURS)
    piece = model.pieces(start, now)[0]
    digest = hashlib.sha256(function.name.encode()).hexdigest()[:32]
    events = []
    for hour, text in enumerate(reports.examples(model, piece, _LOGGED_HOURS)):
        line = reports.ReportLine.parse(text)
        began = int((start + timedelta(hours=hour)).timestamp() * 1000)
        ended = began + line.billed_duration_ms
        events += [
            {"timestamp": began, "message": f"START RequestId: {line.request_id} Version: $LATEST"},
            {"timestamp": ended, "message": f"END RequestId: {line.request_id}"},
            {"timestamp": ended, "message": text},
        ]
    return f"{start:%Y/%m/%d}/[$LATEST]{digest}", events


def daily_metric_data(
    model: FunctionModel, end: datetime, days: int
) -> list[tuple[str, dict[str, Any]]]:
    """(namespace, PutMetricData datum) per metric and day before `end`'s, from the model.

    Daily rather than per-minute points: a cost model reads sums, and LocalStack parses a
    large PutMetricData slowly. A percentile cannot be written as statistic values, so
    Duration p99 is missing where the sandbox's own metrics are not used.
    """
    midnight = end.replace(hour=0, minute=0, second=0, microsecond=0)
    data: list[tuple[str, dict[str, Any]]] = []
    for offset in range(days, 0, -1):
        start = midnight - timedelta(days=offset)
        data += _one_day(model, start, start + timedelta(days=1))
    return data


def _one_day(model: FunctionModel, start: datetime, stop: datetime) -> list[tuple[str, Any]]:
    def stat(namespace: str, metric: str, statistic: str) -> float | None:
        return model.statistic(namespace, metric, statistic, start, stop)

    if stat("AWS/Lambda", "Invocations", "Sum") is None:
        return []  # no traffic that day: Lambda publishes nothing

    def datum(namespace: str, metric: str, unit: str, **value: Any) -> tuple[str, Any]:
        name, dimension = (
            ("LogGroupName", model.default_log_group)
            if namespace == "AWS/Logs"
            else ("FunctionName", model.function_name)
        )
        return namespace, {
            "Dimensions": [{"Name": name, "Value": dimension}],
            "Timestamp": start,
            "MetricName": metric,
            "Unit": unit,
            **value,
        }

    data = [
        datum("AWS/Lambda", metric, "Count", Value=stat("AWS/Lambda", metric, statistic))
        for metric, statistic in (
            ("Invocations", "Sum"),
            ("Errors", "Sum"),
            ("Throttles", "Sum"),
            ("ConcurrentExecutions", "Maximum"),
        )
    ]
    if stat("AWS/Lambda", "Duration", "SampleCount"):
        durations = {
            name: stat("AWS/Lambda", "Duration", name)
            for name in ("SampleCount", "Sum", "Minimum", "Maximum")
        }
        data.append(datum("AWS/Lambda", "Duration", "Milliseconds", StatisticValues=durations))
        bytes_in = stat("AWS/Logs", "IncomingBytes", "Sum")
        data.append(datum("AWS/Logs", "IncomingBytes", "Bytes", Value=bytes_in))
    return data
