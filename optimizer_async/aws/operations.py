"""Facts about AWS operations shared by the optimizer and the sandbox: which only read,
and which IAM action authorises each."""

from __future__ import annotations

from typing import Final

_READ_PREFIXES: Final = ("Get", "List", "Describe", "Head", "Filter", "Lookup", "Query")
_READ_OPERATIONS: Final = frozenset(
    {"StartQuery", "StopQuery", "SelectObjectContent", "TestInvokeMethod", "Invoke", "AssumeRole"}
)


def is_write(operation: str) -> bool:
    """True for calls that may change state; unknown names count as writes (the safe side).
    Invoke counts as a read: it runs code but changes no configuration; so does AssumeRole,
    which hands out credentials and changes no resource."""
    return not (operation.startswith(_READ_PREFIXES) or operation in _READ_OPERATIONS)


# The IAM action that authorises an operation is `{service}:{Operation}` (IAM's service
# prefix equals botocore's service name for every service this product calls), except:
_IAM_ACTIONS: Final[dict[tuple[str, str], str | None]] = {
    ("sts", "GetCallerIdentity"): None,  # needs no permission: anyone may ask who they are
    ("s3", "GetBucketLifecycleConfiguration"): "s3:GetLifecycleConfiguration",
    ("s3", "PutBucketLifecycleConfiguration"): "s3:PutLifecycleConfiguration",
    ("s3", "DeleteBucketLifecycle"): "s3:PutLifecycleConfiguration",
}


def iam_action(service: str, operation: str) -> str | None:
    """The IAM action an API call needs; None where it needs none."""
    key = (service, operation)
    return _IAM_ACTIONS.get(key, f"{service}:{operation}")
