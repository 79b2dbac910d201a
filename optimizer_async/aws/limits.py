"""AWS's hard limits for the settings we manage (sources: Lambda and CloudWatch Logs docs).

Shared by target validation in the optimizer and by the sandbox, which enforces the same
limits AWS enforces.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Final

MEMORY_MB_RANGE: Final = (128, 10_240)
TIMEOUT_S_RANGE: Final = (1, 900)
TRACING_MODES: Final = ("PassThrough", "Active")

DEFAULT_ACCOUNT_CONCURRENCY: Final = 1_000
MIN_UNRESERVED_CONCURRENCY: Final = 100

# PutRetentionPolicy accepts exactly these values.
LOG_RETENTION_DAYS: Final = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip


# A function's environment variables may total 4 KB; Lambda refuses a CreateFunction or
# UpdateFunctionConfiguration over it (InvalidParameterValueException), the whole update.
MAX_ENVIRONMENT_BYTES: Final = 4_096


def environment_size(variables: Mapping[str, str]) -> int:
    """The size Lambda holds to its 4 KB limit: the variables as a JSON object, UTF-8
    (its error quotes that "String measured")."""
    return len(json.dumps(dict(variables), separators=(",", ":"), ensure_ascii=False).encode())


def check_memory_mb(value: int) -> int:
    low, high = MEMORY_MB_RANGE
    if not low <= value <= high:
        raise ValueError(f"memory {value} MB is outside Lambda's {low}-{high} MB")
    return value


def check_timeout_s(value: int) -> int:
    low, high = TIMEOUT_S_RANGE
    if not low <= value <= high:
        raise ValueError(f"timeout {value} s is outside Lambda's {low}-{high} s")
    return value


def check_reserved_concurrency(value: int) -> int:
    ceiling = DEFAULT_ACCOUNT_CONCURRENCY - MIN_UNRESERVED_CONCURRENCY
    if not 0 <= value <= ceiling:
        raise ValueError(f"reserved concurrency {value} is outside 0-{ceiling}")
    return value


def check_log_retention_days(value: int) -> int:
    if value not in LOG_RETENTION_DAYS:
        raise ValueError(f"log retention {value} days is not one CloudWatch Logs accepts")
    return value
