"""Minimal AWS fixtures made with plain boto3, for testing the sandbox's patches."""

from __future__ import annotations

import io
import json
import urllib.request
import zipfile
from typing import Any

from optimizer_async.environment_spec import LAMBDA_TRUST_POLICY
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
