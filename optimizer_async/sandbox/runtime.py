"""The sandbox's live state: configuration, clock, seeded randomness, quota buckets, counters,
the workload model and its Logs Insights queries, and the account of each access key.

AWS's quotas are per account and region, so a bucket is one (account, region, bucket); so
are the workload model's functions, their queries and their log groups' stored bytes.

moto keeps its backends in process-wide globals, so there is one runtime per process; the
patches and the traffic shaper both read it. Reconfiguring swaps the config atomically and
keeps the clock: every time-based behaviour reads `clock`, so tests can swap in virtual time.

Model time, the UTC moment the workload model is at, follows the clock:
`anchor_utc + (clock.now() - anchor_clock)`, anchored when the clock is installed (on the
system clock it is about real UTC; on a ManualClock it moves only when the test advances
it). Installing a clock never moves model time backwards, so a configuration change stamped
on one clock stays in the past on the next; a reset re-anchors it at real UTC.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Final

from optimizer_async.aws.quotas import QuotaBucket, rate_of
from optimizer_async.sandbox.accounts import KeyAccounts
from optimizer_async.sandbox.clock import Clock, SystemClock
from optimizer_async.sandbox.config import FaultKind, SandboxConfig
from optimizer_async.sandbox.stats import CallStats
from optimizer_async.sandbox.workload.insights import InsightsQueries
from optimizer_async.sandbox.workload.model import WorkloadModel

# Refills are float arithmetic: 1/15 s at 15 tokens a second must make a whole token.
_TOKEN_EPSILON: Final = 1e-9


class TokenBucket:
    """AWS-style request-rate quota: `rate` tokens a second, bursts up to one second's worth."""

    def __init__(self, rate_per_s: float, clock: Clock) -> None:
        self.rate = rate_per_s
        self.capacity = max(1.0, rate_per_s)
        self._clock = clock
        self._tokens = self.capacity
        self._stamp = clock.now()
        self._lock = threading.Lock()

    def try_take(self) -> bool:
        with self._lock:
            now = self._clock.now()
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._tokens >= 1.0 - _TOKEN_EPSILON:
                self._tokens -= 1.0
                return True
            return False


class SandboxRuntime:
    def __init__(self, config: SandboxConfig, clock: Clock | None = None) -> None:
        self.stats = CallStats()
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str, str], TokenBucket] = {}
        self._config = config
        self._clock: Clock = clock or SystemClock()
        self._rng = random.Random(config.fault_seed)
        # CloudWatch Logs storedBytes as AWS would measure them: (account, region, log group).
        self.stored_bytes: dict[tuple[str, str, str], int] = {}
        self.workload = WorkloadModel()
        self.insights = InsightsQueries()
        self.accounts = KeyAccounts()  # the account of each access key seen
        # (UTC, clock reading, clock) at the anchor: one tuple, swapped whole.
        self._anchor = (datetime.now(UTC), self._clock.now(), self._clock)
        # Told every configuration from now on (`serve` tunes its interpreter by it).
        self.on_configure: Callable[[SandboxConfig], object] | None = None

    @property
    def config(self) -> SandboxConfig:
        return self._config

    @property
    def clock(self) -> Clock:
        """The clock every delay, window and quota refill of the sandbox reads."""
        return self._clock

    def configure(self, config: SandboxConfig) -> None:
        """Swap the configuration; quota buckets and the fault RNG start afresh, the clock stays."""
        with self._lock:
            self._config = config
            self._rng = random.Random(config.fault_seed)
            self._buckets.clear()
        if self.on_configure is not None:
            self.on_configure(config)

    def set_clock(self, clock: Clock) -> None:
        """Swap the clock; quota buckets start afresh (their stamps were on the old clock).

        Model time goes on from where it was, or from real UTC if that is later.
        """
        with self._lock:
            model_now = self.model_time()
            self._clock = clock
            self._buckets.clear()
            self._anchor = (max(datetime.now(UTC), model_now), clock.now(), clock)

    def model_time(self, clock_value: float | None = None) -> datetime:
        """The workload model's UTC moment at `clock_value` on the clock (default: now)."""
        anchor_utc, anchor_clock, clock = self._anchor
        value = clock.now() if clock_value is None else clock_value
        return anchor_utc + timedelta(seconds=value - anchor_clock)

    def forget_workload(self) -> None:
        """Forget the model and its queries; model time starts again at real UTC."""
        self.workload.clear()
        self.insights.clear()
        with self._lock:
            self._anchor = (datetime.now(UTC), self._clock.now(), self._clock)

    def allow(self, account: str, region: str, bucket: QuotaBucket) -> bool:
        """Take one request from the account's (region, bucket) quota; False means throttle it.

        The bucket's rate is AWS's default or the configured raised quota, x time scale.
        """
        with self._lock:
            key = (account, region, bucket.name)
            limiter = self._buckets.get(key)
            if limiter is None:
                rate = rate_of(bucket, dict(self._config.quotas))
                limiter = TokenBucket(self._config.scaled_rate(rate), self._clock)
                self._buckets[key] = limiter
        return limiter.try_take()

    def chance(self, probability: float) -> bool:
        if probability <= 0.0:
            return False
        with self._lock:
            return self._rng.random() < probability

    def pick_fault(self) -> FaultKind | None:
        config = self._config
        if not self.chance(config.fault_rate):
            return None
        with self._lock:
            return self._rng.choice(config.fault_kinds)

    def latency_s(self) -> float:
        """One call's service latency, log-normal around the configured median."""
        config = self._config
        if config.latency_median_ms <= 0:
            return 0.0
        with self._lock:
            factor = self._rng.lognormvariate(0.0, config.latency_sigma)
        return config.scaled(config.latency_median_ms / 1000.0 * factor)


_runtime: SandboxRuntime | None = None
_runtime_lock: Final = threading.Lock()


def install(config: SandboxConfig, clock: Clock | None = None) -> SandboxRuntime:
    """Create the process's runtime, or reconfigure the existing one.

    Reconfiguring keeps the runtime's clock unless `clock` is given.
    """
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            _runtime = SandboxRuntime(config, clock)
        else:
            _runtime.configure(config)
            if clock is not None:
                _runtime.set_clock(clock)
        return _runtime


def current() -> SandboxRuntime:
    """The running sandbox's runtime; the patches call this on every request they touch."""
    if _runtime is None:
        raise RuntimeError("the sandbox runtime is not installed")
    return _runtime
