"""The consequences of a function's configuration over time, for any window.

Per (account, region, function) the model keeps the profile and each setting's history: memory,
timeout and reserved concurrency, each in effect from a moment on (before the first change:
the configuration the function had when its profile was attached). A window splits into
pieces under one configuration each; per piece, with the CPU factor
`f = 1 + cpu_share * (1769 / min(memory, 1769) - 1)`:

- calls: the traffic's whole invocations per hour (`traffic.py`);
- throttles: in each hour where the concurrency (the hour's peak x f) exceeds the
  reservation, the excess share of that hour's calls (not counted as invocations);
- invocations: the calls that ran;
- out of memory: the invocations whose memory need exceeds the memory size;
- timeouts: of the others, those whose duration x f exceeds the timeout;
- errors: out of memory + timeouts + the profile's own error rate of the rest.

Durations are the profile's x f, cut at the timeout. Everything is expected values, no
randomness: what a test seeds is exactly what it reads back.
"""

from __future__ import annotations

import contextlib
import enum
import itertools
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Final, TypeVar

from optimizer_async.definitions.naming import log_group_name
from optimizer_async.sandbox.once import built_once
from optimizer_async.sandbox.workload.profiles import Distribution, WorkloadProfile
from optimizer_async.sandbox.workload.traffic import HOURS_PER_WEEK, Weekly, traffic

BEGINNING: Final = datetime.min.replace(tzinfo=UTC)  # "always", for the first setting
EVENTS_PER_INVOCATION: Final = 4  # START, one line of its own, END, REPORT
_PERCENTILE: Final = re.compile(r"^p(\d{1,2}(?:\.\d+)?|100)$")
_BISECTIONS: Final = 100
T = TypeVar("T")

# CloudWatch metrics the model answers: namespace -> metric -> unit.
METRICS: Final[dict[str, dict[str, str]]] = {
    "AWS/Lambda": {
        "Invocations": "Count",
        "Errors": "Count",
        "Throttles": "Count",
        "Duration": "Milliseconds",
        "ConcurrentExecutions": "Count",
    },
    "AWS/Logs": {"IncomingBytes": "Bytes", "IncomingLogEvents": "Count"},
}


class _Keep(enum.Enum):
    KEEP = 0


KEEP: Final = _Keep.KEEP  # "this change leaves the reservation as it is"


TEXT: Final = "Text"  # Lambda's LogFormat values
JSON: Final = "JSON"


@dataclass(frozen=True)
class Logging:
    """Where and how the function logs (Lambda's LoggingConfig)."""

    log_group: str | None = None  # None: Lambda's default, /aws/lambda/{function}
    log_format: str = TEXT


DEFAULT_LOGGING: Final = Logging()


@dataclass(frozen=True)
class FunctionConfig:
    """The settings that change what a function's traffic does, and where its logs go."""

    memory_mb: int
    timeout_s: float
    reserved: int | None  # None: no reservation
    logging: Logging = DEFAULT_LOGGING


@dataclass(frozen=True)
class Piece:
    """Part of a window under one configuration: what its traffic did."""

    start: datetime
    end: datetime
    config: FunctionConfig
    cpu_factor: float
    calls: float  # invocations attempted, throttled ones included
    invocations: float  # those that ran
    throttles: float
    out_of_memory: float
    timeouts: float
    own_errors: float
    heavy_share: float = 0.0  # invocations on the profile's latent heavy path (started)

    @property
    def errors(self) -> float:
        return self.out_of_memory + self.timeouts + self.own_errors

    @property
    def timeout_ms(self) -> float:
        return self.config.timeout_s * 1000.0


