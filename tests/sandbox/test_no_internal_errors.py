"""A sweep: every AWS operation the optimizer and the seeders call, with valid but unusual
inputs, answers as AWS would, never with a 5xx (an internal error is a sandbox bug, not
AWS's behaviour). Each case names its operation and input; where AWS answers a 4xx, the case
says which code.

The operations: `aws.<service>.<operation>(` calls and `ApiCall(` declarations in
optimizer_async/ (steps/, core.py, finder.py, state.py, bake.py, price_list.py), and the
boto3 calls of sandbox/seeder.py. Retries are off (one attempt), so a 5xx is seen as such.
"""

from __future__ import annotations

import io
import json
import logging
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import pytest
from botocore.exceptions import ClientError
from moto.awslambda.models import LambdaBackend

from optimizer_async.definitions.environment_spec import LAMBDA_TRUST_POLICY
from optimizer_async.fleet.finder import FINDER_READS
from optimizer_async.sandbox.server import EmbeddedSandbox
from optimizer_async.steps.lambda_reports import FILTER_PATTERN, REPORT_QUERY
from optimizer_async.steps.registry import REGISTRY, declared_calls
from tests.conftest import ClientFactory

pytestmark = [pytest.mark.usefixtures("clock"), pytest.mark.sandbox_only]

ANY: Final = "any 4xx or success"  # AWS's answer is not pinned down here; no 5xx is
FUNCTION: Final = "sweep-fn"
GROUP: Final = f"/aws/lambda/{FUNCTION}"
SHARED_GROUP: Final = "/shared/sweep#logs"
BUCKET: Final = "sweep-bucket"
STATE_KEY: Final = "state/lease.json"
NAMESPACE: Final = "Sweep/App"
UNICODE: Final = "Fonction d'essai — ünïcødé ✓ 函数 🚀"
REPORT_LINE: Final = (
    "REPORT RequestId: 3604209a-e9a3-11e6-939a-754dd98c7be3\tDuration: 12.34 ms"
    "\tBilled Duration: 13 ms\tMemory Size: 3008 MB\tMax Memory Used: 512 MB"
)
PLATFORM_REPORT: Final = json.dumps(  # the same report in Lambda's JSON log format
    {
        "time": "2024-01-01T00:00:00.000Z",
        "type": "platform.report",
        "record": {
            "requestId": "3604209a-e9a3-11e6-939a-754dd98c7be4",
            "metrics": {
                "durationMs": 12.34,
                "billedDurationMs": 13,
                "memorySizeMB": 3008,
                "maxMemoryUsedMB": 512,
            },
            "status": "success",
        },
    }
)


def _zip(text: str = "def handler(event, context):\n    return event\n") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", text)
    return buffer.getvalue()


def _variables(total_bytes: int) -> dict[str, str]:
    """Environment variables whose compact JSON is exactly `total_bytes` long."""
    return {"PAD": "x" * (total_bytes - len('{"PAD":""}'))}


@dataclass
class World:
    """The resources every case may use, made with plain boto3 before the case runs."""

    clients: dict[str, Any]
    role_arn: str = ""
    state_etag: str = ""
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __getattr__(self, service: str) -> Any:
        try:
            return self.clients[service]
        except KeyError:
            raise AttributeError(service) from None

    def function(self, name: str, **extra: Any) -> dict[str, Any]:
        answer: dict[str, Any] = self.clients["lambda"].create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=self.role_arn,
            Handler="handler.handler",
            Code={"ZipFile": _zip()},
            **extra,
        )
        return answer

    def metric_window(self) -> dict[str, datetime]:
        return {
            "StartTime": self.now - timedelta(hours=1),
            "EndTime": self.now + timedelta(hours=1),
        }


