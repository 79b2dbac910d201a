"""What a modelled function writes to its log group, as Lambda writes it.

Per invocation Lambda writes four events: in the Text format `START RequestId: ...`, a line
of the function's own, `END RequestId: ...` and the REPORT line; in the JSON format a
`platform.start` record, the function's JSON line, `platform.runtimeDone` and the
`platform.report` record (the report's figures under `record.metrics`). They go to the
group the function's LoggingConfig names (by default `/aws/lambda/{function}`), in streams
named `YYYY/MM/DD/[$LATEST]{environment}`; in a group the owner chose (which several
functions may share) `YYYY/MM/DD/{function}[$LATEST]{environment}`, so that each event
still names its function (the Lambda developer guide, "Configuring CloudWatch log groups").

A window holds far more invocations than lines anyone writes out: each piece of it (one
configuration) is written as the weighted REPORT lines of `reports.sample`, each with the
invocations it stands for, and its other events as one weighted event each. Logs Insights
weighs them (`insights_events`); FilterLogEvents lists a sample of whole invocations
(`sample_events`): each REPORT line once, with its START, own line and END.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from optimizer_async.sandbox.insights import fields
from optimizer_async.sandbox.insights.engine import Event
from optimizer_async.sandbox.workload.model import JSON, FunctionModel, Piece
from optimizer_async.sandbox.workload.reports import ReportLine, sample

_OWN_LINE: Final = "processed the order"


@dataclass(frozen=True)
class LoggedEvent:
    """One event as FilterLogEvents lists it."""

    timestamp_ms: int
    stream: str
    message: str


@dataclass(frozen=True)
class Scan:
    """What a query read of one function's share of a log group."""

    events: list[Event]
    scanned_events: float
    scanned_bytes: float


def _stream(model: FunctionModel, group: str, moment: datetime, piece_start: datetime) -> str:
    digest = hashlib.sha256(f"{model.function_name}|{piece_start.isoformat()}".encode())
    owner = "" if group == model.default_log_group else model.function_name
    return f"{moment:%Y/%m/%d}/{owner}[$LATEST]{digest.hexdigest()[:32]}"


def _pieces(model: FunctionModel, group: str, start: datetime, end: datetime) -> Iterator[Piece]:
    for piece in model.pieces(start, end):
        if piece.invocations > 0 and model.log_group_of(piece.config.logging) == group:
            yield piece


def _moments(piece: Piece, count: int) -> list[datetime]:
    """`count` moments spread evenly over the piece."""
    span = piece.end - piece.start
    return [piece.start + span * ((index + 0.5) / count) for index in range(count)]


def _other_events(request: str, json_format: bool, at: datetime) -> tuple[str, str, str]:
    """START, the function's own line, END: in the function's log format."""
    if not json_format:
        return (
            f"START RequestId: {request} Version: $LATEST",
            f"{at:%Y-%m-%dT%H:%M:%S}Z\t{request}\tINFO\t{_OWN_LINE}",
            f"END RequestId: {request}",
        )
    stamp = f"{at:%Y-%m-%dT%H:%M:%S}.000Z"
    return (
        f'{{"time":"{stamp}","type":"platform.start",'
        f'"record":{{"requestId":"{request}","version":"$LATEST"}}}}',
        f'{{"timestamp":"{stamp}","level":"INFO","requestId":"{request}","message":"{_OWN_LINE}"}}',
        f'{{"time":"{stamp}","type":"platform.runtimeDone",'
        f'"record":{{"requestId":"{request}","status":"success"}}}}',
    )


def _report_text(line: ReportLine, json_format: bool, at: datetime) -> str:
    return line.json_record(at) if json_format else line.format()


def insights_events(
    model: FunctionModel, account: str, group: str, start: datetime, end: datetime
) -> Scan:
    """The function's events in `group` over [start, end), weighted for Logs Insights."""
    log = f"{account}:{group}"
    events: list[Event] = []
    invocations = 0.0
    for piece in _pieces(model, group, start, end):
        json_format = piece.config.logging.log_format == JSON
        invocations += piece.invocations
        lines = sample(model, piece)
        for at, (text, weight) in zip(_moments(piece, len(lines)), lines, strict=True):
            line = ReportLine.parse(text)
            message = _report_text(line, json_format, at)
            stamp = at.timestamp() * 1000.0
            stream = _stream(model, group, at, piece.start)
            events.append(Event(fields.system(message, stamp, stamp, stream, log), weight))
        middle = piece.start + (piece.end - piece.start) / 2
        stamp = middle.timestamp() * 1000.0
        stream = _stream(model, group, middle, piece.start)
        request = f"{model.function_name}-{piece.start:%Y%m%dT%H%M%S}"
        for message in _other_events(request, json_format, middle):
            events.append(
                Event(fields.system(message, stamp, stamp, stream, log), piece.invocations)
            )
    return Scan(
        events,
        scanned_events=invocations * 4,
        scanned_bytes=invocations * model.profile.log_bytes_per_invocation,
    )


def sample_events(
    model: FunctionModel, group: str, start: datetime, end: datetime
) -> list[LoggedEvent]:
    """A sample of whole invocations in `group` over [start, end], oldest first."""
    found: list[LoggedEvent] = []
    for piece in _pieces(model, group, start, end):
        json_format = piece.config.logging.log_format == JSON
        lines = sample(model, piece)
        for at, (text, _) in zip(_moments(piece, len(lines)), lines, strict=True):
            line = ReportLine.parse(text)
            stream = _stream(model, group, at, piece.start)
            began = int(at.timestamp() * 1000)
            ended = began + line.billed_duration_ms
            start_text, own, end_text = _other_events(line.request_id, json_format, at)
            finished = at + timedelta(milliseconds=line.billed_duration_ms)
            found += [
                LoggedEvent(began, stream, start_text),
                LoggedEvent(began, stream, own),
                LoggedEvent(ended, stream, end_text),
                LoggedEvent(ended, stream, _report_text(line, json_format, finished)),
            ]
    return found
