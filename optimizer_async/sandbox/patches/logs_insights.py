"""Logs Insights over modelled functions' log groups, as AWS runs it.

moto 5.2.5 runs a query at once over the events actually put (a handful, here), ignores
`logGroupIdentifiers`, has no StopQuery and no concurrency limit. AWS: StartQuery takes up
to 50 log groups (by name, or by name or ARN in `logGroupIdentifiers`); a query is Running,
then Complete (or Cancelled by StopQuery, which refuses a query that is not running); an
account runs at most 30 queries at once, the next StartQuery failing with
LimitExceededException.

A query whose every log group belongs to a modelled function, in the grammar of
`workload/insights.py`, is answered from the model's REPORT lines over [startTime, endTime)
and stays Running for `insights_query_s` (sandbox clock). `bytesScanned` is the groups'
modelled IncomingBytes over the window; `recordsScanned` their log events. Any other query
goes to moto (and counts as finished at once).
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
from optimizer_async.sandbox.patches._patching import wrap_method
from optimizer_async.sandbox.patches.logs_group_identifiers import log_group_name_of
from optimizer_async.sandbox.workload import insights
from optimizer_async.sandbox.workload.model import FunctionModel


class QueryLimitExceeded(LogsClientError):
    def __init__(self) -> None:
        self.code = 400
        super().__init__("LimitExceededException", insights.LIMIT_MESSAGE)


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


def _modelled(account: str, region: str, groups: list[str]) -> list[FunctionModel] | None:
    workload = runtime.current().workload
    found = [workload.for_log_group(account, region, group) for group in groups]
    return None if any(model is None for model in found) else [m for m in found if m]


def _start(response: Any) -> str:
    backend, region = response.logs_backend, response.region
    account = str(backend.account_id)
    groups = _log_groups(response)
    for group in groups:
        if group not in backend.groups:
            raise ResourceNotFoundException(f"Log group '{group}' does not exist.")
    sandbox = runtime.current()
    now = sandbox.clock.now()
    if sandbox.insights.running(account, region, now) >= insights.MAX_RUNNING_QUERIES:
        raise QueryLimitExceeded()
    start_s, end_s = response._get_int_param("startTime"), response._get_int_param("endTime")
    query_string = str(response._get_param("queryString") or "")
    models = _modelled(account, region, groups)
    try:
        query = insights.parse(query_string)
    except insights.QueryError:
        query = None
    if models is None or query is None:
        return str(backend.start_query(groups, start_s, end_s, query_string))
    start = datetime.fromtimestamp(start_s, UTC)
    end = datetime.fromtimestamp(end_s, UTC)
    scans = [
        (f"{account}:{model.log_group}", insights.scan(model, account, start, end))
        for model in models
    ]
    config = sandbox.config
    added = sandbox.insights.add(
        account,
        region,
        query_string,
        groups,
        create_time_ms=int(sandbox.model_time(now).timestamp() * 1000),
        ready_at=now + config.scaled(config.insights_query_s),
        outcome=insights.run(query, scans),
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
        if query is not None:
            return json.dumps(query.answer(sandbox.clock.now()))
        if query_id not in response.logs_backend.queries:
            raise ResourceNotFoundException("The specified query does not exist.")
        return str(original(response))

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
        theirs = json.loads(original(response)).get("queries", []) if group else []
        limit = response._get_int_param("maxResults") or 1000
        return json.dumps({"queries": (ours + theirs)[:limit]})

    def stop_query(response: Any) -> str:
        """StopQuery: cancel a running query; one that ended is refused, as AWS does."""
        query_id = str(response._get_param("queryId"))
        sandbox = runtime.current()
        query = sandbox.insights.get(str(response.logs_backend.account_id), query_id)
        if query is None and query_id not in response.logs_backend.queries:
            raise ResourceNotFoundException("The specified query does not exist.")
        if query is None or not query.cancel(sandbox.clock.now()):
            raise InvalidParameterException(msg="The specified query is not running.")
        return json.dumps({"success": True})

    if "stop_query" not in LogsResponse.__dict__:
        LogsResponse.stop_query = stop_query  # type: ignore[attr-defined]
