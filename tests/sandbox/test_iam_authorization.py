"""IAM enforcement in the sandbox, over HTTP with plain boto3: each request is authorised
against its signer's policies on the ARN AWS evaluates (moto checks `*` for most services),
only while the sandbox enforces IAM."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from optimizer_async.sandbox.server import EmbeddedSandbox
from tests.conftest import REGION, ClientFactory
from tests.sandbox.helpers import control, make_function, make_queue, make_role

ACCOUNT = "123456789012"
ARN = f"{REGION}:{ACCOUNT}"
User = Callable[[str], Any]  # service -> a boto3 client signed with the user's key
_names = itertools.count()


@pytest.fixture
def user(sandbox: EmbeddedSandbox, client: ClientFactory) -> Callable[..., User]:
    """`user(statement, ...)`: a new IAM user holding those Allow/Deny statements (none:
    no policy at all)."""

    def make(*statements: dict[str, Any]) -> User:
        iam, name = client("iam"), f"user-{next(_names)}"
        iam.create_user(UserName=name)
        if statements:
            document = json.dumps({"Version": "2012-10-17", "Statement": list(statements)})
            iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=document)
        key = iam.create_access_key(UserName=name)["AccessKey"]

        def signed(service: str) -> Any:
            return boto3.client(
                service,  # type: ignore[call-overload]
                endpoint_url=sandbox.endpoint_url,
                region_name=REGION,
                aws_access_key_id=key["AccessKeyId"],
                aws_secret_access_key=key["SecretAccessKey"],
            )

        return signed

    return make


@pytest.fixture
def enforcing(sandbox: EmbeddedSandbox) -> Iterator[None]:
    with sandbox.enforcing_iam():
        yield


def allow(action: str | list[str], resource: str | list[str] = "*") -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource}


def _denial(call: Callable[[], Any]) -> tuple[int, str, str]:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response
    return error["ResponseMetadata"]["HTTPStatusCode"], error["Error"]["Code"], str(caught.value)


def test_off_by_default_and_after_the_block_any_credentials_pass(
    sandbox: EmbeddedSandbox, client: ClientFactory, user: Callable[..., User]
) -> None:
    nobody = user()  # holds no policy at all
    assert nobody("sqs").list_queues().get("QueueUrls") is None
    with sandbox.enforcing_iam():
        assert sandbox.config.iam_enforcement
        assert _denial(lambda: nobody("sqs").list_queues())[:2] == (403, "AccessDenied")
        assert _denial(lambda: client("sqs").list_queues())[1] == "InvalidClientTokenId"
    assert not sandbox.config.iam_enforcement
    client("sqs").list_queues()
    assert control(sandbox, "PUT", "config", {"iam_enforcement": True})["iam_enforcement"]
    assert _denial(lambda: nobody("sqs").list_queues())[1] == "AccessDenied"
    sandbox.configure(sandbox.config.replace(iam_enforcement=False))


def test_a_function_is_authorised_by_its_arn_with_lambdas_error(
    client: ClientFactory, user: Callable[..., User], sandbox: EmbeddedSandbox
) -> None:
    role = make_role(client("iam"), "role-a")
    for name in ("fn-a", "fn-b"):
        make_function(client("lambda"), name, role, Tags={"team": "a"})
    reader = user(allow("lambda:GetFunction", f"arn:aws:lambda:{ARN}:function:fn-a"))
    with sandbox.enforcing_iam():
        answer = reader("lambda").get_function(FunctionName="fn-a")
        status, code, message = _denial(lambda: reader("lambda").get_function(FunctionName="fn-b"))
    assert (status, code) == (403, "AccessDeniedException")
    assert f"lambda:GetFunction on resource: arn:aws:lambda:{ARN}:function:fn-b" in message
    # AWS shows a function's tags only to a caller allowed lambda:ListTags.
    assert "Tags" not in answer
    assert answer["TagsError"]["ErrorCode"] == "AccessDeniedException"
    tagged = user(allow(["lambda:GetFunction", "lambda:ListTags"], "*"))
    with sandbox.enforcing_iam():
        assert tagged("lambda").get_function(FunctionName="fn-a")["Tags"] == {"team": "a"}


def test_sandbox_answered_operations_are_authorised_too(
    user: Callable[..., User], sandbox: EmbeddedSandbox
) -> None:
    nobody, allowed = user(), user(allow("lambda:GetAccountSettings"))
    with sandbox.enforcing_iam():
        assert _denial(lambda: nobody("lambda").get_account_settings())[:2] == (
            403,
            "AccessDeniedException",
        )
        assert allowed("lambda").get_account_settings()["AccountLimit"]
    assert sandbox.stats()["by_outcome"]["error:AccessDeniedException"] == 1


def test_log_group_actions_need_both_arn_forms_and_tags_need_tag_resource(
    client: ClientFactory, user: Callable[..., User], sandbox: EmbeddedSandbox
) -> None:
    group = f"arn:aws:logs:{ARN}:log-group:/aws/lambda/fn"
    plain = user(allow(["logs:CreateLogGroup", "logs:TagResource"], group))
    both = user(allow("logs:CreateLogGroup", [group, f"{group}:*"]))
    tagging = user(allow(["logs:CreateLogGroup", "logs:TagResource"], [group, f"{group}:*"]))
    listing = user(allow("logs:DescribeLogGroups", f"arn:aws:logs:{ARN}:log-group:*"))
    one_group = user(allow("logs:DescribeLogGroups", [group, f"{group}:*"]))
    create = "/aws/lambda/fn"
    with sandbox.enforcing_iam():
        # CreateLogGroup is evaluated on `NAME:log-stream:` too: the plain ARN is not enough
        status, code, _ = _denial(lambda: plain("logs").create_log_group(logGroupName=create))
        assert (status, code) == (400, "AccessDeniedException")
        _, _, message = _denial(
            lambda: both("logs").create_log_group(logGroupName=create, tags={"a": "b"})
        )
        assert "logs:TagResource" in message  # tag-on-create needs the tagging action
        tagging("logs").create_log_group(logGroupName=create, tags={"a": "b"})
        _, _, message = _denial(lambda: both("logs").create_log_group(logGroupName=create + "2"))
        assert f"logs:CreateLogGroup on resource: {group}2" in message
        listing("logs").describe_log_groups(logGroupNamePrefix=create)
        assert (
            _denial(lambda: one_group("logs").describe_log_groups())[1] == "AccessDeniedException"
        )
    assert client("logs").describe_log_groups()["logGroups"][0]["logGroupName"] == create


def test_alarms_queues_and_secrets_by_arn(
    client: ClientFactory, user: Callable[..., User], sandbox: EmbeddedSandbox
) -> None:
    make_queue(client("sqs"), "q-1")
    secret = client("secretsmanager").create_secret(Name="db-url", SecretString="x")["ARN"]
    holder = user(
        allow("cloudwatch:DescribeAlarms", f"arn:aws:cloudwatch:{ARN}:alarm:a"),
        allow(["sqs:GetQueueUrl", "sqs:CreateQueue"], f"arn:aws:sqs:{ARN}:q.1"),
        allow(
            "secretsmanager:DescribeSecret", f"arn:aws:secretsmanager:{ARN}:secret:db-url-??????"
        ),
    )
    with sandbox.enforcing_iam():
        cloudwatch, sqs, secrets = holder("cloudwatch"), holder("sqs"), holder("secretsmanager")
        cloudwatch.describe_alarms(AlarmNames=["a"])  # authorised as cloudwatch:, not monitoring:
        assert (
            _denial(lambda: cloudwatch.describe_alarms(AlarmNames=["a", "b"]))[1] == "AccessDenied"
        )
        assert _denial(lambda: cloudwatch.describe_alarms())[1] == "AccessDenied"
        # `.` is a dot and `*` nothing else: q.1 is granted, q-1 (existing) is not
        assert _denial(lambda: sqs.get_queue_url(QueueName="q-1"))[:2] == (403, "AccessDenied")
        assert _denial(lambda: sqs.get_queue_url(QueueName="q.1"))[1] != "AccessDenied"
        assert secrets.describe_secret(SecretId="db-url")["ARN"] == secret  # `?`: one character
        assert _denial(lambda: secrets.describe_secret(SecretId="db"))[:2] == (
            400,
            "AccessDeniedException",
        )


def test_a_queue_created_with_tags_needs_tag_queue_and_a_deny_wins(
    user: Callable[..., User], sandbox: EmbeddedSandbox
) -> None:
    queue = f"arn:aws:sqs:{ARN}:dlq"
    creator = user(allow("sqs:CreateQueue", queue))
    tagger = user(allow(["sqs:CreateQueue", "sqs:TagQueue"], queue))
    denied = user(
        allow(["sqs:CreateQueue", "sqs:TagQueue"], queue),
        {"Effect": "Deny", "Action": "sqs:tagqueue", "Resource": "*"},
    )
    with sandbox.enforcing_iam():
        _, _, message = _denial(
            lambda: creator("sqs").create_queue(QueueName="dlq", tags={"a": "b"})
        )
        assert f"sqs:TagQueue on resource: {queue}" in message
        assert _denial(lambda: denied("sqs").create_queue(QueueName="dlq", tags={"a": "b"}))
        tagger("sqs").create_queue(QueueName="dlq", tags={"a": "b"})
        creator("sqs").create_queue(QueueName="dlq")  # no tags: CreateQueue alone
