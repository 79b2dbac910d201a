"""Minimal AWS fixtures made with plain boto3, for testing the sandbox's patches."""

from __future__ import annotations

import io
import json
import urllib.request
import zipfile
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from optimizer_async.definitions.environment_spec import LAMBDA_TRUST_POLICY
from optimizer_async.sandbox.server import EmbeddedSandbox


def tiny_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def lambda_handler(event, context):\n    return event\n")
    return buffer.getvalue()


def make_role(iam: Any, name: str) -> str:
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST_POLICY))
    return str(role["Role"]["Arn"])


def make_function(lambda_client: Any, name: str, role_arn: str, **extra: Any) -> dict[str, Any]:
    created: dict[str, Any] = lambda_client.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role_arn,
        Handler="handler.lambda_handler",
        Code={"ZipFile": tiny_zip()},
        MemorySize=3008,
        Timeout=300,
        **extra,
    )
    return created


def make_queue(sqs: Any, name: str) -> str:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])


def send_message_policy(queue_arn: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": queue_arn}],
        }
    )


def control(sandbox: EmbeddedSandbox, method: str, route: str, payload: Any = None) -> Any:
    """Call the sandbox's HTTP control API, as an out-of-process client would."""
    request = urllib.request.Request(
        f"{sandbox.endpoint_url}/_sandbox/{route}",
        data=None if payload is None else json.dumps(payload).encode(),
        method=method,
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def model_now(sandbox: EmbeddedSandbox) -> datetime:
    """The workload model's current time, as an out-of-process client would ask for it."""
    return datetime.fromisoformat(control(sandbox, "GET", "workload/now")["now"])


def whole_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def outcomes(
    sandbox: EmbeddedSandbox, start: datetime, end: datetime, region: str = "us-east-1"
) -> dict[str, dict[str, Any]]:
    query = urlencode({"region": region, "start": start.isoformat(), "end": end.isoformat()})
    found: dict[str, dict[str, Any]] = control(sandbox, "GET", f"workload/outcomes?{query}")
    return found


# (id prefix, namespace, metric, stat): what the optimizer reads about a function.
EVIDENCE = (
    ("invocations", "AWS/Lambda", "Invocations", "Sum"),
    ("errors", "AWS/Lambda", "Errors", "Sum"),
    ("throttles", "AWS/Lambda", "Throttles", "Sum"),
    ("p99", "AWS/Lambda", "Duration", "p99"),
    ("max", "AWS/Lambda", "Duration", "Maximum"),
    ("sum", "AWS/Lambda", "Duration", "Sum"),
    ("concurrency", "AWS/Lambda", "ConcurrentExecutions", "Maximum"),
    ("bytes", "AWS/Logs", "IncomingBytes", "Sum"),
)


def evidence(
    cloudwatch: Any, functions: list[str], start: datetime, end: datetime, period: int = 0
) -> dict[str, dict[str, list[float]]]:
    """GetMetricData of EVIDENCE per function (one period over the window unless given):
    {function: {name: values}}."""
    period = period or int((end - start).total_seconds())
    queries = []
    for index, function in enumerate(functions):
        for name, namespace, metric, stat in EVIDENCE:
            dimension = (
                ("LogGroupName", f"/aws/lambda/{function}")
                if namespace == "AWS/Logs"
                else ("FunctionName", function)
            )
            queries.append(
                {
                    "Id": f"{name}{index}",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": namespace,
                            "MetricName": metric,
                            "Dimensions": [{"Name": dimension[0], "Value": dimension[1]}],
                        },
                        "Period": period,
                        "Stat": stat,
                    },
                }
            )
    answer = cloudwatch.get_metric_data(
        MetricDataQueries=queries, StartTime=start, EndTime=end, ScanBy="TimestampAscending"
    )
    values = {str(r["Id"]): list(r["Values"]) for r in answer["MetricDataResults"]}
    return {
        function: {name: values[f"{name}{index}"] for name, *_ in EVIDENCE}
        for index, function in enumerate(functions)
    }
