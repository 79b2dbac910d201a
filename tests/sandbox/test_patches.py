"""Each sandbox patch, proven over HTTP with plain boto3 (what AWS does, moto did not).

Every test runs on a ManualClock: update windows and IAM propagation end exactly when the
test advances time past them, however slow the machine.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from optimizer_async.aws.limits import LOG_RETENTION_DAYS
from optimizer_async.sandbox.clock import ManualClock
from optimizer_async.sandbox.server import EmbeddedSandbox
from tests.conftest import ClientFactory
from tests.sandbox.helpers import control, make_function, make_queue, make_role, send_message_policy

pytestmark = pytest.mark.usefixtures("clock")


def _error_code(error: ClientError) -> str:
    return str(error.response["Error"]["Code"])


def test_tracing_and_dead_letter_config_survive_update(client: ClientFactory) -> None:
    iam, lam, sqs = client("iam"), client("lambda"), client("sqs")
    queue_arn = make_queue(sqs, "dlq-a")
    role = make_role(iam, "role-a")
    iam.put_role_policy(
        RoleName="role-a", PolicyName="dlq", PolicyDocument=send_message_policy(queue_arn)
    )
    make_function(lam, "fn-a", role, DeadLetterConfig={"TargetArn": queue_arn})
    assert lam.get_function(FunctionName="fn-a")["Configuration"]["DeadLetterConfig"] == {
        "TargetArn": queue_arn
    }

    updated = lam.update_function_configuration(
        FunctionName="fn-a", TracingConfig={"Mode": "Active"}
    )
    assert updated["TracingConfig"] == {"Mode": "Active"}
    config = lam.get_function_configuration(FunctionName="fn-a")
    assert config["TracingConfig"] == {"Mode": "Active"}
    assert config["DeadLetterConfig"] == {"TargetArn": queue_arn}


def test_empty_dead_letter_target_removes_it(
    client: ClientFactory, sandbox: EmbeddedSandbox
) -> None:
    iam, lam, sqs = client("iam"), client("lambda"), client("sqs")
    queue_arn = make_queue(sqs, "dlq-b")
    role = make_role(iam, "role-b")
    iam.put_role_policy(
        RoleName="role-b", PolicyName="dlq", PolicyDocument=send_message_policy(queue_arn)
    )
    with sandbox.configured(update_s=0.0):
        make_function(lam, "fn-b", role, DeadLetterConfig={"TargetArn": queue_arn})
        lam.update_function_configuration(FunctionName="fn-b", DeadLetterConfig={"TargetArn": ""})
    assert "DeadLetterConfig" not in lam.get_function_configuration(FunctionName="fn-b")


def _status(lam: Any, name: str) -> str:
    return str(lam.get_function_configuration(FunctionName=name)["LastUpdateStatus"])


@pytest.mark.parametrize("time_scale", [1.0, 4.0])
def test_update_is_in_progress_for_the_window_and_conflicts(
    client: ClientFactory, sandbox: EmbeddedSandbox, clock: ManualClock, time_scale: float
) -> None:
    lam = client("lambda", attempts=1)
    make_function(lam, "fn-c", make_role(client("iam"), "role-c"))
    window = 1.0 / time_scale  # update_s 1.0 on a clock running time_scale times faster
    with sandbox.configured(update_s=1.0, time_scale=time_scale):
        answer = lam.update_function_configuration(FunctionName="fn-c", MemorySize=1024)
        assert answer["LastUpdateStatus"] == "InProgress"
        assert (
            lam.get_function(FunctionName="fn-c")["Configuration"]["LastUpdateStatus"]
            == "InProgress"
        )
        with pytest.raises(ClientError) as conflict:
            lam.update_function_configuration(FunctionName="fn-c", Timeout=30)
        assert conflict.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
        assert _error_code(conflict.value) == "ResourceConflictException"
        assert "An update is in progress for resource: arn:aws:lambda:" in str(conflict.value)

        clock.advance(window / 2)
        assert _status(lam, "fn-c") == "InProgress"
        with pytest.raises(ClientError, match="ResourceConflictException"):
            lam.update_function_configuration(FunctionName="fn-c", Timeout=30)

        clock.advance(window / 2)  # the window ends exactly here
        config = lam.get_function_configuration(FunctionName="fn-c")
        assert config["LastUpdateStatus"] == "Successful"
        assert config["MemorySize"] == 1024
        assert config["Timeout"] == 300  # the refused updates changed nothing
        assert lam.update_function_configuration(FunctionName="fn-c", Timeout=30)["Timeout"] == 30


def test_failed_update_reports_reason_and_keeps_previous_config(
    client: ClientFactory, sandbox: EmbeddedSandbox, clock: ManualClock
) -> None:
    lam = client("lambda")
    make_function(lam, "fn-d", make_role(client("iam"), "role-d"))
    with sandbox.configured(update_s=0.5, update_failure_rate=1.0):
        lam.update_function_configuration(FunctionName="fn-d", MemorySize=1024)
        during = lam.get_function(FunctionName="fn-d")["Configuration"]
        assert (during["LastUpdateStatus"], during["MemorySize"]) == ("InProgress", 1024)
        assert "LastUpdateStatusReason" not in during
        clock.advance(0.5)
        config = lam.get_function(FunctionName="fn-d")["Configuration"]
    assert config["LastUpdateStatus"] == "Failed"
    assert config["LastUpdateStatusReason"]
    assert config["LastUpdateStatusReasonCode"] == "InternalError"
    assert config["MemorySize"] == 3008


def test_account_settings_and_the_unreserved_floor(
    client: ClientFactory, sandbox: EmbeddedSandbox
) -> None:
    lam = client("lambda", attempts=1)
    role = make_role(client("iam"), "role-e")
    for name in ("fn-e1", "fn-e2"):
        make_function(lam, name, role)
    limits = lam.get_account_settings()["AccountLimit"]
    assert (limits["ConcurrentExecutions"], limits["UnreservedConcurrentExecutions"]) == (
        1000,
        1000,
    )

    lam.put_function_concurrency(FunctionName="fn-e1", ReservedConcurrentExecutions=850)
    assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 150
    with pytest.raises(ClientError) as floor:
        lam.put_function_concurrency(FunctionName="fn-e2", ReservedConcurrentExecutions=51)
    assert _error_code(floor.value) == "InvalidParameterValueException"
    assert "below its minimum value of [100]" in str(floor.value)
    lam.put_function_concurrency(FunctionName="fn-e2", ReservedConcurrentExecutions=50)
    assert lam.get_function(FunctionName="fn-e2")["Concurrency"] == {
        "ReservedConcurrentExecutions": 50
    }
    # Changing a function's own reservation does not count it twice.
    lam.put_function_concurrency(FunctionName="fn-e1", ReservedConcurrentExecutions=850)


@pytest.mark.parametrize("days", [0, 2, 8, 366, 4000])
def test_retention_outside_the_allowed_list_is_refused(client: ClientFactory, days: int) -> None:
    logs = client("logs", attempts=1)
    logs.create_log_group(logGroupName="/aws/lambda/fn-f")
    with pytest.raises(ClientError) as refused:
        logs.put_retention_policy(logGroupName="/aws/lambda/fn-f", retentionInDays=days)
    assert _error_code(refused.value) == "InvalidParameterException"
    assert "retentionInDays" in str(refused.value)


def test_every_allowed_retention_is_accepted(client: ClientFactory) -> None:
    logs = client("logs")
    logs.create_log_group(logGroupName="/aws/lambda/fn-g")
    for days in LOG_RETENTION_DAYS:
        logs.put_retention_policy(logGroupName="/aws/lambda/fn-g", retentionInDays=days)
        group = logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/fn-g")["logGroups"][0]
        assert group["retentionInDays"] == days


def test_dead_letter_queue_needs_send_message_and_iam_takes_time(
    client: ClientFactory, sandbox: EmbeddedSandbox, clock: ManualClock
) -> None:
    iam, lam, sqs = client("iam"), client("lambda", attempts=1), client("sqs")
    queue_arn = make_queue(sqs, "dlq-h")
    other_queue = make_queue(sqs, "other-h")
    role = make_role(iam, "role-h")
    make_function(lam, "fn-h", role)

    def set_dead_letter_queue() -> dict[str, object]:
        answer: dict[str, object] = lam.update_function_configuration(
            FunctionName="fn-h", DeadLetterConfig={"TargetArn": queue_arn}
        )
        return answer

    with sandbox.configured(update_s=0.0, iam_propagation_s=4.0):
        with pytest.raises(ClientError) as refused:
            set_dead_letter_queue()
        assert _error_code(refused.value) == "InvalidParameterValueException"
        assert "does not have permissions to call SendMessage on SQS" in str(refused.value)

        # A policy for another queue does not help, even once IAM has seen it.
        iam.put_role_policy(
            RoleName="role-h", PolicyName="other", PolicyDocument=send_message_policy(other_queue)
        )
        clock.advance(4.0)
        with pytest.raises(ClientError, match="does not have permissions"):
            set_dead_letter_queue()

        iam.put_role_policy(
            RoleName="role-h", PolicyName="dlq", PolicyDocument=send_message_policy(queue_arn)
        )
        with pytest.raises(ClientError, match="does not have permissions"):
            set_dead_letter_queue()  # IAM has not caught up yet
        assert (
            lam.get_function_configuration(FunctionName="fn-h")["LastUpdateStatus"] == "Successful"
        )
        clock.advance(2.0)
        with pytest.raises(ClientError, match="does not have permissions"):
            set_dead_letter_queue()  # half-way: still not
        clock.advance(2.0)  # iam_propagation_s after the grant: IAM sees it
        answer = set_dead_letter_queue()
    assert answer["DeadLetterConfig"] == {"TargetArn": queue_arn}


def test_explicit_deny_wins(client: ClientFactory) -> None:
    iam, lam, sqs = client("iam"), client("lambda", attempts=1), client("sqs")
    queue_arn = make_queue(sqs, "dlq-i")
    role = make_role(iam, "role-i")
    iam.put_role_policy(
        RoleName="role-i", PolicyName="allow-all", PolicyDocument=send_message_policy("*")
    )
    iam.put_role_policy(
        RoleName="role-i",
        PolicyName="deny",
        PolicyDocument=send_message_policy(queue_arn).replace('"Allow"', '"Deny"'),
    )
    with pytest.raises(ClientError):
        make_function(lam, "fn-i", role, DeadLetterConfig={"TargetArn": queue_arn})


def test_stored_bytes_are_reported_as_recorded(
    client: ClientFactory, sandbox: EmbeddedSandbox
) -> None:
    logs = client("logs")
    logs.create_log_group(logGroupName="/aws/lambda/fn-j")
    control(
        sandbox,
        "PUT",
        "logs/stored-bytes",
        {"region": "us-east-1", "logGroupName": "/aws/lambda/fn-j", "storedBytes": 123_456_789},
    )
    group = logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/fn-j")["logGroups"][0]
    assert group["storedBytes"] == 123_456_789


def test_revision_id_is_an_optimistic_lock(client: ClientFactory, sandbox: EmbeddedSandbox) -> None:
    lam = client("lambda", attempts=1)
    created = make_function(lam, "fn-k", make_role(client("iam"), "role-k"))
    first = lam.get_function(FunctionName="fn-k")["Configuration"]["RevisionId"]
    assert first == created["RevisionId"]
    with sandbox.configured(update_s=0.0):
        answer = lam.update_function_configuration(
            FunctionName="fn-k", MemorySize=512, RevisionId=first
        )
        assert answer["RevisionId"] != first
        with pytest.raises(ClientError) as stale:
            lam.update_function_configuration(FunctionName="fn-k", MemorySize=256, RevisionId=first)
    assert stale.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert _error_code(stale.value) == "PreconditionFailedException"
    config = lam.get_function_configuration(FunctionName="fn-k")
    assert (config["MemorySize"], config["RevisionId"]) == (512, answer["RevisionId"])


def test_describe_log_groups_by_identifiers(client: ClientFactory) -> None:
    logs = client("logs", attempts=1)
    for name in ("/aws/lambda/a", "/aws/lambda/b", "/aws/lambda/c"):
        logs.create_log_group(logGroupName=name)
    arn = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/a"
    found = logs.describe_log_groups(logGroupIdentifiers=[arn, "/aws/lambda/c", "/aws/lambda/zz"])
    assert [g["logGroupName"] for g in found["logGroups"]] == ["/aws/lambda/a", "/aws/lambda/c"]
    with pytest.raises(ClientError) as too_many:
        logs.describe_log_groups(logGroupIdentifiers=[f"/g{i}" for i in range(51)])
    assert _error_code(too_many.value) == "InvalidParameterException"


def test_first_update_can_collide_with_someone_elses(
    client: ClientFactory, sandbox: EmbeddedSandbox, clock: ManualClock
) -> None:
    lam = client("lambda", attempts=1)
    make_function(lam, "fn-l", make_role(client("iam"), "role-l"))
    with sandbox.configured(collision_rate=1.0, update_s=0.5):
        with pytest.raises(ClientError) as collided:
            lam.update_function_configuration(FunctionName="fn-l", MemorySize=1024)
        assert _error_code(collided.value) == "ResourceConflictException"
        config = lam.get_function(FunctionName="fn-l")["Configuration"]
        assert (config["LastUpdateStatus"], config["MemorySize"]) == ("InProgress", 3008)
        with pytest.raises(ClientError, match="ResourceConflictException"):
            lam.update_function_configuration(FunctionName="fn-l", MemorySize=1024)
        clock.advance(0.5)  # the other update holds the function for one window
        assert _status(lam, "fn-l") == "Successful"
        answer = lam.update_function_configuration(FunctionName="fn-l", MemorySize=1024)
    assert answer["MemorySize"] == 1024  # a function collides at most once
