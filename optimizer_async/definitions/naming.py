"""The `{resource}-{suffix}` naming convention: the one place resource names are spelled.

The Pulumi stack, the sandbox seeder and the optimizer all import these names, so a
resource deployed by one is always found by the others, and a suffix matches exactly:
optimising `dev` never touches `lambda-function-dev2` or `lambda-function-dev-old`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

DEFAULT_FUNCTION_BASE = "lambda-function"
PROJECT = "lambda-optimizer"
MANAGED_BY = "pulumi"
OPTIMIZER = "lambda-optimizer"

_BUCKET_PREFIX = "lambda-deployments-"
_ACCOUNT_ID_PART = len("-123456789012")
# S3 bucket names are at most 63 characters and the bucket carries prefix, suffix and account.
MAX_SUFFIX_LENGTH = 63 - len(_BUCKET_PREFIX) - _ACCOUNT_ID_PART

# Lower case because S3 bucket names must be; hyphens inside only, never at an end.
_SUFFIX_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
_BASE_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?")
_ACCOUNT_RE = re.compile(r"\d{12}")
# An AWS region name (us-east-1, ap-southeast-2, us-gov-west-1).
REGION_RE = re.compile(r"[a-z]{2}(-[a-z]+)+-\d")


class InvalidNameError(ValueError):
    """A suffix, function base or account id that cannot form valid AWS resource names."""


def validate_suffix(suffix: str) -> str:
    """Return `suffix` unchanged if every resource name built from it is valid in AWS."""
    if not suffix:
        raise InvalidNameError("environment suffix is empty")
    if len(suffix) > MAX_SUFFIX_LENGTH:
        raise InvalidNameError(
            f"environment suffix {suffix!r} is longer than {MAX_SUFFIX_LENGTH} characters"
        )
    if not _SUFFIX_RE.fullmatch(suffix):
        raise InvalidNameError(
            f"environment suffix {suffix!r} must be lower-case letters, digits and inner hyphens"
        )
    return suffix


def validate_function_base(base: str) -> str:
    """Return `base` unchanged if `{base}-{longest suffix}` is a valid Lambda function name."""
    if not _BASE_RE.fullmatch(base):
        raise InvalidNameError(
            f"function base {base!r} must be letters, digits, '-' or '_' (not at either end)"
        )
    if len(base) + 1 + MAX_SUFFIX_LENGTH > 64:
        raise InvalidNameError(f"function base {base!r} leaves no room for a suffix in 64 chars")
    return base


def parse_suffixes(values: Iterable[str]) -> tuple[str, ...]:
    """Split comma-separated values, validate each suffix, keep first-seen order, drop repeats."""
    seen: dict[str, None] = {}
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if part:
                seen.setdefault(validate_suffix(part), None)
    return tuple(seen)


def log_group_name(function_name: str) -> str:
    """Lambda's default log group for a function (used when LoggingConfig names none)."""
    return f"/aws/lambda/{function_name}"


def error_rate_alarm_name(function_name: str) -> str:
    return f"error-rate-{function_name}"


def duration_alarm_name(function_name: str) -> str:
    return f"duration-{function_name}"


@dataclass(frozen=True)
class EnvironmentNames:
    """Every physical name of one environment, derived from its suffix."""

    suffix: str

    def __post_init__(self) -> None:
        validate_suffix(self.suffix)

    def function(self, base: str = DEFAULT_FUNCTION_BASE) -> str:
        return f"{validate_function_base(base)}-{self.suffix}"

    def function_log_group(self, base: str = DEFAULT_FUNCTION_BASE) -> str:
        return log_group_name(self.function(base))

    @property
    def role(self) -> str:
        return f"lambda-role-{self.suffix}"

    @property
    def layer(self) -> str:
        return f"shared-deps-{self.suffix}"

    def bucket(self, account_id: str) -> str:
        if not _ACCOUNT_RE.fullmatch(account_id):
            raise InvalidNameError(f"account id {account_id!r} is not 12 digits")
        return f"{_BUCKET_PREFIX}{self.suffix}-{account_id}"

    @property
    def database_url_secret(self) -> str:
        return f"database-url-{self.suffix}"

    @property
    def api_key_secret(self) -> str:
        return f"api-key-{self.suffix}"

    @property
    def dead_letter_queue(self) -> str:
        return f"lambda-dlq-{self.suffix}"

    @property
    def optimizer_policy(self) -> str:
        """The inline role policy the optimizer adds (DLQ, secrets, X-Ray)."""
        return f"lambda-optimizer-{self.suffix}"

    @property
    def tags(self) -> dict[str, str]:
        """Tags on everything the stack (and the seeder) creates."""
        return {"environment-suffix": self.suffix, "managed-by": MANAGED_BY, "project": PROJECT}

    @property
    def optimizer_tags(self) -> dict[str, str]:
        """Tags on what the optimizer itself creates (queue, alarms, log groups it makes)."""
        return {**self.tags, "managed-by": OPTIMIZER}
