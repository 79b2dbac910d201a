"""The `default` workload's base: plausible traffic that differs per function.

Deterministic: the same suffix and function always get the same numbers, and different
functions differ (a factor from a hash of the name), like a real fleet. The workload model
(`workload/profiles.py`) builds the `default` profile from it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class UsageProfile:
    invocations_per_day: int
    mean_duration_ms: float
    error_rate: float  # failed invocations / invocations
    log_bytes_per_invocation: int
    log_history_days: int  # how much history a never-expiring log group holds today

    @property
    def stored_log_bytes(self) -> int:
        """What CloudWatch Logs reports as storedBytes for a group kept forever."""
        return self.invocations_per_day * self.log_bytes_per_invocation * self.log_history_days


DEFAULT_USAGE = UsageProfile(
    invocations_per_day=250_000,
    mean_duration_ms=180.0,
    error_rate=0.004,
    log_bytes_per_invocation=900,
    log_history_days=400,
)


def usage_for(function_name: str, base: UsageProfile = DEFAULT_USAGE) -> UsageProfile:
    """`base` scaled by a factor between 0.25 and 4, fixed by the function's name."""
    digest = hashlib.sha256(function_name.encode()).digest()
    factor = 4.0 ** ((digest[0] / 255.0) * 2.0 - 1.0)
    duration_factor = 0.5 + digest[1] / 255.0
    return replace(
        base,
        invocations_per_day=max(1, round(base.invocations_per_day * factor)),
        mean_duration_ms=round(base.mean_duration_ms * duration_factor, 1),
    )
