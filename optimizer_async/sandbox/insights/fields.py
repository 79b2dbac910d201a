"""The fields Logs Insights discovers in one log event, as AWS documents them.

Every event has `@message`, `@timestamp`, `@ingestionTime`, `@logStream` and `@log`
(`account-id:log-group-name`). Lambda's own lines add `@type` (START, END, REPORT) and
`@requestId`; a REPORT line `@duration`, `@billedDuration` (ms), `@memorySize` and
`@maxMemoryUsed` (bytes: Logs Insights turns "128 MB" into 128000000) and, on a cold
start, `@initDuration`. A message that is a JSON object has its keys discovered, nested
objects flattened with dots (`record.metrics.maxMemoryUsedMB`): Lambda's JSON log format
writes its report that way (`"type": "platform.report"`), with no `@type`.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any, Final

from optimizer_async.sandbox.insights.language import Instant, Value

BYTES_PER_MB: Final = 1_000_000
_REQUEST_ID: Final = re.compile(r"RequestId: (\S+)")
_REPORT_NUMBERS: Final = {  # REPORT line key -> (field, factor to AWS's unit)
    "Duration": ("@duration", 1.0),
    "Billed Duration": ("@billedDuration", 1.0),
    "Memory Size": ("@memorySize", float(BYTES_PER_MB)),
    "Max Memory Used": ("@maxMemoryUsed", float(BYTES_PER_MB)),
    "Init Duration": ("@initDuration", 1.0),
}
_NUMBER_WITH_UNIT: Final = re.compile(r"^(-?\d+(?:\.\d+)?)\s*(?:ms|MB)?$")
_MAX_FLATTENED: Final = 1000  # a bound on what one event may add


def _lambda_line(message: str) -> dict[str, Value]:
    """Fields of Lambda's plain-text START / END / REPORT lines (nothing for other text)."""
    kind = message[:7]
    if kind.startswith("START ") or kind.startswith("END "):
        request = _REQUEST_ID.search(message)
        found: dict[str, Value] = {"@type": kind.split(" ", 1)[0]}
        if request:
            found["@requestId"] = request.group(1)
        return found
    if not message.startswith("REPORT RequestId: "):
        return {}
    found = {"@type": "REPORT"}
    for part in message.rstrip("\n").split("\t"):
        key, _, value = part.partition(": ")
        key, value = key.strip(), value.strip()
        if key == "REPORT RequestId":
            found["@requestId"] = value
        elif key in _REPORT_NUMBERS:
            number = _NUMBER_WITH_UNIT.match(value)
            if number:
                name, factor = _REPORT_NUMBERS[key]
                found[name] = float(number.group(1)) * factor
        elif key == "XRAY TraceId":
            found["@xrayTraceId"] = value
        elif key == "SegmentId":
            found["@xraySegmentId"] = value
    return found


def _flatten(value: Any, prefix: str, into: dict[str, Value]) -> None:
    if len(into) >= _MAX_FLATTENED:
        return
    if isinstance(value, dict):
        for key, item in value.items():
            name = str(key)
            if not prefix and name.startswith("@"):
                name = "@" + name  # AWS shows a discovered @field as @@field
            _flatten(item, f"{prefix}.{name}" if prefix else name, into)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _flatten(item, f"{prefix}.{index}", into)
    elif isinstance(value, bool):
        into[prefix] = "true" if value else "false"  # before int: a bool is an int
    elif isinstance(value, int | float):
        into[prefix] = float(value)
    elif value is None:
        into[prefix] = None
    else:
        into[prefix] = str(value)


def _json_object(message: str) -> dict[str, Value]:
    text = message.strip()
    if not text.startswith("{"):
        return {}
    try:
        parsed = json.loads(text)
    except ValueError:
        return {}
    found: dict[str, Value] = {}
    if isinstance(parsed, dict):
        _flatten(parsed, "", found)
    return found


@functools.lru_cache(maxsize=65_536)
def discovered(message: str) -> dict[str, Value]:
    """What Logs Insights discovers in a message (not the system fields). Cached: the
    model's lines repeat; callers must not change the dict."""
    return _lambda_line(message) or _json_object(message)


def system(
    message: str, timestamp_ms: float, ingestion_ms: float, stream: str, log: str
) -> dict[str, Value]:
    """An event's five system fields plus what its message holds."""
    fields = dict(discovered(message))
    fields.update(
        {
            "@message": message,
            "@timestamp": Instant(timestamp_ms),
            "@ingestionTime": Instant(ingestion_ms),
            "@logStream": stream,
            "@log": log,
        }
    )
    return fields
