from __future__ import annotations

from botocore.exceptions import ClientError

from optimizer_async.aws import errors


def _error(code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "UpdateFunctionConfiguration")


def test_messages_that_echo_environment_values_are_cut() -> None:
    error = _error(
        "InvalidParameterValueException",
        "Lambda was unable to configure your environment variables because the environment "
        'variables you have provided exceeded the 4KB limit. String measured: {"DB":"pass"}',
    )
    described = errors.describe(error)
    assert "pass" not in described
    assert described.endswith("String measured: [values withheld]")


def test_classification() -> None:
    assert errors.is_update_conflict(_error("ResourceConflictException", "update in progress"))
    assert errors.is_stale_revision(_error("PreconditionFailedException", "revision"))
    assert errors.is_not_found(_error("NoSuchEntity", "role policy"))
    assert errors.is_iam_propagation(
        _error(
            "InvalidParameterValueException",
            "The provided execution role does not have permissions to call SendMessage on SQS",
        )
    )
    assert not errors.is_iam_propagation(_error("InvalidParameterValueException", "bad memory"))
    assert errors.describe(RuntimeError("boom\n  line")) == "RuntimeError: boom line"  # one line


def test_concurrent_failures_are_described_by_the_first() -> None:
    group = ExceptionGroup(
        "unhandled errors in a TaskGroup",
        [_error("ThrottlingException", "Rate exceeded"), ExceptionGroup("x", [ValueError("v")])],
    )
    assert errors.describe(group) == "ThrottlingException: Rate exceeded (and 1 more)"
