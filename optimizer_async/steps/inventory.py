"""What discovery found: the observed state of each environment, as immutable values.

The core of an environment is its functions, found by exact name (`FunctionState`, from
GetFunction). Everything else - log groups, alarms, the queue, usage, ... - is a *part*,
read by the part's own reader in `steps/` and kept here under the part's name; code asks
for a part with its typed key: `function.part(LOG_GROUP)`.

Environment variables hold values that may be secret. They are kept (the update must send
the merged map back) but never shown: `EnvironmentVariables` prints names only, and the
plan, report, logs and before-images carry names and hashes, never values.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Generic, TypeVar, cast

from optimizer_async.definitions.naming import log_group_name

# The run's fingerprint key (the state store's; `runs/orchestration.py` sets it). Unset: a
# key of this process, so a fingerprint is never a bare, guessable hash.
_PROCESS_KEY: Final = secrets.token_bytes(32)
FINGERPRINT_KEY: ContextVar[bytes] = ContextVar("fingerprint_key", default=_PROCESS_KEY)

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


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

    def fingerprint(self, key: bytes | None = None) -> str:
        """An HMAC that tells whether the values changed without revealing them: keyed (by
        the state store's key, `FINGERPRINT_KEY`), so a guessed value cannot be confirmed
        offline from a before-image."""
        canonical = json.dumps(self._variables, sort_keys=True).encode()
        return hmac.new(key or FINGERPRINT_KEY.get(), canonical, hashlib.sha256).hexdigest()


def environment_error(config: Mapping[str, Any]) -> str | None:
    """GetFunction shows `Environment.Error` instead of variables it cannot decrypt."""
    error = (config.get("Environment") or {}).get("Error")
    return str(error.get("ErrorCode") or "unreadable") if error else None


@dataclass(frozen=True, slots=True)
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


def function_state(config: Mapping[str, Any], answer: Mapping[str, Any]) -> FunctionState:
    """A FunctionState from a GetFunction answer."""
    logging_config = config.get("LoggingConfig") or {}
    concurrency = (answer.get("Concurrency") or {}).get("ReservedConcurrentExecutions")
    return FunctionState(
        name=str(config["FunctionName"]),
        arn=str(config["FunctionArn"]),
        role_arn=str(config["Role"]),
        memory_mb=int(config["MemorySize"]),
        timeout_s=int(config["Timeout"]),
        tracing_mode=str((config.get("TracingConfig") or {}).get("Mode", "PassThrough")),
        dead_letter_target=(config.get("DeadLetterConfig") or {}).get("TargetArn") or None,
        environment=EnvironmentVariables((config.get("Environment") or {}).get("Variables", {})),
        environment_error=environment_error(config),
        reserved_concurrency=None if concurrency is None else int(concurrency),
        log_group=str(
            logging_config.get("LogGroup") or log_group_name(str(config["FunctionName"]))
        ),
        architecture=str((config.get("Architectures") or ["x86_64"])[0]),
        revision_id=config.get("RevisionId"),
        last_update_status=str(config.get("LastUpdateStatus", "Successful")),
        tags=dict(answer.get("Tags") or {}),
    )


class PartKey(Generic[T_co]):
    """A typed key into an inventory's parts; the parts themselves are defined in `steps/`."""

    name: ClassVar[str]


class PartNotRead(KeyError):
    """A part was asked for that discovery did not read: some step forgot to declare it."""

    def __str__(self) -> str:
        return str(self.args[0])


def _part(parts: Mapping[str, Any], key: PartKey[T], owner: str) -> T:
    try:
        return cast(T, parts[key.name])
    except KeyError:
        raise PartNotRead(
            f"part {key.name!r} of {owner} was not read: declare it in the step's `uses`"
        ) from None


@dataclass(frozen=True, slots=True)
class FunctionInventory:
    state: FunctionState
    parts: Mapping[str, Any] = field(default_factory=dict)  # part name -> value

    @property
    def name(self) -> str:
        return self.state.name

    def part(self, key: PartKey[T]) -> T:
        return _part(self.parts, key, self.name)


@dataclass(frozen=True)
class EnvironmentInventory:
    suffix: str
    account_id: str
    region: str
    functions: tuple[FunctionInventory, ...]
    parts: Mapping[str, Any] = field(default_factory=dict)  # part name -> value
    skipped: tuple[str, ...] = ()  # names that matched but belong to another environment

    def function(self, name: str) -> FunctionInventory:
        for inventory in self.functions:
            if inventory.name == name:
                return inventory
        raise KeyError(name)

    def part(self, key: PartKey[T]) -> T:
        return _part(self.parts, key, f"environment {self.suffix}")
