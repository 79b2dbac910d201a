"""What discovery found: the observed state of each environment, as immutable values.

Environment variables hold values that may be secret. They are kept (the update must send
the merged map back) but never shown: `EnvironmentVariables` prints names only, and the
plan, report, logs and before-images carry names and hashes, never values.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any


class EnvironmentVariables(Mapping[str, str]):
    """A function's environment variables; repr and str show names only."""

    def __init__(self, variables: Mapping[str, str] | None = None) -> None:
        self._variables = dict(variables or {})

    def __getitem__(self, key: str) -> str:
        return self._variables[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._variables)

    def __len__(self) -> int:
        return len(self._variables)

    def __repr__(self) -> str:
        return f"EnvironmentVariables(names={sorted(self._variables)})"

    __str__ = __repr__

    def merged(self, additions: Mapping[str, str]) -> dict[str, str]:
        """Existing variables byte for byte, plus additions whose names are not taken."""
        return {**additions, **self._variables}

    def fingerprint(self) -> str:
        """A hash that tells whether the values changed, without revealing them."""
        canonical = json.dumps(self._variables, sort_keys=True).encode()
        return hashlib.sha256(canonical).hexdigest()


def environment_error(config: Mapping[str, Any]) -> str | None:
    """GetFunction shows `Environment.Error` instead of variables it cannot decrypt."""
    error = (config.get("Environment") or {}).get("Error")
    return str(error.get("ErrorCode") or "unreadable") if error else None


@dataclass(frozen=True)
class FunctionState:
    name: str
    arn: str
    role_arn: str
    memory_mb: int
    timeout_s: int
    tracing_mode: str
    dead_letter_target: str | None
    environment: EnvironmentVariables
    reserved_concurrency: int | None
    log_group: str
    architecture: str
    revision_id: str | None
    last_update_status: str
    tags: Mapping[str, str] = field(default_factory=dict)
    # Lambda could not show the variables (KMS-encrypted with a key we may not use): the
    # error code. They cannot be merged then, so they must not be written either.
    environment_error: str | None = None

    @property
    def role_name(self) -> str:
        return self.role_arn.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class LogGroupState:
    name: str
    retention_days: int | None
    stored_bytes: int


@dataclass(frozen=True)
class Usage:
    """30 days of CloudWatch usage: what the savings estimate is computed from."""

    days: int
    invocations: float
    duration_ms: float  # summed over all invocations


@dataclass(frozen=True)
class FunctionInventory:
    state: FunctionState
    log_group: LogGroupState | None
    alarms: Mapping[str, Mapping[str, Any] | None]  # alarm name -> DescribeAlarms entry
    usage: Usage | None = None

    @property
    def name(self) -> str:
        return self.state.name


@dataclass(frozen=True)
class QueueState:
    name: str
    url: str
    arn: str
    attributes: Mapping[str, str]


@dataclass(frozen=True)
class RolePolicyState:
    role_name: str
    policy_name: str
    document: Mapping[str, Any] | None  # None: the role has no such inline policy


@dataclass(frozen=True)
class BucketState:
    name: str
    exists: bool
    versioning: str | None  # "Enabled", "Suspended" or None (never enabled)
    lifecycle_rules: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class AccountState:
    account_id: str
    region: str
    concurrency_limit: int
    unreserved_concurrency: int


@dataclass(frozen=True)
class EnvironmentInventory:
    suffix: str
    account_id: str
    region: str
    functions: tuple[FunctionInventory, ...]
    secret_arns: Mapping[str, str | None]  # secret name -> ARN, None when missing
    queue: QueueState | None
    role_policies: tuple[RolePolicyState, ...]  # one per execution role of the functions
    bucket: BucketState
    skipped: tuple[str, ...] = ()  # names that matched but belong to another environment

    def function(self, name: str) -> FunctionInventory:
        for inventory in self.functions:
            if inventory.name == name:
                return inventory
        raise KeyError(name)
