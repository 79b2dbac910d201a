"""The optimised state to reach: `baseline.TARGET` and friends, optionally overridden by TOML.

[function]
memory_mb = 1024
timeout_s = 30
reserved_concurrency = 50
log_retention_days = 7
tracing_mode = "Active"

[alarms]
error_rate_threshold_percent = 1.0
duration_threshold_ms = 20000

[guardrails]            # how far each function's own evidence lets the targets go
mode = "adjust"         # adjust | strict | off   (also --guardrails)
lookback_days = 14      # evidence window          (also --lookback-days)
max_scan_gb = 50.0      # Logs Insights budget of a run (also --max-scan-gb)
memory_headroom = 1.25  # memory >= max memory used x this ...
memory_step_mb = 64     # ... rounded up to this
timeout_p99_factor = 1.5      # timeout >= projected p99 x this
timeout_max_factor = 1.1      # timeout >= projected maximum x this
concurrency_peak_factor = 1.5 # reservation >= observed peak x this
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from optimizer_async.definitions import baseline
from optimizer_async.definitions.baseline import FunctionSettings

GuardrailMode = Literal["adjust", "strict", "off"]
GUARDRAIL_MODES: Final[tuple[GuardrailMode, ...]] = ("adjust", "strict", "off")


class TargetsError(ValueError):
    """A targets file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class AlarmTargets:
    error_rate_threshold_percent: float = baseline.ERROR_RATE_THRESHOLD_PERCENT
    duration_threshold_ms: float = baseline.DURATION_THRESHOLD_MS
    period_s: int = baseline.ALARM_PERIOD_S
    evaluation_periods: int = baseline.ALARM_EVALUATION_PERIODS

    def __post_init__(self) -> None:
        if not 0 < self.error_rate_threshold_percent <= 100:
            raise ValueError("error_rate_threshold_percent must be in (0, 100]")
        if self.duration_threshold_ms <= 0:
            raise ValueError("duration_threshold_ms must be positive")
        if self.period_s not in (10, 30) and self.period_s % 60:
            raise ValueError("period_s must be 10, 30 or a multiple of 60")
        if self.evaluation_periods < 1:
            raise ValueError("evaluation_periods must be at least 1")


@dataclass(frozen=True)
class Guardrails:
    """How each function's own evidence bounds the targets (the rules are in steps/)."""

    mode: GuardrailMode = "adjust"  # adjust: tightest safe value; strict: skip; off: targets
    lookback_days: int = 14
    max_scan_gb: float = 50.0
    memory_headroom: float = 1.25
    memory_step_mb: int = 64
    timeout_p99_factor: float = 1.5
    timeout_max_factor: float = 1.1
    concurrency_peak_factor: float = 1.5

    def __post_init__(self) -> None:
        if self.mode not in GUARDRAIL_MODES:
            raise ValueError(f"mode must be one of {', '.join(GUARDRAIL_MODES)}")
        if not 1 <= self.lookback_days <= 455:  # CloudWatch keeps hourly data 455 days
            raise ValueError("lookback_days must be between 1 and 455")
        if not self.max_scan_gb >= 0:
            raise ValueError("max_scan_gb must not be negative")
        if self.memory_step_mb < 1:
            raise ValueError("memory_step_mb must be at least 1")
        for name in (
            "memory_headroom",
            "timeout_p99_factor",
            "timeout_max_factor",
            "concurrency_peak_factor",
        ):
            if not getattr(self, name) >= 1.0:
                raise ValueError(f"{name} must be at least 1")


@dataclass(frozen=True)
class Targets:
    function: FunctionSettings = baseline.TARGET
    alarms: AlarmTargets = field(default_factory=AlarmTargets)
    guardrails: Guardrails = field(default_factory=Guardrails)
    dlq_retention_s: int = baseline.DLQ_MESSAGE_RETENTION_S
    noncurrent_version_expiration_days: int = baseline.NONCURRENT_VERSION_EXPIRATION_DAYS


def targets_to_json(targets: Targets) -> dict[str, Any]:
    return dataclasses.asdict(targets)


def targets_from_json(data: Mapping[str, Any]) -> Targets:
    """The inverse of `targets_to_json` (plan files carry the targets they were made with)."""
    return Targets(
        function=FunctionSettings(**data["function"]),
        alarms=AlarmTargets(**data["alarms"]),
        guardrails=Guardrails(**data["guardrails"]),
        dlq_retention_s=int(data["dlq_retention_s"]),
        noncurrent_version_expiration_days=int(data["noncurrent_version_expiration_days"]),
    )


def _section(data: dict[str, Any], name: str, cls: type) -> Any:
    values = data.pop(name, {})
    if not isinstance(values, dict):
        raise ValueError(f"[{name}] must be a table")
    current = getattr(Targets(), name)
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown key(s) in [{name}]: {', '.join(unknown)}")
    for key, value in values.items():
        _check_type(f"[{name}] {key}", value, hints[key])
    try:
        return dataclasses.replace(current, **values)
    except ValueError as error:  # a range: say which section
        raise ValueError(f"[{name}] {error}") from None


def _check_type(where: str, value: Any, expected: Any) -> None:
    """Types before ranges: a whole number where AWS takes one (not a float, not a bool),
    finite numbers, text from its choices. TOML has no null, so optional means its type."""
    options = [t for t in typing.get_args(expected) if t is not type(None)] or [expected]
    wanted = (
        options[0] if typing.get_origin(expected) in (types.UnionType, typing.Union) else expected
    )
    shown = (
        repr(value)
        if isinstance(value, str)
        else str(value).lower()
        if isinstance(value, bool)
        else value
    )
    if typing.get_origin(wanted) is Literal:
        choices = typing.get_args(wanted)
        if value not in choices:
            raise ValueError(f"{where} = {shown}: must be one of {', '.join(map(str, choices))}")
        return
    if wanted is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where} = {shown}: must be a whole number")
    elif wanted is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{where} = {shown}: must be a number")
        if not math.isfinite(value):
            raise ValueError(f"{where} = {shown}: must be a finite number")
    elif wanted is str and not isinstance(value, str):
        raise ValueError(f"{where} = {shown}: must be text")


def load_targets(path: Path) -> Targets:
    """Targets from a TOML file; anything not given keeps the default target."""
    try:
        data = tomllib.loads(path.read_text())
        function = _section(data, "function", FunctionSettings)
        alarms = _section(data, "alarms", AlarmTargets)
        guardrails = _section(data, "guardrails", Guardrails)
        if data:
            raise ValueError(f"unknown section(s): {', '.join(sorted(data))}")
        return Targets(function=function, alarms=alarms, guardrails=guardrails)
    except OSError as error:
        raise TargetsError(f"targets file {path}: {error.strerror or error}") from None
    except (tomllib.TOMLDecodeError, ValueError, TypeError) as error:
        raise TargetsError(f"targets file {path}: {error}") from None
