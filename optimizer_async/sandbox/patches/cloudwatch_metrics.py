"""Lambda's CloudWatch metrics for modelled functions, answered from the workload model.

AWS publishes Invocations, Errors, Throttles, Duration and ConcurrentExecutions per function
(dimension FunctionName), and IncomingBytes / IncomingLogEvents per log group (AWS/Logs,
dimension LogGroupName). For functions with a workload profile, GetMetricData and
GetMetricStatistics compute them from the model under the function's configuration history
(any Period, including one covering the whole window; percentile statistics such as p99),
so the evidence an optimizer reads is exactly what was seeded, and what its changes did.
Every other query goes to moto, which also renders the answer. moto 5.2.5 has no Lambda
metrics of its own, and scans every stored datum per query and period: the model answers
in time independent of the window's length.

Periods run from StartTime (whole seconds, as moto does) and the last may be short; a
period without activity has no datapoint, as on AWS. The model answers future windows too
(under the configuration in effect now). A statistic the model does not offer (say Average
of Invocations) has no datapoint.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from moto.cloudwatch.models import CloudWatchBackend
from moto.cloudwatch.responses import CloudWatchResponse
from moto.core.responses import ActionResult

from optimizer_async.sandbox import runtime
from optimizer_async.sandbox.patches import _query_results
from optimizer_async.sandbox.patches._patching import wrap_method
from optimizer_async.sandbox.workload.model import FunctionModel, unit_of

_DIMENSION = {"AWS/Lambda": "FunctionName", "AWS/Logs": "LogGroupName"}
_PLAIN_STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")


def _modelled(
    account: str, region: str, namespace: str, metric: str, dimensions: list[dict[str, str]]
) -> FunctionModel | None:
    """The modelled function a metric belongs to, or None if moto should answer."""
    if unit_of(namespace, metric) is None or len(dimensions) != 1:
        return None
    (dimension,) = dimensions
    if dimension.get("Name") != _DIMENSION[namespace]:
        return None
    workload = runtime.current().workload
    value = str(dimension.get("Value", ""))
    if namespace == "AWS/Logs":
        return workload.for_log_group(account, region, value)
    return workload.get(account, region, value)


def _utc(moment: datetime) -> datetime:
    """Whole seconds, in UTC (moto parses request times without a zone)."""
    moment = moment.replace(microsecond=0)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _periods(start: datetime, end: datetime, seconds: int) -> list[tuple[datetime, datetime]]:
    step = timedelta(seconds=seconds)
    periods = []
    at = start
    while at < end:
        periods.append((at, min(at + step, end)))
        at += step
    return periods


def _series(
    model: FunctionModel,
    namespace: str,
    metric: str,
    stat: str,
    unit: str | None,
    periods: list[tuple[datetime, datetime]],
) -> tuple[list[float], list[datetime]]:
    values: list[float] = []
    stamps: list[datetime] = []
    if unit and unit != unit_of(namespace, metric):
        return values, stamps  # AWS matches the unit the metric was published with
    for start, end in periods:
        value = model.statistic(namespace, metric, stat, start, end)
        if value is not None:
            values.append(value)
            stamps.append(start)
    return values, stamps


def _metric_data(
    account: str, region: str, query: dict[str, Any], start: datetime, end: datetime, scan_by: str
) -> dict[str, Any] | None:
    stat_spec = query.get("MetricStat")
    if not stat_spec:
        return None
    metric_spec = stat_spec["Metric"]
    namespace, metric = metric_spec.get("Namespace", ""), metric_spec.get("MetricName", "")
    dimensions = list(metric_spec.get("Dimensions") or [])
    model = _modelled(account, region, namespace, metric, dimensions)
    if model is None:
        return None
    stat = str(stat_spec["Stat"])
    periods = _periods(start, end, int(stat_spec["Period"]))
    values, stamps = _series(model, namespace, metric, stat, stat_spec.get("Unit"), periods)
    return _query_results.result(query, metric, stat, values, stamps, scan_by)


def apply() -> None:
    @wrap_method(CloudWatchBackend, "get_metric_data")
    def get_metric_data(
        original: Any,
        backend: Any,
        queries: list[dict[str, Any]],
        start_time: datetime,
        end_time: datetime,
        scan_by: str = "TimestampAscending",
    ) -> list[dict[str, Any]]:
        start, end = _utc(start_time), _utc(end_time)
        if start >= end:  # moto refuses it, in AWS's words
            refused: list[dict[str, Any]] = original(
                backend, queries, start_time, end_time, scan_by
            )
            return refused
        answered: dict[str, dict[str, Any]] = {}
        rest = []
        for query in queries:
            found = _metric_data(
                backend.account_id, backend.region_name, query, start, end, scan_by
            )
            if found is None:
                rest.append(query)
            elif _query_results.returned(query):
                answered[str(query["Id"])] = found
        if not answered:
            result: list[dict[str, Any]] = original(backend, queries, start_time, end_time, scan_by)
            return result
        others = original(backend, rest, start_time, end_time, scan_by) if rest else []
        by_id = {**{str(r["id"]): r for r in others}, **answered}
        ordered = [by_id.pop(str(q["Id"])) for q in queries if str(q["Id"]) in by_id]
        return ordered + list(by_id.values())

    @wrap_method(CloudWatchResponse, "get_metric_statistics")
    def get_metric_statistics(original: Any, response: Any) -> Any:
        namespace = response._get_param("Namespace")
        metric = response._get_param("MetricName")
        dimensions = response._get_param("Dimensions", [])
        model = _modelled(
            str(response.current_account),
            response.region,
            namespace or "",
            metric or "",
            list(dimensions),
        )
        if model is None:
            return original(response)
        start, end = _utc(response._get_param("StartTime")), _utc(response._get_param("EndTime"))
        period = response._get_int_param("Period")
        plain = list(response._get_param("Statistics", []))
        extended = list(response._get_param("ExtendedStatistics", []))
        if not plain and not extended:
            return original(response)  # moto raises the parameter error
        unit = response._get_param("Unit")
        if unit and unit != unit_of(namespace, metric):
            return ActionResult({"Label": metric, "Datapoints": []})
        datapoints = []
        for period_start, period_end in _periods(start, end, period):
            point: dict[str, Any] = {}
            for stat in plain:
                if stat in _PLAIN_STATISTICS:
                    value = model.statistic(namespace, metric, stat, period_start, period_end)
                    if value is not None:
                        point[stat] = value
            percentiles = {
                stat: value
                for stat in extended
                if (value := model.statistic(namespace, metric, stat, period_start, period_end))
                is not None
            }
            if percentiles:
                point["ExtendedStatistics"] = percentiles
            if point:
                point.update(Timestamp=period_start, Unit=unit_of(namespace, metric))
                datapoints.append(point)
        return ActionResult({"Label": metric, "Datapoints": datapoints})
