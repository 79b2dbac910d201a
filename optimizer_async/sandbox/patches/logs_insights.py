"""Logs Insights as AWS runs it, over every event a log group holds.

moto 5.2.5 runs a query at once over the events actually put, understands little of the
language (it ignores `stats`), ignores `logGroupIdentifiers`, has no StopQuery and no
concurrency limit. AWS: StartQuery takes up to 50 log groups (by name, or by name or ARN in
`logGroupIdentifiers`); a query it cannot parse is refused (MalformedQueryException); a
query is Running, then Complete (or Cancelled by StopQuery, which refuses a query that is
not running); an account runs at most 30 queries at once, the next StartQuery failing with
LimitExceededException.

Here every query runs in the language of `sandbox/insights/` over the groups' events in
[startTime, endTime] (seconds since the epoch, both ends included): those put with
PutLogEvents and the workload model's lines of every modelled function that logged to the group (its
LoggingConfig's group and format; `workload/logs.py`), each model line weighted by the
invocations it stands for. A query stays Running for `insights_query_s` (sandbox clock).
`recordsScanned` counts the events read; `bytesScanned` their size (a put event: its
message's UTF-8 bytes plus the 26 bytes CloudWatch Logs counts per event; a model
invocation: its profile's log bytes).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from moto.logs.exceptions import (
    InvalidParameterException,
    LogsClientError,
    ResourceNotFoundException,
)
from moto.logs.responses import LogsResponse

from optimizer_async.sandbox import runtime
from optimizer_async.sandbox.insights import engine, language
from optimizer_async.sandbox.patches._patching import wrap_method
from optimizer_async.sandbox.patches.logs_group_identifiers import log_group_name_of
from optimizer_async.sandbox.patches.logs_stored_events import group_events
from optimizer_async.sandbox.workload import insights, logs


class QueryLimitExceeded(LogsClientError):
    def __init__(self) -> None:
        self.code = 400
        super().__init__("LimitExceededException", insights.LIMIT_MESSAGE)


class MalformedQuery(LogsClientError):
    def __init__(self, message: str) -> None:
        self.code = 400
        super().__init__("MalformedQueryException", message)


def _log_groups(response: Any) -> list[str]:
    """The groups a StartQuery names, exactly one way (AWS refuses none or several)."""
    given = [
        value
        for value in (
            [response._get_param("logGroupName")] if response._get_param("logGroupName") else [],
            response._get_param("logGroupNames") or [],
            [log_group_name_of(str(i)) for i in response._get_param("logGroupIdentifiers") or []],
        )
        if value
    ]
    if len(given) != 1:
        raise InvalidParameterException(
            msg="Exactly one of logGroupName, logGroupNames or logGroupIdentifiers is required"
        )
    (groups,) = given
    if len(groups) > insights.MAX_LOG_GROUPS:
        raise InvalidParameterException(
            constraint=f"Member must have length less than or equal to {insights.MAX_LOG_GROUPS}",
            parameter="logGroupNames",
            value=len(groups),
        )
    return list(dict.fromkeys(str(group) for group in groups))  # a group is read once


def _scan(
    backend: Any, account: str, region: str, groups: list[str], start_s: int, end_s: int
) -> tuple[list[engine.Event], float, float]:
    """Every event of the groups in the window, and how many events and bytes were read."""
    sandbox = runtime.current()
    start = datetime.fromtimestamp(start_s, UTC)
    end = datetime.fromtimestamp(end_s, UTC)  # included: an instant holds no modelled traffic
    found: list[engine.Event] = []
    events = scanned_bytes = 0.0
    for group in groups:
        for model in sandbox.workload.writing_to(account, region, group):
            scan = logs.insights_events(model, account, group, start, end)
            found += scan.events
            events += scan.scanned_events
            scanned_bytes += scan.scanned_bytes
        for stored in group_events(backend, account, group, start_s * 1000, end_s * 1000):
            found.append(engine.Event(stored.fields))
            events += 1
            scanned_bytes += stored.size
    return found, events, scanned_bytes


def _pointers_only(outcome: engine.Outcome) -> engine.Outcome:
    """A stats query as an emulator without `stats` answers it: a pointer per group."""
    rows = [[{"field": "@ptr", "value": f"ptr-{index}"}] for index in range(len(outcome.rows))]
    return engine.Outcome(rows, outcome.statistics)


def _start(response: Any) -> str:
    backend, region = response.logs_backend, response.region
    account = str(backend.account_id)
    groups = _log_groups(response)
    for group in groups:
        if group not in backend.groups:
            raise ResourceNotFoundException(f"Log group '{group}' does not exist.")
    query_string = str(response._get_param("queryString") or "")
    try:
        query = language.parse(query_string)
    except language.QueryError as error:
        raise MalformedQuery(str(error)) from None
    sandbox = runtime.current()
    now = sandbox.clock.now()
    if sandbox.insights.running(account, region, now) >= insights.MAX_RUNNING_QUERIES:
        raise QueryLimitExceeded()
    start_s, end_s = response._get_int_param("startTime"), response._get_int_param("endTime")
    if start_s is None or end_s is None or start_s > end_s:
        raise InvalidParameterException(msg="endTime must not be before startTime")
    events, scanned_events, scanned_bytes = _scan(backend, account, region, groups, start_s, end_s)
    try:
        outcome = engine.run(query, events, scanned_events, scanned_bytes)
    except language.QueryError as error:
        raise MalformedQuery(str(error)) from None
    if query.aggregates and "insights-statistics" in sandbox.config.emulator_gaps:
        outcome = _pointers_only(outcome)
    config = sandbox.config
    added = sandbox.insights.add(
        account,
        region,
        query_string,
        groups,
        create_time_ms=int(sandbox.model_time(now).timestamp() * 1000),
        ready_at=now + config.scaled(config.insights_query_s),
        outcome=(outcome.rows, outcome.statistics),
        now=now,
    )
    if added is None:  # another request took the last slot meanwhile
        raise QueryLimitExceeded()
    return added.query_id


def apply() -> None:
    @wrap_method(LogsResponse, "start_query")
    def start_query(original: Any, response: Any) -> str:
        return json.dumps({"queryId": _start(response)})

    @wrap_method(LogsResponse, "get_query_results")
    def get_query_results(original: Any, response: Any) -> str:
        query_id = str(response._get_param("queryId"))
        sandbox = runtime.current()
        query = sandbox.insights.get(str(response.logs_backend.account_id), query_id)
        if query is None:
            raise ResourceNotFoundException("The specified query does not exist.")
        return json.dumps(query.answer(sandbox.clock.now()))

    @wrap_method(LogsResponse, "describe_queries")
    def describe_queries(original: Any, response: Any) -> str:
        group = response._get_param("logGroupName")
        status = response._get_param("status")
        sandbox = runtime.current()
        now = sandbox.clock.now()
        ours = [
            query.describe(now)
            for query in sandbox.insights.all(
                str(response.logs_backend.account_id), response.region
            )
            if (not group or group in query.log_groups)
            and (not status or query.status(now) == status)
        ]
        limit = response._get_int_param("maxResults") or 1000
        return json.dumps({"queries": ours[:limit]})

    def stop_query(response: Any) -> str:
        """StopQuery: cancel a running query; one that ended is refused, as AWS does."""
        query_id = str(response._get_param("queryId"))
        sandbox = runtime.current()
        query = sandbox.insights.get(str(response.logs_backend.account_id), query_id)
        if query is None:
            raise ResourceNotFoundException("The specified query does not exist.")
        if not query.cancel(sandbox.clock.now()):
            raise InvalidParameterException(msg="The specified query is not running.")
        return json.dumps({"success": True})

    if "stop_query" not in LogsResponse.__dict__:
        LogsResponse.stop_query = stop_query  # type: ignore[attr-defined]