@dataclass(frozen=True)
class Outcome:
    """What a window did to a function, and its configuration at the window's end."""

    invocations: float
    errors: float
    out_of_memory: float
    timeouts: float
    throttles: float
    config: FunctionConfig

    def to_json(self) -> dict[str, float | int | None]:
        return {
            "invocations": self.invocations,
            "errors": self.errors,
            "outOfMemory": self.out_of_memory,
            "timeouts": self.timeouts,
            "throttles": self.throttles,
            "memoryMb": self.config.memory_mb,
            "timeoutS": self.config.timeout_s,
            "reservedConcurrency": self.config.reserved,
        }


@built_once
def _split(
    profile: WorkloadProfile, cpu_factor: float, reserved: int | None
) -> tuple[Weekly, Weekly]:
    """(invocations that run, invocations throttled) per hour of the week."""
    flow = traffic(profile)
    ran: list[float] = []
    throttled: list[float] = []
    for hour in range(HOURS_PER_WEEK):
        calls = flow.invocations.per_hour[hour]
        concurrency = flow.concurrency.per_hour[hour] * cpu_factor
        share = 0.0 if reserved is None or concurrency <= reserved else 1.0 - reserved / concurrency
        ran.append(calls if share == 0.0 else calls * (1.0 - share))
        throttled.append(calls * share)
    return Weekly(tuple(ran)), Weekly(tuple(throttled))


def _history_at(history: tuple[tuple[datetime, T], ...], moment: datetime) -> T:
    """The value in effect at `moment`: the last one set at or before it."""
    value = history[0][1]
    for stamp, candidate in history:
        if stamp > moment:
            break
        value = candidate
    return value


def _with(
    history: tuple[tuple[datetime, T], ...], at: datetime, value: T
) -> tuple[tuple[datetime, T], ...]:
    if _history_at(history, at) == value:
        return history
    return tuple(sorted((*history, (at, value)), key=lambda entry: entry[0]))


@dataclass(frozen=True)
class _Component:
    """Durations of one piece: the profile's, scaled by the CPU factor and cut at the timeout."""

    weight: float
    scale: float
    cap: float


def _capped_quantile(distribution: Distribution, parts: Sequence[_Component], q: float) -> float:
    """The q-quantile of a weighted mixture of scaled, capped copies of one distribution;
    exact when every part shares its scale and cap."""
    first = parts[0]
    if all((part.scale, part.cap) == (first.scale, first.cap) for part in parts):
        return min(first.scale * distribution.quantile(q), first.cap)
    total = sum(part.weight for part in parts)

    def cdf(x: float) -> float:
        return (
            sum(
                part.weight * (1.0 if x >= part.cap else distribution.cdf(x / part.scale))
                for part in parts
            )
            / total
        )

    low = min(min(distribution.minimum * part.scale, part.cap) for part in parts)
    high = max(min(distribution.maximum * part.scale, part.cap) for part in parts)
    for _ in range(_BISECTIONS):
        middle = (low + high) / 2
        if cdf(middle) >= q:
            high = middle
        else:
            low = middle
    return high