def _build(client: ClientFactory) -> World:
    services = ("lambda", "logs", "cloudwatch", "iam", "s3", "sqs", "secretsmanager", "sts")
    world = World({name: client(name, attempts=1) for name in services})
    world.clients["pricing"] = client("pricing", attempts=1, region_name="us-east-1")
    role = world.iam.create_role(
        RoleName="sweep-role", AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST_POLICY)
    )
    world.role_arn = str(role["Role"]["Arn"])
    world.s3.create_bucket(Bucket=BUCKET)
    world.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    world.s3.put_object(Bucket=BUCKET, Key="pkg.zip", Body=_zip("from_s3 = 1\n"))
    put = world.s3.put_object(Bucket=BUCKET, Key=STATE_KEY, Body=b'{"holder": "a"}')
    world.state_etag = str(put["ETag"])
    world.function(FUNCTION, MemorySize=1024, Timeout=30)
    world.logs.create_log_group(logGroupName=GROUP)
    world.logs.create_log_stream(logGroupName=GROUP, logStreamName="2024/01/01/[$LATEST]abc")
    stamp = int(world.now.timestamp() * 1000) - 60_000
    world.logs.put_log_events(
        logGroupName=GROUP,
        logStreamName="2024/01/01/[$LATEST]abc",
        logEvents=[
            {"timestamp": stamp, "message": "START RequestId: 1 Version: $LATEST"},
            {"timestamp": stamp + 1, "message": '{"level": "ERROR", "msg": "' + UNICODE + '"}'},
            {"timestamp": stamp + 2, "message": REPORT_LINE},
            {"timestamp": stamp + 3, "message": PLATFORM_REPORT},
        ],
    )
    at = world.now - timedelta(minutes=5)
    world.cloudwatch.put_metric_data(
        Namespace=NAMESPACE,
        MetricData=[
            {
                "MetricName": "Latency",
                "Timestamp": at,
                "Values": [10.0, 20.0, 30.0],
                "Counts": [5.0, 3.0, 1.0],
                "Unit": "Milliseconds",
            },
            {
                "MetricName": "Duration",
                "Timestamp": at,
                "StatisticValues": {
                    "SampleCount": 9.0,
                    "Sum": 140.0,
                    "Minimum": 10.0,
                    "Maximum": 30.0,
                },
                "Unit": "Milliseconds",
            },
        ],
    )
    world.sqs.create_queue(QueueName="sweep-q")
    world.secretsmanager.create_secret(Name="sweep/secret", SecretString="s3cr3t")
    return world


def _stat(metric: str, stat: str, query_id: str = "q") -> dict[str, Any]:
    return {
        "Id": query_id,
        "MetricStat": {
            "Metric": {"Namespace": NAMESPACE, "MetricName": metric},
            "Period": 3600,
            "Stat": stat,
        },
    }


# --- the cases ---------------------------------------------------------------------------

Call = Callable[[World], Any]


@dataclass(frozen=True)
class Case:
    name: str  # "service.Operation[input]"
    call: Call
    expect: str | None = None  # None: succeeds; else AWS's error code (or ANY)


def _queue_url(w: World) -> str:
    return str(w.sqs.get_queue_url(QueueName="sweep-q")["QueueUrl"])


def _insights(query: str) -> Call:
    def run(w: World) -> Any:
        started = w.logs.start_query(
            logGroupNames=[GROUP],
            startTime=int((w.now - timedelta(hours=1)).timestamp()),
            endTime=int((w.now + timedelta(minutes=1)).timestamp()),
            queryString=query,
            limit=10,
        )
        return w.logs.get_query_results(queryId=started["queryId"])

    return run


def _update(**arguments: Any) -> Call:
    def run(w: World) -> Any:
        return w.clients["lambda"].update_function_configuration(FunctionName=FUNCTION, **arguments)

    return run


def _code(**arguments: Any) -> Call:
    def run(w: World) -> Any:
        return w.clients["lambda"].update_function_code(FunctionName=FUNCTION, **arguments)

    return run


def _metric_data(*queries: dict[str, Any], **extra: Any) -> Call:
    def run(w: World) -> Any:
        return w.cloudwatch.get_metric_data(
            MetricDataQueries=list(queries), **w.metric_window(), **extra
        )

    return run


def _stale_revision(w: World) -> Any:
    lam = w.clients["lambda"]
    stale = lam.get_function(FunctionName=FUNCTION)["Configuration"]["RevisionId"]
    lam.update_function_configuration(FunctionName=FUNCTION, Description="first")
    return lam.update_function_configuration(
        FunctionName=FUNCTION, Description="second", RevisionId=stale
    )


def _shared_group_twice(w: World) -> Any:
    logging = {"LogFormat": "JSON", "LogGroup": SHARED_GROUP, "ApplicationLogLevel": "WARN"}
    w.function("sweep-a", LoggingConfig=logging)
    return w.function("sweep-b", LoggingConfig=logging)


def _put_if_none_match(w: World, key: str) -> Any:
    return w.s3.put_object(Bucket=BUCKET, Key=key, Body=b"{}", IfNoneMatch="*")


def _alarm(w: World, name: str) -> Any:
    return w.cloudwatch.put_metric_alarm(
        AlarmName=name,
        AlarmDescription=UNICODE,
        Metrics=[
            {
                "Id": "errors",
                "MetricStat": _stat("Latency", "Sum")["MetricStat"],
                "ReturnData": False,
            },
            {
                "Id": "calls",
                "MetricStat": _stat("Duration", "SampleCount")["MetricStat"],
                "ReturnData": False,
            },
            {"Id": "rate", "Expression": "100 * errors / MAX([errors, calls])", "ReturnData": True},
        ],
        ComparisonOperator="GreaterThanThreshold",
        Threshold=1.0,
        EvaluationPeriods=3,
        TreatMissingData="notBreaching",
    )


