"""FilterLogEvents as AWS answers it, and the stored events Logs Insights reads.

moto 5.2.5's FilterLogEvents understands only plain terms (any other pattern, `?A ?B` or a
JSON pattern among them, matches every event), takes no `logGroupIdentifier` or
`logStreamNamePrefix`, and sees only events put with PutLogEvents. AWS
(FilterLogEvents API reference): the group by name or by identifier (name or ARN, not
both); events of the named streams or of those with the prefix (not both); `startTime` and
`endTime` in milliseconds, both included; the pattern's syntax of `filter_patterns.py`
(a pattern it cannot parse: InvalidParameterException); at most `limit` (10,000) events a
page, oldest first across streams, and a `nextToken` while more remain.

Here a group's events are those put into it and a sample of the workload model's
invocations of every modelled function that logs to it (`workload/logs.py`). Without a
`startTime` the model's sample starts 30 days before the model's now (a real group holds
its whole history; the model's has no beginning).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from moto.logs.exceptions import InvalidParameterException, ResourceNotFoundException
from moto.logs.responses import LogsResponse

from optimizer_async.sandbox import runtime
from optimizer_async.sandbox.filter_patterns import PatternError, compile_pattern
from optimizer_async.sandbox.insights import fields
from optimizer_async.sandbox.insights.language import Value
from optimizer_async.sandbox.patches._patching import wrap_method
from optimizer_async.sandbox.patches.logs_group_identifiers import log_group_name_of
from optimizer_async.sandbox.workload import logs

EVENT_OVERHEAD_BYTES: Final = 26  # what CloudWatch Logs adds to each event's message size
MAX_EVENTS_PER_PAGE: Final = 10_000
_UNBOUNDED_MODEL_DAYS: Final = 30


@dataclass(frozen=True)
class StoredEvent:
    """An event put with PutLogEvents, with what Logs Insights discovers in it."""

    fields: dict[str, Value]
    size: int


def group_events(
    backend: Any, account: str, group: str, start_ms: int, end_ms: int
) -> Iterator[StoredEvent]:
    """The group's put events with start_ms <= timestamp <= end_ms."""
    log_group = backend.groups.get(group)
    if log_group is None:
        return
    log = f"{account}:{group}"
    for stream_name, stream in list(log_group.streams.items()):
        for event in list(stream.events):
            if start_ms <= event.timestamp <= end_ms:
                message = str(event.message)
                yield StoredEvent(
                    fields.system(message, event.timestamp, event.ingestion_time, stream_name, log),
                    len(message.encode()) + EVENT_OVERHEAD_BYTES,
                )


@dataclass(frozen=True)
class _Listed:
    timestamp: int
    stream: str
    event_id: str
    message: str
    ingestion_time: int

    def to_json(self) -> dict[str, Any]:
        return {
            "logStreamName": self.stream,
            "timestamp": self.timestamp,
            "message": self.message,
            "ingestionTime": self.ingestion_time,
            "eventId": self.event_id,
        }


def _group_of(response: Any) -> str:
    name = response._get_param("logGroupName")
    identifier = response._get_param("logGroupIdentifier")
    if bool(name) == bool(identifier):
        raise InvalidParameterException(
            msg="Exactly one of logGroupName or logGroupIdentifier is required"
        )
    return str(name) if name else log_group_name_of(str(identifier))


def _token(group: str, index: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([group, index]).encode()).decode()


def _offset(group: str, token: str | None) -> int:
    if not token:
        return 0
    try:
        named, index = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, TypeError):
        raise InvalidParameterException(msg="The specified nextToken is invalid.") from None
    if named != group or not isinstance(index, int) or index < 0:
        raise InvalidParameterException(msg="The specified nextToken is invalid.")
    return index


def _events(response: Any, group: str) -> list[_Listed]:
    backend = response.logs_backend
    names = response._get_param("logStreamNames") or []
    prefix = response._get_param("logStreamNamePrefix")
    if names and prefix:
        raise InvalidParameterException(
            msg="logStreamNames and logStreamNamePrefix are mutually exclusive"
        )
    start = response._get_int_param("startTime")
    end = response._get_int_param("endTime")
    try:
        matches = compile_pattern(response._get_param("filterPattern"))
    except PatternError as error:
        raise InvalidParameterException(msg=str(error)) from None

    def wanted(stream: str, timestamp: int) -> bool:
        if names and stream not in names:
            return False
        if prefix and not stream.startswith(prefix):
            return False
        return (start is None or timestamp >= start) and (end is None or timestamp <= end)

    listed: list[_Listed] = []
    for stream_name, stream in list(backend.groups[group].streams.items()):
        for event in list(stream.events):
            if wanted(stream_name, event.timestamp) and matches(str(event.message)):
                listed.append(
                    _Listed(
                        event.timestamp,
                        stream_name,
                        str(event.event_id),
                        str(event.message),
                        int(event.ingestion_time),
                    )
                )
    sandbox = runtime.current()
    now = sandbox.model_time()
    window_start = (
        datetime.fromtimestamp(start / 1000, UTC)
        if start is not None
        else now - timedelta(days=_UNBOUNDED_MODEL_DAYS)
    )
    window_end = datetime.fromtimestamp(end / 1000, UTC) if end is not None else now
    account, region = str(backend.account_id), str(backend.region_name)
    for model in sandbox.workload.writing_to(account, region, group):
        for number, event in enumerate(logs.sample_events(model, group, window_start, window_end)):
            if wanted(event.stream, event.timestamp_ms) and matches(event.message):
                listed.append(
                    _Listed(
                        event.timestamp_ms,
                        event.stream,
                        f"{model.function_name}-{event.timestamp_ms}-{number}",
                        event.message,
                        event.timestamp_ms,
                    )
                )
    listed.sort(key=lambda item: (item.timestamp, item.stream, item.event_id))
    return listed


def apply() -> None:
    @wrap_method(LogsResponse, "filter_log_events")
    def filter_log_events(original: Any, response: Any) -> str:
        group = _group_of(response)
        if group not in response.logs_backend.groups:
            raise ResourceNotFoundException("The specified log group does not exist.")
        limit = response._get_int_param("limit") or MAX_EVENTS_PER_PAGE
        if not 1 <= limit <= MAX_EVENTS_PER_PAGE:
            raise InvalidParameterException(
                constraint=f"Member must have value less than or equal to {MAX_EVENTS_PER_PAGE}",
                parameter="limit",
                value=limit,
            )
        first = _offset(group, response._get_param("nextToken"))
        events = _events(response, group)
        page = events[first : first + limit]
        answer: dict[str, Any] = {
            "events": [event.to_json() for event in page],
            "searchedLogStreams": [],
        }
        if first + limit < len(events):
            answer["nextToken"] = _token(group, first + limit)
        return json.dumps(answer)