@dataclass(frozen=True)
class FunctionModel:
    """One function's profile and configuration history (immutable: changes make a new one)."""

    region: str
    function_name: str
    profile: WorkloadProfile
    memory: tuple[tuple[datetime, int], ...]
    timeout: tuple[tuple[datetime, float], ...]
    reserved: tuple[tuple[datetime, int | None], ...]
    latent_from: datetime | None = None  # when the profile's latent heavy path starts
    logging: tuple[tuple[datetime, Logging], ...] = ((BEGINNING, DEFAULT_LOGGING),)

    @classmethod
    def start(
        cls,
        region: str,
        function_name: str,
        profile: WorkloadProfile,
        config: FunctionConfig,
        at: datetime | None = None,
    ) -> FunctionModel:
        latent = None
        if profile.latent_share > 0 and at is not None:
            latent = at + timedelta(seconds=profile.latent_after_s)
        return cls(
            region,
            function_name,
            profile,
            ((BEGINNING, config.memory_mb),),
            ((BEGINNING, config.timeout_s),),
            ((BEGINNING, config.reserved),),
            latent,
            ((BEGINNING, config.logging),),
        )

    @property
    def default_log_group(self) -> str:
        return log_group_name(self.function_name)

    def log_group_of(self, logging: Logging) -> str:
        return logging.log_group or self.default_log_group

    def log_groups(self) -> set[str]:
        """Every group the function has logged to (its configuration history's)."""
        return {self.log_group_of(logging) for _, logging in self.logging}

    def config_at(self, moment: datetime) -> FunctionConfig:
        return FunctionConfig(
            _history_at(self.memory, moment),
            _history_at(self.timeout, moment),
            _history_at(self.reserved, moment),
            _history_at(self.logging, moment),
        )

    def changed(
        self,
        at: datetime,
        *,
        memory_mb: int | None = None,
        timeout_s: float | None = None,
        reserved: int | _Keep | None = KEEP,
        logging: Logging | None = None,
    ) -> FunctionModel:
        """This model with the given settings in effect from `at` on."""
        updated = self
        if logging is not None:
            updated = replace(updated, logging=_with(updated.logging, at, logging))
        if memory_mb is not None:
            updated = replace(updated, memory=_with(updated.memory, at, memory_mb))
        if timeout_s is not None:
            updated = replace(updated, timeout=_with(updated.timeout, at, timeout_s))
        if not isinstance(reserved, _Keep):
            updated = replace(updated, reserved=_with(updated.reserved, at, reserved))
        return updated

    def pieces(self, start: datetime, end: datetime) -> list[Piece]:
        """The window [start, end), split where the configuration changes."""
        memo: dict[tuple[int, datetime, datetime], tuple[FunctionModel, list[Piece]]] | None
        memo = getattr(_windows, "memo", None)
        if memo is None:
            return self._pieces(start, end)
        key = (id(self), start, end)
        kept = memo.get(key)
        if kept is None or kept[0] is not self:
            kept = memo[key] = (self, self._pieces(start, end))
        return list(kept[1])

    def _pieces(self, start: datetime, end: datetime) -> list[Piece]:
        if end <= start:
            return []
        changes = {
            stamp
            for history in (self.memory, self.timeout, self.reserved, self.logging)
            for stamp, _ in history
            if start < stamp < end
        }
        if self.latent_from is not None and start < self.latent_from < end:
            changes.add(self.latent_from)
        bounds = [start, *sorted(changes), end]
        return [self._piece(a, b) for a, b in itertools.pairwise(bounds)]

    def _piece(self, start: datetime, end: datetime) -> Piece:
        profile, config = self.profile, self.config_at(start)
        factor = profile.cpu_factor(config.memory_mb)
        ran, throttled = _split(profile, factor, config.reserved)
        invocations = ran.integral(start, end)
        throttles = throttled.integral(start, end)
        out_of_memory_share = profile.memory.share_above(config.memory_mb)
        heavy_share = 0.0
        if self.latent_from is not None and start >= self.latent_from:
            heavy = 1.0 if profile.latent_memory_mb > config.memory_mb else 0.0
            heavy_share = profile.latent_share
            out_of_memory_share = (1 - heavy_share) * out_of_memory_share + heavy_share * heavy
        timeout_share = profile.duration.share_above(config.timeout_s * 1000.0 / factor)
        survived = 1.0 - out_of_memory_share
        return Piece(
            start=start,
            end=end,
            config=config,
            cpu_factor=factor,
            calls=invocations + throttles,
            invocations=invocations,
            throttles=throttles,
            out_of_memory=invocations * out_of_memory_share,
            timeouts=invocations * survived * timeout_share,
            own_errors=invocations * survived * (1.0 - timeout_share) * profile.error_rate,
            heavy_share=heavy_share,
        )

    def outcome(self, start: datetime, end: datetime) -> Outcome:
        pieces = self.pieces(start, end)
        last = self.config_at(max(start, end - timedelta(microseconds=1)))
        return Outcome(
            invocations=sum(p.invocations for p in pieces),
            errors=sum(p.errors for p in pieces),
            out_of_memory=sum(p.out_of_memory for p in pieces),
            timeouts=sum(p.timeouts for p in pieces),
            throttles=sum(p.throttles for p in pieces),
            config=last,
        )

    # --- CloudWatch ----------------------------------------------------------------------

    def statistic(
        self,
        namespace: str,
        metric: str,
        stat: str,
        start: datetime,
        end: datetime,
        log_group: str | None = None,
    ) -> float | None:
        """One period's datapoint, as CloudWatch would compute it; None: no datapoint (no
        activity in the period, or a statistic the model does not offer). AWS/Logs metrics
        count what went to `log_group` (by default the function's own group)."""
        pieces = [piece for piece in self.pieces(start, end) if piece.calls > 0]
        ran = [piece for piece in pieces if piece.invocations > 0]
        if namespace == "AWS/Logs":
            group = log_group or self.default_log_group
            ran = [p for p in ran if self.log_group_of(p.config.logging) == group]
            if not ran or stat != "Sum":
                return None
            invocations = sum(piece.invocations for piece in ran)
            if metric == "IncomingBytes":
                return invocations * self.profile.log_bytes_per_invocation
            if metric == "IncomingLogEvents":
                return invocations * EVENTS_PER_INVOCATION
            return None
        if namespace != "AWS/Lambda" or not pieces:
            return None
        counts: dict[str, Callable[[Piece], float]] = {
            "Invocations": lambda p: p.invocations,
            "Errors": lambda p: p.errors,
            "Throttles": lambda p: p.throttles,
        }
        if metric in counts:
            return sum(counts[metric](piece) for piece in pieces) if stat == "Sum" else None
        if metric == "ConcurrentExecutions":
            return self._concurrency(pieces) if stat == "Maximum" else None
        if metric == "Duration" and ran:
            return self._duration(ran, stat)
        return None

    def duration_cdf(
        self, start: datetime, end: datetime
    ) -> tuple[float, Callable[[float], float], float, float] | None:
        """Durations over the window as (count, cdf, lowest, highest): what percentiles over
        these and other samples are computed from. None without invocations."""
        ran = [piece for piece in self.pieces(start, end) if piece.invocations > 0]
        if not ran:
            return None
        distribution = self.profile.duration
        parts = [_Component(p.invocations, p.cpu_factor, p.timeout_ms) for p in ran]
        count = sum(part.weight for part in parts)

        def cdf(x: float) -> float:
            return (
                sum(
                    part.weight * (1.0 if x >= part.cap else distribution.cdf(x / part.scale))
                    for part in parts
                )
                / count
            )

        low = min(min(distribution.minimum * part.scale, part.cap) for part in parts)
        high = max(min(distribution.maximum * part.scale, part.cap) for part in parts)
        return count, cdf, low, high

    def _concurrency(self, pieces: Sequence[Piece]) -> float:
        peaks = []
        for piece in pieces:
            peak = traffic(self.profile).concurrency.peak(piece.start, piece.end)
            peak *= piece.cpu_factor
            reserved = piece.config.reserved
            peaks.append(peak if reserved is None else min(peak, float(reserved)))
        return max(peaks)

    def _duration(self, pieces: Sequence[Piece], stat: str) -> float | None:
        distribution = self.profile.duration
        parts = [_Component(p.invocations, p.cpu_factor, p.timeout_ms) for p in pieces]
        count = sum(part.weight for part in parts)
        total = sum(part.weight * distribution.mean_capped(part.scale, part.cap) for part in parts)
        if stat == "SampleCount":
            return count
        if stat == "Sum":
            return total
        if stat == "Average":
            return total / count
        if stat == "Minimum":
            return min(min(distribution.minimum * p.scale, p.cap) for p in parts)
        if stat == "Maximum":
            return max(min(distribution.maximum * p.scale, p.cap) for p in parts)
        match = _PERCENTILE.match(stat)
        if match is None:
            return None
        return _capped_quantile(distribution, parts, float(match.group(1)) / 100.0)


