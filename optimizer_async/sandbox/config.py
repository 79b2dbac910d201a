"""How the sandbox behaves: traffic-shaping profile, time scale, faults, AWS-like delays."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Final, Literal

from optimizer_async.aws.quotas import parse_override

Profile = Literal["none", "aws"]
PROFILES: Final[tuple[Profile, ...]] = ("none", "aws")

FaultKind = Literal[
    "throttle",
    "internal_error",
    "unavailable",
    "connection_reset",
    "slow",
    "reset_after_commit",
    "error_after_commit",
]
FAULT_KINDS: Final[tuple[FaultKind, ...]] = (
    "throttle",
    "internal_error",
    "unavailable",
    "connection_reset",
    "slow",
)
# The call is served - a write is applied - and then its answer is lost: the connection
# reset, or a 500 instead of the answer. Retries then meet their own write (412, exists).
AFTER_COMMIT_KINDS: Final[tuple[FaultKind, ...]] = ("reset_after_commit", "error_after_commit")
# Where an emulator falls short of AWS (LocalStack 4.14, measured): a percentile statistic
# in GetMetricData answers 500; Logs Insights runs no `stats` (each matched event comes
# back as its `@ptr` alone). The sandbox can fall short the same way, so that the
# optimizer's way around each is tested without the emulator.
EmulatorGap = Literal["percentiles", "insights-statistics"]
EMULATOR_GAPS: Final[tuple[EmulatorGap, ...]] = ("percentiles", "insights-statistics")
ALL_FAULT_KINDS: Final[tuple[FaultKind, ...]] = FAULT_KINDS + AFTER_COMMIT_KINDS


@dataclass(frozen=True)
class SandboxConfig:
    """Sandbox behaviour. Durations are at time scale 1; `time_scale` K runs the clock K-fold.

    With K > 1 the quota rates are multiplied by K and every delay is divided by K, so a
    benchmark keeps AWS's proportions while finishing K times sooner.
    """

    profile: Profile = "none"
    time_scale: float = 1.0
    rate_limits: bool = False  # throttle callers above the AWS quotas (aws/quotas.py)
    latency_median_ms: float = 0.0  # log-normal per-call latency; 0 disables
    latency_sigma: float = 0.6
    fault_rate: float = 0.0  # probability that a call gets an injected fault
    fault_seed: int = 0
    fault_kinds: tuple[FaultKind, ...] = FAULT_KINDS
    slow_response_s: float = 2.0  # how late a "slow" fault answers
    update_s: float = 0.2  # how long a function update reports InProgress
    update_failure_rate: float = 0.0  # probability that an update ends Failed
    collision_rate: float = 0.0  # probability that a function's first update meets another
    iam_propagation_s: float = 0.0  # how long a role-policy change takes to be seen
    account_concurrency: int = 1_000  # Lambda ConcurrentExecutions of the account
    insights_query_s: float = 0.0  # how long a Logs Insights query stays Running
    # Authorise every request against the IAM policies of the user whose key signed it
    # (patches/iam_authorization.py); the default accepts any credentials, as moto does.
    iam_enforcement: bool = False
    # An account's raised API quotas: (bucket name, requests a second) pairs that replace
    # AWS's default rates (aws/quotas.py), like the optimizer's `--quota BUCKET=RATE`.
    quotas: tuple[tuple[str, float], ...] = ()
    emulator_gaps: tuple[EmulatorGap, ...] = ()  # answer as an emulator does (see above)

    def __post_init__(self) -> None:
        # JSON gives lists; each pair is checked as the optimizer checks `--quota`.
        quotas = tuple(parse_override(f"{name}={rate}") for name, rate in self.quotas)
        object.__setattr__(self, "quotas", quotas)
        if self.profile not in PROFILES:
            raise ValueError(f"profile must be one of {', '.join(PROFILES)}")
        if self.time_scale <= 0:
            raise ValueError("time scale must be positive")
        for name in ("fault_rate", "update_failure_rate", "collision_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name.replace('_', ' ')} must be between 0 and 1")
        object.__setattr__(self, "emulator_gaps", tuple(self.emulator_gaps))
        if set(self.emulator_gaps) - set(EMULATOR_GAPS):
            raise ValueError(f"emulator gaps must be among {', '.join(EMULATOR_GAPS)}")
        unknown = set(self.fault_kinds) - set(ALL_FAULT_KINDS)
        if unknown or not self.fault_kinds:
            raise ValueError(f"fault kinds must be among {', '.join(ALL_FAULT_KINDS)}")
        for name in (
            "latency_median_ms",
            "slow_response_s",
            "update_s",
            "iam_propagation_s",
            "insights_query_s",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name.replace('_', ' ')} must not be negative")

    @classmethod
    def for_profile(cls, profile: Profile, **overrides: Any) -> SandboxConfig:
        """The profile's defaults, with explicit settings on top.

        `none`: no shaping (fast tests), but the AWS-faithful patches stay on.
        `aws`: AWS's quota rates, tens of milliseconds per call, updates that take seconds,
        IAM that takes seconds to see a new policy, Logs Insights queries that take a moment.
        """
        base: dict[str, Any] = {"profile": profile}
        if profile == "aws":
            base.update(
                rate_limits=True,
                latency_median_ms=35.0,
                update_s=2.5,
                iam_propagation_s=4.0,
                insights_query_s=1.5,
            )
        base.update(overrides)
        return cls(**base)

    def replace(self, **changes: Any) -> SandboxConfig:
        return dataclasses.replace(self, **changes)

    def scaled(self, seconds: float) -> float:
        """A delay of `seconds` at time scale 1, on this sandbox's clock."""
        return seconds / self.time_scale

    def scaled_rate(self, rate_per_s: float) -> float:
        return rate_per_s * self.time_scale
