"""Usage data put exactly as AWS writes it, with plain boto3: what Lambda writes to a
function's log group at the end of each invocation (a REPORT line in the Text format, a
`platform.report` record in the JSON format, in streams named as Lambda names them) and
the metrics it publishes (raw values, as Lambda's own datapoints are). The tests build
their expectations from these numbers alone, never from the sandbox's workload model."""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

_VALUES_PER_DATUM = 150  # PutMetricData: at most 150 values in one MetricDatum


@dataclass(frozen=True)
class Usage:
    """What a function did, invocation by invocation."""

    memory_used_mb: Sequence[int]
    durations_ms: Sequence[float]
    peak_concurrency: float

    @property
    def invocations(self) -> int:
        return len(self.durations_ms)


def usage(
    invocations: int,
    memory_mb: tuple[int, int],
    duration_ms: tuple[float, float],
    peak_concurrency: float,
    outliers: int = 0,
    outlier_ms: float = 0.0,
) -> Usage:
    """Spread evenly between the bounds; `outliers` invocations take `outlier_ms`."""
    low, high = memory_mb
    fast, slow = duration_ms
    steps = max(1, invocations - 1)
    memory = [round(low + (high - low) * i / steps) for i in range(invocations)]
    durations = [round(fast + (slow - fast) * i / steps, 2) for i in range(invocations)]
    for index in range(outliers):
        durations[-1 - index] = outlier_ms
    return Usage(memory, durations, peak_concurrency)


def window_moments(count: int, now: datetime | None = None) -> list[datetime]:
    """`count` moments within the optimizer's default window (14 days to the last whole
    hour before now), well inside it."""
    end = (now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=10)
    span = (end - timedelta(hours=1) - start) / max(1, count)
    return [start + span * index for index in range(count)]


def stream_name(at: datetime, function: str | None = None) -> str:
    """Lambda's stream name: `YYYY/MM/DD/[$LATEST]ENV`, or `YYYY/MM/DD/{function}[$LATEST]ENV`
    in a group the function's LoggingConfig chose."""
    return f"{at:%Y/%m/%d}/{function or ''}[$LATEST]{secrets.token_hex(16)}"


def _report(request: str, duration: float, memory_size: int, used: int, json_format: bool,
            at: datetime) -> str:  # fmt: skip
    billed = max(1, -int(-duration // 1))
    if json_format:
        return json.dumps(
            {
                "time": at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "type": "platform.report",
                "record": {
                    "requestId": request,
                    "metrics": {
                        "durationMs": duration,
                        "billedDurationMs": billed,
                        "memorySizeMB": memory_size,
                        "maxMemoryUsedMB": used,
                    },
                    "status": "success",
                },
            }
        )
    return (
        f"REPORT RequestId: {request}\tDuration: {duration:.2f} ms\tBilled Duration: {billed} ms"
        f"\tMemory Size: {memory_size} MB\tMax Memory Used: {used} MB\t"
    )


def put_reports(
    logs: Any,
    group: str,
    usage: Usage,
    *,
    memory_size_mb: int = 3008,
    json_format: bool = False,
    owner: str | None = None,
) -> None:
    """What Lambda writes per invocation, into `group`: START, END and the report (Text),
    or the platform records (JSON); `owner`: the function, in a group it shares."""
    moments = window_moments(usage.invocations)
    stream = stream_name(moments[0], owner)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    events = []
    for index, at in enumerate(moments):
        request = f"{secrets.token_hex(4)}-{index:04d}-4000-8000-{secrets.token_hex(6)}"
        began = int(at.timestamp() * 1000)
        duration = usage.durations_ms[index]
        ended = began + int(duration)
        if json_format:
            opened = {"time": at.isoformat(), "type": "platform.start",
                      "record": {"requestId": request, "version": "$LATEST"}}  # fmt: skip
            events.append({"timestamp": began, "message": json.dumps(opened)})
        else:
            events.append({"timestamp": began, "message": f"START RequestId: {request} "
                           "Version: $LATEST"})  # fmt: skip
            events.append({"timestamp": ended, "message": f"END RequestId: {request}"})
        used = usage.memory_used_mb[index]
        message = _report(request, duration, memory_size_mb, used, json_format, at)
        events.append({"timestamp": ended, "message": message})
    for first in range(0, len(events), 5_000):
        logs.put_log_events(
            logGroupName=group, logStreamName=stream, logEvents=events[first : first + 5_000]
        )


def put_metrics(cloudwatch: Any, function: str, usage: Usage) -> None:
    """Lambda's metrics for the function: a 1 per invocation (Invocations), 0 errors and
    throttles, each Duration, and the peak ConcurrentExecutions."""
    dimensions = [{"Name": "FunctionName", "Value": function}]
    at = window_moments(1)[0] + timedelta(days=5)
    data: list[dict[str, Any]] = []

    def datum(name: str, unit: str, values: Sequence[float], counts: Sequence[float]) -> None:
        data.append({"MetricName": name, "Dimensions": dimensions, "Timestamp": at,
                     "Unit": unit, "Values": list(values), "Counts": list(counts)})  # fmt: skip

    datum("Invocations", "Count", [1.0], [float(usage.invocations)])
    datum("Errors", "Count", [0.0], [float(usage.invocations)])
    datum("Throttles", "Count", [0.0], [float(usage.invocations)])
    datum("ConcurrentExecutions", "Count", [usage.peak_concurrency], [1.0])
    durations = list(usage.durations_ms)
    for start in range(0, len(durations), _VALUES_PER_DATUM):
        chunk = durations[start : start + _VALUES_PER_DATUM]
        datum("Duration", "Milliseconds", chunk, [1.0] * len(chunk))
    cloudwatch.put_metric_data(Namespace="AWS/Lambda", MetricData=data)