_windows = threading.local()


@contextlib.contextmanager
def windows_remembered() -> Iterator[None]:
    """Within the block (one request, on this thread), each model's pieces of a window are
    worked out once: a model is immutable (a change makes a new one), so its pieces of a
    window are too, and the eight metrics a reader asks of one function share them."""
    outer = getattr(_windows, "memo", None)
    if outer is None:
        _windows.memo = {}
    try:
        yield
    finally:
        if outer is None:
            _windows.memo = None


def unit_of(namespace: str, metric: str) -> str | None:
    return METRICS.get(namespace, {}).get(metric)


class WorkloadModel:
    """Every modelled function of the sandbox, by (account, region, function name): accounts
    are separate, as on AWS, so two accounts may each have a function of one name.
    Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._functions: dict[tuple[str, str, str], FunctionModel] = {}
        # (account, region, log group) -> the functions that have logged there
        self._writers: dict[tuple[str, str, str], set[str]] = {}

    def _index(self, account: str, region: str, model: FunctionModel) -> None:
        for group in model.log_groups():
            self._writers.setdefault((account, region, group), set()).add(model.function_name)

    def attach(
        self,
        account: str,
        region: str,
        function_name: str,
        profile: WorkloadProfile,
        config: FunctionConfig,
        at: datetime | None = None,
    ) -> FunctionModel:
        """Give a function a profile (at model time `at`); a function already modelled keeps
        its history."""
        key = (account, region, function_name)
        with self._lock:
            existing = self._functions.get(key)
            if existing is None:
                model = FunctionModel.start(region, function_name, profile, config, at)
            else:  # a new profile's latent path starts from now, as on a first attach
                fresh = FunctionModel.start(region, function_name, profile, config, at)
                model = replace(existing, profile=profile, latent_from=fresh.latent_from)
            self._functions[key] = model
            self._index(account, region, model)
            return model

    def get(self, account: str, region: str, function_name: str) -> FunctionModel | None:
        with self._lock:
            return self._functions.get((account, region, function_name))

    def writing_to(self, account: str, region: str, log_group: str) -> list[FunctionModel]:
        """The modelled functions that log, or have logged, to `log_group`, by name."""
        with self._lock:
            names = sorted(self._writers.get((account, region, log_group), ()))
            found = (self._functions.get((account, region, name)) for name in names)
            return [model for model in found if model is not None]

    def functions(self, account: str, region: str) -> list[FunctionModel]:
        with self._lock:
            return [
                model
                for (a, r, _), model in sorted(self._functions.items())
                if (a, r) == (account, region)
            ]

    def outcomes(
        self, account: str, region: str, start: datetime, end: datetime
    ) -> dict[str, Outcome]:
        """What [start, end) does to each modelled function of the account's region."""
        return {
            model.function_name: model.outcome(start, end)
            for model in self.functions(account, region)
        }

    def change(
        self,
        account: str,
        region: str,
        function_name: str,
        at: datetime,
        *,
        memory_mb: int | None = None,
        timeout_s: float | None = None,
        reserved: int | _Keep | None = KEEP,
        logging: Logging | None = None,
    ) -> bool:
        """Record settings in effect from `at` on; False if the function is not modelled."""
        key = (account, region, function_name)
        with self._lock:
            model = self._functions.get(key)
            if model is None:
                return False
            changed = model.changed(
                at, memory_mb=memory_mb, timeout_s=timeout_s, reserved=reserved, logging=logging
            )
            self._functions[key] = changed
            self._index(account, region, changed)
            return True

    def forget(self, account: str, region: str, function_name: str) -> None:
        with self._lock:
            self._functions.pop((account, region, function_name), None)

    def clear(self) -> None:
        with self._lock:
            self._functions.clear()
            self._writers.clear()
