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
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optimizer_async import baseline
from optimizer_async.baseline import FunctionSettings


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
class Targets:
    function: FunctionSettings = baseline.TARGET
    alarms: AlarmTargets = field(default_factory=AlarmTargets)
    dlq_retention_s: int = baseline.DLQ_MESSAGE_RETENTION_S
    noncurrent_version_expiration_days: int = baseline.NONCURRENT_VERSION_EXPIRATION_DAYS


def _section(data: dict[str, Any], name: str, cls: type) -> Any:
    values = data.pop(name, {})
    if not isinstance(values, dict):
        raise ValueError(f"[{name}] must be a table")
    defaults = Targets()
    current = defaults.function if name == "function" else defaults.alarms
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown key(s) in [{name}]: {', '.join(unknown)}")
    return dataclasses.replace(current, **values)


def load_targets(path: Path) -> Targets:
    """Targets from a TOML file; anything not given keeps the default target."""
    try:
        data = tomllib.loads(path.read_text())
        function = _section(data, "function", FunctionSettings)
        alarms = _section(data, "alarms", AlarmTargets)
        if data:
            raise ValueError(f"unknown section(s): {', '.join(sorted(data))}")
        return Targets(function=function, alarms=alarms)
    except OSError as error:
        raise TargetsError(f"targets file {path}: {error.strerror or error}") from None
    except (tomllib.TOMLDecodeError, ValueError, TypeError) as error:
        raise TargetsError(f"targets file {path}: {error}") from None