CASES: Final = (
    # STS and IAM
    Case("sts.GetCallerIdentity[]", lambda w: w.sts.get_caller_identity()),
    Case(
        "sts.AssumeRole[a role that does not trust the caller]",
        lambda w: w.sts.assume_role(RoleArn=w.role_arn, RoleSessionName="s" * 64),
        "AccessDenied",
    ),
    Case(
        "iam.CreateRole[1000-char Latin-1 description, tags]",
        lambda w: w.iam.create_role(
            RoleName="r" * 64,
            AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST_POLICY),
            Description="é" * 1000,
            Tags=[{"Key": "k" * 128, "Value": "v" * 256}],
        ),
    ),
    Case(
        "iam.PutRolePolicy[128-char policy name]",
        lambda w: w.iam.put_role_policy(
            RoleName="sweep-role",
            PolicyName="p" * 128,
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "logs:*", "Resource": "*"}],
                }
            ),
        ),
    ),
    Case(
        "iam.GetRolePolicy[missing]",
        lambda w: w.iam.get_role_policy(RoleName="sweep-role", PolicyName="none"),
        "NoSuchEntity",
    ),
    Case("iam.GetRole[]", lambda w: w.iam.get_role(RoleName="sweep-role")),
    Case(
        "iam.GetRole[missing]",
        lambda w: w.iam.get_role(RoleName="no-such-role"),
        "NoSuchEntity",
    ),
    Case(
        "iam.DeleteRolePolicy[missing]",
        lambda w: w.iam.delete_role_policy(RoleName="sweep-role", PolicyName="none"),
        "NoSuchEntity",
    ),
    Case(
        "iam.UpdateAssumeRolePolicy[same policy]",
        lambda w: w.iam.update_assume_role_policy(
            RoleName="sweep-role", PolicyDocument=json.dumps(LAMBDA_TRUST_POLICY)
        ),
    ),
    # Lambda
    Case(
        "lambda.CreateFunction[unicode description, JSON logs to one shared group, twice]",
        _shared_group_twice,
    ),
    Case(
        "lambda.CreateFunction[arm64, empty layers, empty environment]",
        lambda w: w.function(
            "sweep-arm",
            Architectures=["arm64"],
            Layers=[],
            Environment={"Variables": {}},
            Description=UNICODE,
        ),
    ),
    Case(
        "lambda.CreateFunction[environment of exactly 4096 bytes]",
        lambda w: w.function("sweep-env", Environment={"Variables": _variables(4096)}),
    ),
    Case(
        "lambda.CreateFunction[environment of 4097 bytes]",
        lambda w: w.function("sweep-env", Environment={"Variables": _variables(4097)}),
        "InvalidParameterValueException",
    ),
    Case(
        "lambda.CreateFunction[S3 code, versioned]",
        lambda w: w.clients["lambda"].create_function(
            FunctionName="sweep-s3",
            Runtime="python3.12",
            Role=w.role_arn,
            Handler="handler.handler",
            Code={
                "S3Bucket": BUCKET,
                "S3Key": "pkg.zip",
                "S3ObjectVersion": w.s3.head_object(Bucket=BUCKET, Key="pkg.zip")["VersionId"],
            },
        ),
    ),
    Case(
        "lambda.CreateFunction[S3 key missing]",
        lambda w: w.clients["lambda"].create_function(
            FunctionName="sweep-s3",
            Runtime="python3.12",
            Role=w.role_arn,
            Handler="handler.handler",
            Code={"S3Bucket": BUCKET, "S3Key": "missing.zip"},
        ),
        "InvalidParameterValueException",
    ),
    Case(
        "lambda.CreateFunction[exists]",
        lambda w: w.function(FUNCTION),
        "ResourceConflictException",
    ),
    Case("lambda.GetFunction[]", lambda w: w.clients["lambda"].get_function(FunctionName=FUNCTION)),
    Case(
        "lambda.GetFunction[missing]",
        lambda w: w.clients["lambda"].get_function(FunctionName="nobody"),
        "ResourceNotFoundException",
    ),
    Case(
        "lambda.GetFunctionConfiguration[ARN]",
        lambda w: w.clients["lambda"].get_function_configuration(
            FunctionName=f"arn:aws:lambda:us-east-1:123456789012:function:{FUNCTION}"
        ),
    ),
    Case(
        "lambda.ListFunctions[MaxItems=1]",
        lambda w: w.clients["lambda"].list_functions(MaxItems=1),
    ),
    Case(
        "lambda.ListFunctions[unknown Marker]",
        lambda w: w.clients["lambda"].list_functions(Marker="not-a-marker", MaxItems=50),
        ANY,
    ),
    Case(
        "lambda.UpdateFunctionConfiguration[environment of exactly 4096 bytes]",
        _update(Environment={"Variables": _variables(4096)}),
    ),
    Case(
        "lambda.UpdateFunctionConfiguration[environment of 4097 bytes]",
        _update(Environment={"Variables": _variables(4097)}),
        "InvalidParameterValueException",
    ),
    Case(
        "lambda.UpdateFunctionConfiguration[empty environment, empty layers]",
        _update(Environment={"Variables": {}}, Layers=[]),
    ),
    Case(
        "lambda.UpdateFunctionConfiguration[unicode description, 10240 MB, 900 s]",
        _update(Description=UNICODE, MemorySize=10240, Timeout=900),
    ),
    Case(
        "lambda.UpdateFunctionConfiguration[LoggingConfig JSON to a shared group]",
        _update(LoggingConfig={"LogFormat": "JSON", "LogGroup": SHARED_GROUP}),
    ),
    Case(
        "lambda.UpdateFunctionConfiguration[LoggingConfig level with Text]",
        _update(LoggingConfig={"LogFormat": "Text", "SystemLogLevel": "DEBUG"}),
        "InvalidParameterValueException",
    ),
    Case(
        "lambda.UpdateFunctionConfiguration[LoggingConfig group of 513 characters]",
        _update(LoggingConfig={"LogGroup": "g" * 513}),
        "ValidationException",
    ),
    Case(
        "lambda.UpdateFunctionConfiguration[TracingConfig Active, empty DeadLetterConfig]",
        _update(TracingConfig={"Mode": "Active"}, DeadLetterConfig={"TargetArn": ""}),
    ),
    Case(
        "lambda.UpdateFunctionConfiguration[stale RevisionId]",
        _stale_revision,
        "PreconditionFailedException",
    ),
    Case("lambda.UpdateFunctionCode[ZipFile]", _code(ZipFile=_zip("v = 2\n"))),
    Case(
        "lambda.UpdateFunctionCode[Architectures arm64]",
        _code(ZipFile=_zip("v = 3\n"), Architectures=["arm64"]),
    ),
    Case("lambda.UpdateFunctionCode[S3Bucket, S3Key]", _code(S3Bucket=BUCKET, S3Key="pkg.zip")),
    Case("lambda.UpdateFunctionCode[Publish]", _code(ZipFile=_zip("v = 4\n"), Publish=True)),
    Case("lambda.UpdateFunctionCode[DryRun]", _code(ZipFile=_zip("v = 5\n"), DryRun=True)),
    Case(
        "lambda.UpdateFunctionCode[two architectures]",
        _code(ZipFile=_zip(), Architectures=["x86_64", "arm64"]),
        "ValidationException",
    ),
    Case(
        "lambda.UpdateFunctionCode[S3 key missing]",
        _code(S3Bucket=BUCKET, S3Key="missing.zip"),
        "InvalidParameterValueException",
    ),
    Case(
        "lambda.PutFunctionConcurrency[0]",
        lambda w: w.clients["lambda"].put_function_concurrency(
            FunctionName=FUNCTION, ReservedConcurrentExecutions=0
        ),
    ),
    Case(
        "lambda.PutFunctionConcurrency[900, all but the floor]",
        lambda w: w.clients["lambda"].put_function_concurrency(
            FunctionName=FUNCTION, ReservedConcurrentExecutions=900
        ),
    ),
    Case(
        "lambda.PutFunctionConcurrency[901, below the floor]",
        lambda w: w.clients["lambda"].put_function_concurrency(
            FunctionName=FUNCTION, ReservedConcurrentExecutions=901
        ),
        "InvalidParameterValueException",
    ),
    Case(
        "lambda.GetFunctionConcurrency[none]",
        lambda w: w.clients["lambda"].get_function_concurrency(FunctionName=FUNCTION),
    ),
    Case(
        "lambda.DeleteFunctionConcurrency[none set]",
        lambda w: w.clients["lambda"].delete_function_concurrency(FunctionName=FUNCTION),
    ),
    Case("lambda.GetAccountSettings[]", lambda w: w.clients["lambda"].get_account_settings()),
    Case(
        "lambda.PublishLayerVersion[S3 content, arm64, unicode description]",
        lambda w: w.clients["lambda"].publish_layer_version(
            LayerName="sweep-layer",
            Description=UNICODE,
            Content={"S3Bucket": BUCKET, "S3Key": "pkg.zip"},
            CompatibleRuntimes=["python3.12"],
            CompatibleArchitectures=["arm64"],
        ),
    ),
    # CloudWatch Logs
    Case(
        "logs.CreateLogGroup[512-character name, tags]",
        lambda w: w.logs.create_log_group(logGroupName="/" + "a" * 511, tags={"k": "v"}),
    ),
    Case(
        "logs.CreateLogGroup[exists]",
        lambda w: w.logs.create_log_group(logGroupName=GROUP),
        "ResourceAlreadyExistsException",
    ),
    Case("logs.DescribeLogGroups[limit=1]", lambda w: w.logs.describe_log_groups(limit=1)),
    Case(
        "logs.DescribeLogGroups[50 identifiers, names and ARNs, most missing]",
        lambda w: w.logs.describe_log_groups(
            logGroupIdentifiers=[GROUP, f"arn:aws:logs:us-east-1:123456789012:log-group:{GROUP}"]
            + [f"/none/{i}" for i in range(48)]
        ),
    ),
    Case(
        "logs.DescribeLogGroups[prefix matching nothing]",
        lambda w: w.logs.describe_log_groups(logGroupNamePrefix="/nothing/here", limit=50),
    ),
    Case(
        "logs.DescribeLogStreams[none yet, ordered by last event]",
        lambda w: w.logs.describe_log_streams(
            logGroupName=GROUP, orderBy="LastEventTime", descending=True, limit=1
        ),
    ),
    Case(
        "logs.DescribeLogStreams[group missing]",
        lambda w: w.logs.describe_log_streams(logGroupName="/none/such"),
        "ResourceNotFoundException",
    ),
    Case(
        "logs.DeleteLogGroup[group missing]",
        lambda w: w.logs.delete_log_group(logGroupName="/none/such"),
        "ResourceNotFoundException",
    ),
    Case(
        "logs.DeleteLogGroup[512-character name]",
        lambda w: w.logs.delete_log_group(logGroupName="/" + "b" * 511),
        "ResourceNotFoundException",
    ),
    Case(
        "logs.PutRetentionPolicy[3653 days]",
        lambda w: w.logs.put_retention_policy(logGroupName=GROUP, retentionInDays=3653),
    ),
    Case(
        "logs.PutRetentionPolicy[2 days]",
        lambda w: w.logs.put_retention_policy(logGroupName=GROUP, retentionInDays=2),
        "InvalidParameterException",
    ),
    Case(
        "logs.PutRetentionPolicy[missing group]",
        lambda w: w.logs.put_retention_policy(logGroupName="/none", retentionInDays=7),
        "ResourceNotFoundException",
    ),
    Case(
        "logs.DeleteRetentionPolicy[none set]",
        lambda w: w.logs.delete_retention_policy(logGroupName=GROUP),
    ),
    Case(
        "logs.CreateLogStream[512-character name]",
        lambda w: w.logs.create_log_stream(logGroupName=GROUP, logStreamName="s" * 512),
    ),
    Case(
        "logs.PutLogEvents[unicode, one event]",
        lambda w: w.logs.put_log_events(
            logGroupName=GROUP,
            logStreamName="2024/01/01/[$LATEST]abc",
            logEvents=[{"timestamp": int(w.now.timestamp() * 1000), "message": UNICODE}],
        ),
    ),
    Case(
        "logs.FilterLogEvents[the optimizer's pattern, Text and JSON reports]",
        lambda w: w.logs.filter_log_events(logGroupName=GROUP, filterPattern=FILTER_PATTERN),
    ),
    Case(
        "logs.FilterLogEvents[term pattern]",
        lambda w: w.logs.filter_log_events(logGroupName=GROUP, filterPattern="REPORT", limit=1),
    ),
    Case(
        "logs.FilterLogEvents[quoted phrase pattern]",
        lambda w: w.logs.filter_log_events(logGroupName=GROUP, filterPattern='"Max Memory Used"'),
    ),
    Case(
        "logs.FilterLogEvents[JSON pattern]",
        lambda w: w.logs.filter_log_events(
            logGroupName=GROUP, filterPattern='{ $.level = "ERROR" }'
        ),
    ),
    Case(
        "logs.FilterLogEvents[time window, stream names]",
        lambda w: w.logs.filter_log_events(
            logGroupName=GROUP,
            logStreamNames=["2024/01/01/[$LATEST]abc"],
            startTime=int((w.now - timedelta(hours=1)).timestamp() * 1000),
            endTime=int(w.now.timestamp() * 1000),
        ),
    ),
    Case(
        "logs.StartQuery[the optimizer's REPORT query, Text and JSON reports]",
        _insights(REPORT_QUERY),
    ),
    Case(
        "logs.StartQuery[fields, sort, limit]",
        _insights("fields @timestamp, @message | sort @timestamp desc | limit 5"),
    ),
    Case(
        "logs.StartQuery[fields, filter like, sort]",
        _insights("fields @message | filter @message like /REPORT/ | sort @timestamp asc"),
    ),
    Case(
        "logs.StartQuery[stats by bin]",
        _insights('filter @type = "REPORT" | stats max(@maxMemoryUsed) by bin(1h)'),
    ),
    Case(
        "logs.StartQuery[malformed]",
        _insights("stats count(* by"),
        "MalformedQueryException",
    ),
    Case(
        "logs.GetQueryResults[unknown id]",
        lambda w: w.logs.get_query_results(queryId="00000000-0000-0000-0000-000000000000"),
        "ResourceNotFoundException",
    ),
    # CloudWatch
    Case(
        "cloudwatch.PutMetricData[150 values with counts, 30 dimensions]",
        lambda w: w.cloudwatch.put_metric_data(
            Namespace=NAMESPACE,
            MetricData=[
                {
                    "MetricName": "Wide",
                    "Dimensions": [{"Name": f"d{i}", "Value": "é"} for i in range(30)],
                    "Values": [float(i) for i in range(150)],
                    "Counts": [1.0] * 150,
                    "StorageResolution": 1,
                }
            ],
        ),
    ),
    Case("cloudwatch.GetMetricData[p99 over Values/Counts]", _metric_data(_stat("Latency", "p99"))),
    Case(
        "cloudwatch.GetMetricData[p99 over StatisticValues]", _metric_data(_stat("Duration", "p99"))
    ),
    Case(
        "cloudwatch.GetMetricData[Expression over two stats]",
        _metric_data(
            {**_stat("Latency", "Sum", "a"), "ReturnData": False},
            {**_stat("Duration", "SampleCount", "b"), "ReturnData": False},
            {"Id": "ratio", "Expression": "100 * a / b", "Label": "ratio"},
        ),
    ),
    Case(
        "cloudwatch.GetMetricData[ScanBy TimestampDescending, MaxDatapoints]",
        _metric_data(_stat("Latency", "Average"), ScanBy="TimestampDescending", MaxDatapoints=10),
    ),
    Case(
        "cloudwatch.GetMetricData[AWS/Lambda metric nobody published]",
        lambda w: w.cloudwatch.get_metric_data(
            MetricDataQueries=[
                {
                    "Id": "p99",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": "AWS/Lambda",
                            "MetricName": "Duration",
                            "Dimensions": [{"Name": "FunctionName", "Value": "nobody"}],
                        },
                        "Period": 86_400,
                        "Stat": "p99",
                    },
                }
            ],
            StartTime=w.now - timedelta(days=14),
            EndTime=w.now,
            ScanBy="TimestampAscending",
        ),
    ),
    Case(
        "cloudwatch.GetMetricStatistics[p99 and SampleCount over StatisticValues]",
        lambda w: w.cloudwatch.get_metric_statistics(
            Namespace=NAMESPACE,
            MetricName="Duration",
            Period=3600,
            Statistics=["SampleCount", "Maximum"],
            ExtendedStatistics=["p99"],
            **w.metric_window(),
        ),
    ),
    Case(
        "cloudwatch.PutMetricAlarm[metric math, unicode description]",
        lambda w: _alarm(w, "a" * 255),
    ),
    Case(
        "cloudwatch.DescribeAlarms[100 names, MaxRecords=100]",
        lambda w: w.cloudwatch.describe_alarms(
            AlarmNames=[f"alarm-{i}" for i in range(100)], MaxRecords=100
        ),
    ),
    Case(
        "cloudwatch.DescribeAlarms[MaxRecords=1]",
        lambda w: (_alarm(w, "one"), _alarm(w, "two"), w.cloudwatch.describe_alarms(MaxRecords=1)),
    ),
    Case(
        "cloudwatch.DeleteAlarms[missing]",
        lambda w: w.cloudwatch.delete_alarms(AlarmNames=["missing-alarm"]),
        ANY,
    ),
    # S3
    Case(
        "s3.PutObject[IfNoneMatch=*, new key]",
        lambda w: _put_if_none_match(w, "state/new.json"),
    ),
    Case(
        "s3.PutObject[IfNoneMatch=*, existing key]",
        lambda w: _put_if_none_match(w, STATE_KEY),
        "PreconditionFailed",
    ),
    Case(
        "s3.PutObject[IfMatch current ETag]",
        lambda w: w.s3.put_object(
            Bucket=BUCKET,
            Key=STATE_KEY,
            Body=b"{}",
            IfMatch=w.state_etag,
            ContentType="application/json",
            ServerSideEncryption="AES256",
        ),
    ),
    Case(
        "s3.PutObject[IfMatch stale ETag]",
        lambda w: w.s3.put_object(Bucket=BUCKET, Key=STATE_KEY, Body=b"{}", IfMatch='"0"'),
        "PreconditionFailed",
    ),
    Case(
        "s3.DeleteObject[IfMatch current ETag]",
        lambda w: w.s3.delete_object(Bucket=BUCKET, Key=STATE_KEY, IfMatch=w.state_etag),
    ),
    Case(
        "s3.DeleteObject[IfMatch stale ETag]",
        lambda w: w.s3.delete_object(Bucket=BUCKET, Key=STATE_KEY, IfMatch='"0"'),
        "PreconditionFailed",
    ),
    Case(
        "s3.GetObject[missing]",
        lambda w: w.s3.get_object(Bucket=BUCKET, Key="state/none.json"),
        "NoSuchKey",
    ),
    Case(
        "s3.ListObjectsV2[MaxKeys=1, unicode prefix]",
        lambda w: w.s3.list_objects_v2(Bucket=BUCKET, Prefix="état/", MaxKeys=1),
    ),
    Case(
        "s3.GetBucketLifecycleConfiguration[none]",
        lambda w: w.s3.get_bucket_lifecycle_configuration(Bucket=BUCKET),
        "NoSuchLifecycleConfiguration",
    ),
    Case(
        "s3.PutBucketLifecycleConfiguration[empty prefix filter, noncurrent expiry]",
        lambda w: w.s3.put_bucket_lifecycle_configuration(
            Bucket=BUCKET,
            LifecycleConfiguration={
                "Rules": [
                    {
                        "ID": "r" * 255,
                        "Filter": {"Prefix": ""},
                        "Status": "Enabled",
                        "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
                        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
                    }
                ]
            },
        ),
    ),
    Case("s3.DeleteBucketLifecycle[none]", lambda w: w.s3.delete_bucket_lifecycle(Bucket=BUCKET)),
    Case("s3.GetBucketVersioning[]", lambda w: w.s3.get_bucket_versioning(Bucket=BUCKET)),
    Case(
        "s3.GetBucketVersioning[missing bucket]",
        lambda w: w.s3.get_bucket_versioning(Bucket="no-such-bucket-sweep"),
        "NoSuchBucket",
    ),
    # AWS encrypts every new bucket with SSE-S3 and reports that default here; moto 5.2.5
    # answers ServerSideEncryptionConfigurationNotFoundError (a 4xx: no patch changes it yet)
    Case(
        "s3.GetBucketEncryption[default]",
        lambda w: w.s3.get_bucket_encryption(Bucket=BUCKET),
        ANY,
    ),
    Case(
        "s3.PutBucketEncryption[AES256]",
        lambda w: w.s3.put_bucket_encryption(
            Bucket=BUCKET,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
        ),
    ),
    Case(
        "s3.PutBucketVersioning[Suspended]",
        lambda w: w.s3.put_bucket_versioning(
            Bucket=BUCKET, VersioningConfiguration={"Status": "Suspended"}
        ),
    ),
    Case(
        "s3.PutBucketTagging[50 tags, unicode values]",
        lambda w: w.s3.put_bucket_tagging(
            Bucket=BUCKET,
            Tagging={"TagSet": [{"Key": f"k{i}", "Value": "é" * 10} for i in range(50)]},
        ),
    ),
    Case(
        "s3.PutPublicAccessBlock[all on]",
        lambda w: w.s3.put_public_access_block(
            Bucket=BUCKET,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        ),
    ),
    Case(
        "s3.CreateBucket[owned already, us-east-1]",
        lambda w: w.s3.create_bucket(Bucket=BUCKET),
        ANY,  # us-east-1 answers 200 or BucketAlreadyOwnedByYou, depending on the account
    ),
    Case(
        "s3.GetPublicAccessBlock[none]",
        lambda w: w.s3.get_public_access_block(Bucket=BUCKET),
        "NoSuchPublicAccessBlockConfiguration",
    ),
    Case(
        "s3.PutObjectTagging[unicode value]",
        lambda w: w.s3.put_object_tagging(
            Bucket=BUCKET, Key=STATE_KEY, Tagging={"TagSet": [{"Key": "k", "Value": "é"}]}
        ),
    ),
    # SQS and Secrets Manager
    Case(
        "sqs.GetQueueUrl[missing]",
        lambda w: w.sqs.get_queue_url(QueueName="no-such-queue"),
        "AWS.SimpleQueueService.NonExistentQueue",
    ),
    Case(
        "sqs.GetQueueAttributes[All]",
        lambda w: w.sqs.get_queue_attributes(QueueUrl=_queue_url(w), AttributeNames=["All"]),
    ),
    Case(
        "sqs.SetQueueAttributes[14-day retention, policy]",
        lambda w: w.sqs.set_queue_attributes(
            QueueUrl=_queue_url(w),
            Attributes={"MessageRetentionPeriod": "1209600", "Policy": ""},
        ),
    ),
    Case(
        "sqs.CreateQueue[80-character name, tags]",
        lambda w: w.sqs.create_queue(QueueName="q" * 80, tags={"k": "v"}),
    ),
    Case("sqs.DeleteQueue[]", lambda w: w.sqs.delete_queue(QueueUrl=_queue_url(w))),
    Case(
        "secretsmanager.DescribeSecret[]",
        lambda w: w.secretsmanager.describe_secret(SecretId="sweep/secret"),
    ),
    Case(
        "secretsmanager.CreateSecret[unicode value, tags]",
        lambda w: w.secretsmanager.create_secret(
            Name="sweep/other_+=.@-", SecretString=UNICODE, Tags=[{"Key": "k", "Value": "v"}]
        ),
    ),
    Case(
        "secretsmanager.DescribeSecret[missing]",
        lambda w: w.secretsmanager.describe_secret(SecretId="no/such/secret"),
        "ResourceNotFoundException",
    ),
    # Price List
    Case(
        "pricing.GetProducts[Lambda, region filter, MaxResults=1]",
        lambda w: w.pricing.get_products(
            ServiceCode="AWSLambda",
            Filters=[{"Type": "TERM_MATCH", "Field": "regionCode", "Value": "eu-west-1"}],
            MaxResults=1,
        ),
    ),
)


