"""Lambda's REPORT lines: their exact text, parsing it back, and weighted samples from the model.

Logs Insights reads memory use only from these lines, so the sandbox answers its queries
from lines in Lambda's format, generated from the model and parsed back: what a query sees
went through the same text a real log group holds. A window holds far too many invocations
to write one line each, so each piece of it (one configuration) is cut at fixed quantiles
and each slice is written as two lines: one at the slice's mean, standing for nearly all of
it, and one at its upper quantile for the rest. Duration and memory are paired quantile for
quantile. So each one's quantiles at the cuts (p50, p99, the maximum among them) come back
exactly, averages come back within the rounding of the text, and the weights sum to the
piece's invocations.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from optimizer_async.sandbox.workload.model import FunctionModel, Piece

# The quantiles sampled; each line stands for the invocations between the previous one and it.
SAMPLE_QUANTILES: Final = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0)
COLD_START_SHARE: Final = 0.01  # invocations that start a new execution environment
# The part of a slice its upper-end line stands for: enough to keep the slice's quantile
# exact through the percentile's tolerance, too little to move its average.
_UPPER_END_SHARE: Final = 0.001
BYTES_PER_MB: Final = 1_000_000  # Logs Insights reports `128 MB` as 128000000

_LINE: Final = re.compile(
    r"^REPORT RequestId: (?P<id>\S+)\tDuration: (?P<duration>\d+(?:\.\d+)?) ms"
    r"\tBilled Duration: (?P<billed>\d+) ms\tMemory Size: (?P<size>\d+) MB"
    r"\tMax Memory Used: (?P<used>\d+) MB(?:\tInit Duration: (?P<init>\d+(?:\.\d+)?) ms)?\s*$"
)


@dataclass(frozen=True)
class ReportLine:
    """One REPORT line's content, rounded as Lambda prints it (ms to 0.01, MB whole)."""

    request_id: str
    duration_ms: float
    billed_duration_ms: int
    memory_size_mb: int
    max_memory_used_mb: int
    init_duration_ms: float | None = None

    @classmethod
    def of(
        cls,
        request_id: str,
        duration_ms: float,
        memory_size_mb: int,
        max_memory_used_mb: float,
        init_duration_ms: float | None = None,
    ) -> ReportLine:
        """Lambda bills whole milliseconds, rounding the duration up."""
        duration = round(duration_ms, 2)
        return cls(
            request_id=request_id,
            duration_ms=duration,
            billed_duration_ms=max(1, math.ceil(duration)),
            memory_size_mb=memory_size_mb,
            max_memory_used_mb=round(max_memory_used_mb),
            init_duration_ms=None if init_duration_ms is None else round(init_duration_ms, 2),
        )

    def format(self) -> str:
        text = (
            f"REPORT RequestId: {self.request_id}\tDuration: {self.duration_ms:.2f} ms"
            f"\tBilled Duration: {self.billed_duration_ms} ms"
            f"\tMemory Size: {self.memory_size_mb} MB"
            f"\tMax Memory Used: {self.max_memory_used_mb} MB"
        )
        if self.init_duration_ms is not None:
            text += f"\tInit Duration: {self.init_duration_ms:.2f} ms"
        return text

    def json_record(self, time: datetime) -> str:
        """The same report in Lambda's JSON log format: a `platform.report` record."""
        metrics: dict[str, float | int] = {
            "durationMs": self.duration_ms,
            "billedDurationMs": self.billed_duration_ms,
            "memorySizeMB": self.memory_size_mb,
            "maxMemoryUsedMB": self.max_memory_used_mb,
        }
        if self.init_duration_ms is not None:
            metrics["initDurationMs"] = self.init_duration_ms
        record = {
            "time": _iso(time),
            "type": "platform.report",
            "record": {"requestId": self.request_id, "metrics": metrics, "status": "success"},
        }
        return json.dumps(record, separators=(",", ":"))

    @classmethod
    def parse(cls, line: str) -> ReportLine:
        match = _LINE.match(line)
        if match is None:
            raise ValueError(f"not a Lambda REPORT line: {line!r}")
        init = match.group("init")
        return cls(
            request_id=match.group("id"),
            duration_ms=float(match.group("duration")),
            billed_duration_ms=int(match.group("billed")),
            memory_size_mb=int(match.group("size")),
            max_memory_used_mb=int(match.group("used")),
            init_duration_ms=None if init is None else float(init),
        )

    def fields(self) -> dict[str, str | float]:
        """The fields Logs Insights discovers in the line (memory in bytes, MB x 10^6)."""
        found: dict[str, str | float] = {
            "@type": "REPORT",
            "@requestId": self.request_id,
            "@duration": self.duration_ms,
            "@billedDuration": float(self.billed_duration_ms),
            "@memorySize": float(self.memory_size_mb * BYTES_PER_MB),
            "@maxMemoryUsed": float(self.max_memory_used_mb * BYTES_PER_MB),
        }
        if self.init_duration_ms is not None:
            found["@initDuration"] = self.init_duration_ms
        return found


