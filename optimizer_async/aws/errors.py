"""What an AWS error means for us, by error code: one place that knows the codes.

Errors are read by their shape (botocore's and aiobotocore's `ClientError` carry the parsed
answer in `.response`), so that planning code can classify them without importing the SDK.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

NOT_FOUND_CODES: Final = frozenset(
    {
        "ResourceNotFoundException",  # Lambda, Logs, Secrets Manager
        "NoSuchEntity",  # IAM
        "AWS.SimpleQueueService.NonExistentQueue",  # SQS (query-compatible code)
        "QueueDoesNotExist",  # SQS (JSON protocol)
        "NoSuchBucket",
        "NoSuchLifecycleConfiguration",
        "ServerSideEncryptionConfigurationNotFoundError",
        "NoSuchPublicAccessBlockConfiguration",
        "NoSuchKey",
        "404",
    }
)
UPDATE_CONFLICT: Final = "ResourceConflictException"
STALE_REVISION: Final = "PreconditionFailedException"
# Lambda's words when IAM has not yet propagated a permission the function's role just got.
IAM_NOT_YET_PROPAGATED: Final = ("does not have permissions to call", "cannot be assumed by Lambda")


def _error(error: BaseException) -> Mapping[str, Any] | None:
    """The `Error` member of an AWS client error's parsed answer; None for other errors."""
    response = getattr(error, "response", None)
    if not isinstance(response, Mapping):
        return None
    detail = response.get("Error")
    return detail if isinstance(detail, Mapping) else None


def error_code(error: BaseException) -> str | None:
    detail = _error(error)
    code = None if detail is None else detail.get("Code")
    return str(code) if code else None


def error_message(error: BaseException) -> str:
    detail = _error(error)
    return str(error) if detail is None else str(detail.get("Message", ""))


def is_not_found(error: BaseException) -> bool:
    return error_code(error) in NOT_FOUND_CODES


def is_update_conflict(error: BaseException) -> bool:
    return error_code(error) == UPDATE_CONFLICT


def is_stale_revision(error: BaseException) -> bool:
    return error_code(error) == STALE_REVISION


THROTTLE_CODES: Final = frozenset(
    {"Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded"}
)


def is_transient(error: BaseException) -> bool:
    """A throttle or a server error: the same call may pass a moment later."""
    response = getattr(error, "response", None)
    status = (
        response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if isinstance(response, Mapping)
        else None
    )
    return error_code(error) in THROTTLE_CODES or (isinstance(status, int) and status >= 500)


def is_iam_propagation(error: BaseException) -> bool:
    """A permission just granted that Lambda cannot see yet (retry it; it will pass)."""
    return error_code(error) == "InvalidParameterValueException" and any(
        phrase in error_message(error) for phrase in IAM_NOT_YET_PROPAGATED
    )


# Some AWS messages echo what was sent: Lambda's "environment variables exceed 4 KB" error
# quotes every variable after "String measured:". Such messages are cut there.
_ECHOES_VALUES: Final = ("String measured:",)


def describe(error: BaseException) -> str:
    """A one-line, secret-free description for reports and logs: code and AWS's message.
    Of concurrent failures (an exception group), the first, and how many more there were."""
    if isinstance(error, BaseExceptionGroup):
        leaves = _leaves(error)
        more = f" (and {len(leaves) - 1} more)" if len(leaves) > 1 else ""
        return describe(leaves[0]) + more
    code = error_code(error)
    message = error_message(error) if code else str(error)
    for marker in _ECHOES_VALUES:
        if marker in message:
            message = message.split(marker, 1)[0] + f"{marker} [values withheld]"
    message = " ".join(message.split())
    return f"{code}: {message}" if code else f"{type(error).__name__}: {message}"


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    found: list[BaseException] = []
    for error in group.exceptions:
        found += _leaves(error) if isinstance(error, BaseExceptionGroup) else [error]
    return found
