"""What a function truly does: its workload profile, and the named profiles seeding uses.

A profile is the function's ground truth at full CPU (memory >= 1,769 MB: one whole vCPU).
What CloudWatch and the REPORT lines show depends on it *and* on the configuration in
effect (`model.py`), so an optimizer can be judged by what its changes would have done.
Profiles are deterministic given (profile name, function name).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final

from optimizer_async.sandbox.usage import DEFAULT_USAGE, UsageProfile, usage_for

FULL_VCPU_MB: Final = 1769  # Lambda allocates one full vCPU at this memory size
LOG_HISTORY_DAYS: Final = 400  # how much history a never-expiring log group holds today


@dataclass(frozen=True)
class Distribution:
    """A piecewise-linear CDF through (value, cumulative probability) knots from 0 to 1.

    Linear between knots, so each quantile knot (p50, p99, max) comes back exactly, and the
    mean and the share above any threshold have closed forms.
    """

    knots: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        values = [value for value, _ in self.knots]
        probabilities = [probability for _, probability in self.knots]
        if len(self.knots) < 2 or probabilities[0] != 0.0 or probabilities[-1] != 1.0:
            raise ValueError("a distribution runs from quantile 0 to quantile 1")
        if values != sorted(values) or probabilities != sorted(set(probabilities)):
            raise ValueError("knots must rise in value and strictly in probability")
        if values[0] < 0:
            raise ValueError("values must not be negative")

    @classmethod
    def of(cls, p0: float, p50: float, p99: float, maximum: float) -> Distribution:
        return cls(((p0, 0.0), (p50, 0.5), (p99, 0.99), (maximum, 1.0)))

    @property
    def minimum(self) -> float:
        return self.knots[0][0]

    @property
    def maximum(self) -> float:
        return self.knots[-1][0]

    def quantile(self, q: float) -> float:
        """The value below which a share `q` falls; exact at every knot."""
        if not 0.0 <= q <= 1.0:
            raise ValueError("a quantile lies between 0 and 1")
        for (v0, q0), (v1, q1) in itertools.pairwise(self.knots):
            if q == q0:
                return v0
            if q == q1:
                return v1
            if q0 < q < q1:
                return v0 + (q - q0) / (q1 - q0) * (v1 - v0)
        return self.maximum

    def cdf(self, x: float) -> float:
        """The share of values at or below `x`."""
        if x < self.minimum:
            return 0.0
        if x >= self.maximum:
            return 1.0
        for (v0, q0), (v1, q1) in itertools.pairwise(self.knots):
            if v0 <= x < v1:  # a vertical piece (v0 == v1) is a point mass: never inside
                return q0 + (x - v0) / (v1 - v0) * (q1 - q0)
        return 1.0  # unreachable: x lies below the maximum

    def share_above(self, x: float) -> float:
        """The share of values above `x` (0 exactly from the maximum on)."""
        return 1.0 - self.cdf(x)

    def mean_capped(self, scale: float, cap: float) -> float:
        """E[min(scale * X, cap)]: the mean once values are scaled and cut at a ceiling."""
        total = 0.0
        for (v0, q0), (v1, q1) in itertools.pairwise(self.knots):
            weight = q1 - q0
            low, high = v0 * scale, v1 * scale
            if high <= cap:
                total += weight * (low + high) / 2
            elif low >= cap:
                total += weight * cap
            else:  # the cap cuts this piece: uniform below it, a point mass at it above
                below = (cap - low) / (high - low)
                total += weight * (below * (low + cap) / 2 + (1 - below) * cap)
        return total


@dataclass(frozen=True)
class WorkloadProfile:
    """A function's true profile; durations at full CPU, memory in MB (integers, as REPORT
    lines print them)."""

    name: str
    invocations_per_day: float  # mean over a week: weekdays busier, weekends quieter
    duration_p50_ms: float
    duration_p99_ms: float
    duration_max_ms: float
    cpu_share: float  # 0..1: the part of the duration that is CPU-bound
    memory_p50_mb: float  # memory each invocation needs
    memory_p99_mb: float
    memory_max_mb: float
    peak_concurrency: float  # highest concurrent executions in the busiest hour
    error_rate: float  # errors of its own, before any consequence
    init_duration_ms: float  # cold start (REPORT's Init Duration)
    log_bytes_per_invocation: int  # everything the invocation logs, REPORT line included
    burst_hours: tuple[int, ...] = ()  # UTC hours of every day with a short traffic spike
    # A heavy path the evidence cannot show: `latent_after_s` after the profile is attached,
    # a share `latent_share` of invocations starts needing `latent_memory_mb`.
    latent_share: float = 0.0
    latent_memory_mb: float = 0.0
    latent_after_s: float = 3600.0

    def __post_init__(self) -> None:
        if self.invocations_per_day < 0 or self.peak_concurrency < 0:
            raise ValueError("traffic must not be negative")
        if not 0.0 <= self.cpu_share <= 1.0 or not 0.0 <= self.error_rate <= 1.0:
            raise ValueError("cpu share and error rate lie between 0 and 1")
        if any(not 0 <= hour < 24 for hour in self.burst_hours):
            raise ValueError("burst hours are hours of the day, 0-23")
        for value in (self.memory_p50_mb, self.memory_p99_mb, self.memory_max_mb):
            if value != int(value):
                raise ValueError("memory figures are whole MB, as REPORT lines print them")
        _ = self.duration, self.memory  # validates the quantiles' order

    @functools.cached_property  # read per REPORT line a query scans: built once
    def duration(self) -> Distribution:
        """Duration at full CPU, ms."""
        p50 = self.duration_p50_ms
        return Distribution.of(p50 / 3, p50, self.duration_p99_ms, self.duration_max_ms)

    @functools.cached_property
    def memory(self) -> Distribution:
        """Memory an invocation needs, MB."""
        p50 = self.memory_p50_mb
        return Distribution.of(p50 * 2 / 3, p50, self.memory_p99_mb, self.memory_max_mb)

    @property
    def stored_log_bytes(self) -> int:
        """What CloudWatch Logs reports as storedBytes for its group, kept forever."""
        return round(self.invocations_per_day * self.log_bytes_per_invocation * LOG_HISTORY_DAYS)

    def cpu_factor(self, memory_mb: float) -> float:
        """How much longer an invocation runs at `memory_mb` than with a full vCPU."""
        return 1.0 + self.cpu_share * (FULL_VCPU_MB / min(memory_mb, FULL_VCPU_MB) - 1.0)


STEADY: Final = WorkloadProfile(
    name="steady",
    invocations_per_day=250_000,
    duration_p50_ms=180.0,
    duration_p99_ms=900.0,
    duration_max_ms=2_000.0,
    cpu_share=0.6,
    memory_p50_mb=180,
    memory_p99_mb=260,
    memory_max_mb=300,
    peak_concurrency=10.0,
    error_rate=0.002,
    init_duration_ms=350.0,
    log_bytes_per_invocation=900,
)

NAMED: Final[dict[str, WorkloadProfile]] = {
    "steady": STEADY,
    "memory-hungry": replace(
        STEADY,
        name="memory-hungry",
        memory_p50_mb=900,
        memory_p99_mb=1_350,
        memory_max_mb=1_400,
        init_duration_ms=600.0,
    ),
    "slow": WorkloadProfile(
        name="slow",
        invocations_per_day=2_000,
        duration_p50_ms=8_000.0,
        duration_p99_ms=45_000.0,
        duration_max_ms=60_000.0,
        cpu_share=0.5,
        memory_p50_mb=400,
        memory_p99_mb=700,
        memory_max_mb=800,
        peak_concurrency=6.0,
        error_rate=0.01,
        init_duration_ms=900.0,
        log_bytes_per_invocation=4_000,
    ),
    "bursty": replace(STEADY, name="bursty", peak_concurrency=120.0, burst_hours=(9, 13, 18)),
    "latent-heavy": replace(
        STEADY,
        name="latent-heavy",
        latent_share=0.05,
        latent_memory_mb=1_500,
        latent_after_s=3600.0,
    ),
    "idle": replace(
        STEADY, name="idle", invocations_per_day=0, peak_concurrency=0.0, error_rate=0.0
    ),
}
DEFAULT_PROFILE: Final = "default"
PROFILE_NAMES: Final[tuple[str, ...]] = (DEFAULT_PROFILE, *NAMED)


def _default(function_name: str, base: UsageProfile) -> WorkloadProfile:
    """`steady`'s shape at `usage_for`'s traffic and mean duration, memory from the name."""
    usage = usage_for(function_name, base)
    digest = hashlib.sha256(function_name.encode()).digest()
    scale = usage.mean_duration_ms / STEADY.duration.mean_capped(1.0, math.inf)
    memory_factor = 0.5 + 3.0 * digest[2] / 255.0  # 150 MB to 1,050 MB at the maximum
    p50, p99, top = (
        round(STEADY.memory_p50_mb * memory_factor),
        round(STEADY.memory_p99_mb * memory_factor),
        round(STEADY.memory_max_mb * memory_factor),
    )
    traffic = usage.invocations_per_day / STEADY.invocations_per_day
    return WorkloadProfile(
        name=DEFAULT_PROFILE,
        invocations_per_day=usage.invocations_per_day,
        duration_p50_ms=round(STEADY.duration_p50_ms * scale, 1),
        duration_p99_ms=round(STEADY.duration_p99_ms * scale, 1),
        duration_max_ms=round(STEADY.duration_max_ms * scale, 1),
        cpu_share=STEADY.cpu_share,
        memory_p50_mb=p50,
        memory_p99_mb=max(p50, p99),
        memory_max_mb=max(p50, p99, top),
        peak_concurrency=max(1.0, round(STEADY.peak_concurrency * traffic * scale)),
        error_rate=usage.error_rate,
        init_duration_ms=STEADY.init_duration_ms,
        log_bytes_per_invocation=usage.log_bytes_per_invocation,
    )


def profile_for(
    profile: str, function_name: str, base: UsageProfile = DEFAULT_USAGE
) -> WorkloadProfile:
    """The named profile; `default` varies it per function, from a hash of the name."""
    if profile == DEFAULT_PROFILE:
        return _default(function_name, base)
    try:
        return NAMED[profile]
    except KeyError:
        raise ValueError(
            f"unknown workload profile {profile!r}: choose from {', '.join(PROFILE_NAMES)}"
        ) from None


def check_mix(profiles: Sequence[str]) -> tuple[str, ...]:
    """A validated profile mix (comma-separated values allowed); empty means `default`."""
    names = tuple(part.strip() for value in profiles for part in value.split(",") if part.strip())
    unknown = [name for name in names if name not in PROFILE_NAMES]
    if unknown:
        raise ValueError(
            f"unknown workload profile {unknown[0]!r}: choose from {', '.join(PROFILE_NAMES)}"
        )
    return names or (DEFAULT_PROFILE,)


def assign(functions: Sequence[str], mix: Sequence[str]) -> dict[str, str]:
    """Profiles for functions in order, cycling through the mix."""
    names = check_mix(mix)
    return {function: names[index % len(names)] for index, function in enumerate(functions)}
