"""What an AWS error means for us, by error code: one place that knows the codes."""

from __future__ import annotations

from typing import Final

from botocore.exceptions import ClientError

NOT_FOUND_CODES: Final = frozenset(
    {
        "ResourceNotFoundException",  # Lambda, Logs, Secrets Manager
        "NoSuchEntity",  # IAM
        "AWS.SimpleQueueService.NonExistentQueue",  # SQS (query-compatible code)
        "QueueDoesNotExist",  # SQS (JSON protocol)
        "NoSuchBucket",
        "NoSuchLifecycleConfiguration",
        "404",
    }
)
UPDATE_CONFLICT: Final = "ResourceConflictException"
STALE_REVISION: Final = "PreconditionFailedException"
# Lambda's words when IAM has not yet propagated a permission the function's role just got.
IAM_NOT_YET_PROPAGATED: Final = ("does not have permissions to call", "cannot be assumed by Lambda")


def error_code(error: BaseException) -> str | None:
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code")
        return str(code) if code else None
    return None


def error_message(error: BaseException) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Message", ""))
    return str(error)


def is_not_found(error: BaseException) -> bool:
    return error_code(error) in NOT_FOUND_CODES


def is_update_conflict(error: BaseException) -> bool:
    return error_code(error) == UPDATE_CONFLICT


def is_stale_revision(error: BaseException) -> bool:
    return error_code(error) == STALE_REVISION


def is_iam_propagation(error: BaseException) -> bool:
    """A permission just granted that Lambda cannot see yet (retry it; it will pass)."""
    return error_code(error) == "InvalidParameterValueException" and any(
        phrase in error_message(error) for phrase in IAM_NOT_YET_PROPAGATED
    )


# Some AWS messages echo what was sent: Lambda's "environment variables exceed 4 KB" error
# quotes every variable after "String measured:". Such messages are cut there.
_ECHOES_VALUES: Final = ("String measured:",)


def describe(error: BaseException) -> str:
    """A one-line, secret-free description for reports and logs: code and AWS's message."""
    code = error_code(error)
    message = error_message(error) if code else str(error)
    for marker in _ECHOES_VALUES:
        if marker in message:
            message = message.split(marker, 1)[0] + f"{marker} [values withheld]"
    message = " ".join(message.split())
    return f"{code}: {message}" if code else f"{type(error).__name__}: {message}"