def _answer(case: Case, world: World) -> tuple[int, str | None, str]:
    """(HTTP status, AWS error code or None, message) of the case's call."""
    try:
        case.call(world)
    except ClientError as error:
        status = int(error.response["ResponseMetadata"]["HTTPStatusCode"])
        return status, str(error.response["Error"].get("Code")), str(error)
    return 200, None, ""


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_no_internal_error(client: ClientFactory, sandbox: EmbeddedSandbox, case: Case) -> None:
    with sandbox.configured(update_s=0.0):
        status, code, message = _answer(case, _build(client))
    assert status < 500, f"{case.name}: {status} {code}: {message}"
    if case.expect is None:
        assert code is None, f"{case.name}: refused: {message}"
    elif case.expect != ANY:
        assert code == case.expect, f"{case.name}: {code or 'success'} instead of {case.expect}"


def test_the_sweep_names_every_operation_the_optimizer_declares() -> None:
    """A call the optimizer declares (its core, finder and steps) needs a case here."""
    declared = {(call.service, call.operation) for call in declared_calls(REGISTRY)}
    declared |= {(call.service, call.operation) for call in FINDER_READS}
    swept = {tuple(case.name.split("[", 1)[0].split(".", 1)) for case in CASES}
    assert sorted(declared - swept) == []