def _iso(moment: datetime) -> str:
    """Lambda's JSON `time`: UTC, milliseconds, a Z."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def request_id(*parts: object) -> str:
    """A request id in Lambda's UUID form, fixed by `parts`."""
    digest = hashlib.sha256("|".join(str(part) for part in parts).encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def _mean_capped(low: float, high: float, cap: float) -> float:
    """The mean of min(X, cap) for X even on [low, high]."""
    if high <= cap:
        return (low + high) / 2
    if low >= cap:
        return cap
    below = (cap - low) / (high - low)
    return below * (low + cap) / 2 + (1 - below) * cap


def _line(
    function: FunctionModel, piece: Piece, quantiles: tuple[float, float], at_mean: bool, cold: bool
) -> ReportLine:
    """The line for a slice of quantiles: at its mean, or at its upper end."""
    profile, config = function.profile, piece.config
    (d0, d1), (m0, m1) = (
        (piece.cpu_factor * profile.duration.quantile(q) for q in quantiles),
        (profile.memory.quantile(q) for q in quantiles),
    )
    size = float(config.memory_mb)
    if at_mean:
        duration = _mean_capped(d0, d1, piece.timeout_ms)
        memory = _mean_capped(m0, m1, size)
    else:
        duration, memory = min(d1, piece.timeout_ms), min(m1, size)
    return ReportLine.of(
        request_id(function.function_name, piece.start.isoformat(), quantiles, at_mean, cold),
        duration,
        config.memory_mb,
        memory,
        profile.init_duration_ms if cold else None,
    )


def sample(function: FunctionModel, piece: Piece) -> list[tuple[str, float]]:
    """Weighted REPORT lines (text, invocations it stands for) for one piece of a window."""
    if piece.invocations <= 0:
        return []
    lines: list[tuple[str, float]] = []
    usual = piece.invocations * (1.0 - piece.heavy_share)
    if piece.heavy_share:  # the latent heavy path: it uses all the memory it may
        profile, config = function.profile, piece.config
        heavy = ReportLine.of(
            request_id(function.function_name, piece.start.isoformat(), "heavy"),
            min(piece.cpu_factor * profile.duration_p99_ms, piece.timeout_ms),
            config.memory_mb,
            min(profile.latent_memory_mb, float(config.memory_mb)),
        )
        lines.append((heavy.format(), piece.invocations * piece.heavy_share))
    previous = 0.0
    for quantile in SAMPLE_QUANTILES:
        share = (quantile - previous) * usual
        quantiles = (previous, quantile)
        previous = quantile
        for at_mean, part in ((True, 1.0 - _UPPER_END_SHARE), (False, _UPPER_END_SHARE)):
            for cold, kind in ((False, 1.0 - COLD_START_SHARE), (True, COLD_START_SHARE)):
                line = _line(function, piece, quantiles, at_mean, cold)
                lines.append((line.format(), share * part * kind))
    return lines


def examples(function: FunctionModel, piece: Piece, count: int) -> list[str]:
    """`count` REPORT lines spread over the piece's quantiles, as a log group would hold."""
    return [
        _line(function, piece, (index / count, (index + 1) / count), True, index == 0).format()
        for index in range(count)
    ]