# --- an internal error, when there is one ------------------------------------------------

SHAPING_LOG: Final = "optimizer_async.sandbox.shaping"


def _broken_list_functions(*_args: Any, **_kwargs: Any) -> Any:
    raise RuntimeError("boom")


def _internal_error(call: Callable[[], Any]) -> ClientError:
    with pytest.raises(ClientError) as failed:
        call()
    return failed.value


def test_a_moto_exception_is_lambdas_own_500(
    client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    lam = client("lambda", attempts=1)
    monkeypatch.setattr(LambdaBackend, "list_functions", _broken_list_functions)
    error = _internal_error(lam.list_functions)
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert error.response["Error"]["Code"] == "ServiceException"


def test_each_internal_error_logs_one_line(
    client: ClientFactory, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    lam = client("lambda", attempts=1)
    monkeypatch.setattr(LambdaBackend, "list_functions", _broken_list_functions)
    with caplog.at_level(logging.ERROR, logger=SHAPING_LOG):
        _internal_error(lam.list_functions)
    lines = [r.getMessage() for r in caplog.records if r.name == SHAPING_LOG]
    assert len(lines) == 1
    assert "moto could not serve lambda.ListFunctions: RuntimeError: boom" in lines[0]
    assert "\n" not in lines[0]


def test_a_sandbox_handler_exception_is_lambdas_own_500(
    client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    lam = client("lambda", attempts=1)
    monkeypatch.setattr(LambdaBackend, "list_functions", _broken_list_functions)
    error = _internal_error(lam.get_account_settings)  # the sandbox answers it
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert error.response["Error"]["Code"] == "ServiceException"  # not an HTML page
