"""Lambda's and CloudWatch Logs' metrics, from everything that writes them.

AWS publishes Invocations, Errors, Throttles, Duration and ConcurrentExecutions per function
(dimension FunctionName), and IncomingBytes / IncomingLogEvents per log group (AWS/Logs,
dimension LogGroupName). moto 5.2.5 publishes none of them. Here GetMetricData and
GetMetricStatistics answer such a metric from all of its data together: the workload
model's (a modelled function's traffic under its configuration history, any Period,
percentiles included), datapoints put with PutMetricData for the same metric, and for
AWS/Logs the events put into the group (by their timestamps; each event's size as
`logs_stored_events` counts it). So data a user puts changes what is read, whether or not
the sandbox models the function, and a test that puts data as AWS writes it reads back
exactly that. Statistics follow `sandbox/statistics.py`: a percentile over statistic sets
has no datapoint, as on AWS. Where only the model speaks, its own figure is the answer
(exact); other metrics go to the stored-datapoint index.

Periods run from StartTime (whole seconds, as moto does) and the last may be short; a
period without activity has no datapoint, as on AWS. The model answers future windows too
(under the configuration in effect now).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from moto.cloudwatch.exceptions import CloudWatchException
from moto.cloudwatch.models import CloudWatchBackend, cloudwatch_backends
from moto.cloudwatch.responses import CloudWatchResponse
from moto.core.responses import ActionResult
from moto.logs.models import logs_backends

from optimizer_async.sandbox import runtime
from optimizer_async.sandbox.patches import _query_results, cloudwatch_index
from optimizer_async.sandbox.patches._patching import wrap_method
from optimizer_async.sandbox.patches.logs_stored_events import group_events
from optimizer_async.sandbox.statistics import PERCENTILE, Distribution, Samples
from optimizer_async.sandbox.workload.model import FunctionModel, unit_of, windows_remembered

_DIMENSION = {"AWS/Lambda": "FunctionName", "AWS/Logs": "LogGroupName"}


class EmulatorGap(CloudWatchException):
    """An emulator's answer (SandboxConfig.emulator_gaps): CloudWatch's internal error."""

    code = "InternalServiceError"


_PLAIN_STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")


def _sources(
    account: str, region: str, namespace: str, metric: str, dimensions: list[dict[str, str]]
) -> tuple[list[FunctionModel], str | None] | None:
    """The modelled functions a metric draws on, and the log group whose ingestion it
    counts (AWS/Logs); None if only stored data answers it."""
    if unit_of(namespace, metric) is None or len(dimensions) != 1:
        return None
    (dimension,) = dimensions
    if dimension.get("Name") != _DIMENSION[namespace]:
        return None
    workload = runtime.current().workload
    value = str(dimension.get("Value", ""))
    if namespace == "AWS/Logs":
        return workload.writing_to(account, region, value), value
    model = workload.get(account, region, value)
    return ([model], None) if model is not None else None


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


def _ingested(
    backend: Any, group: str, metric: str, start: datetime, end: datetime
) -> dict[int, float]:
    """IncomingBytes / IncomingLogEvents of events put into the group, by second."""
    logs = logs_backends[backend.account_id][backend.region_name]
    found: dict[int, float] = {}
    start_ms, end_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000) - 1
    for event in group_events(logs, str(backend.account_id), group, start_ms, end_ms):
        second = int(float(event.fields["@timestamp"] or 0) // 1000)
        found[second] = found.get(second, 0.0) + (
            float(event.size) if metric == "IncomingBytes" else 1.0
        )
    return found


class _Series:
    """One MetricStat's datapoints from every source: stored datums, the models, the logs."""

    def __init__(
        self,
        backend: Any,
        models: list[FunctionModel],
        group: str | None,
        stat_spec: dict[str, Any],
        start: datetime,
        end: datetime,
    ) -> None:
        metric_spec = stat_spec["Metric"]
        self.namespace = str(metric_spec.get("Namespace", ""))
        self.metric = str(metric_spec.get("MetricName", ""))
        self.stat = str(stat_spec["Stat"])
        self.unit = stat_spec.get("Unit")
        self.step = int(stat_spec["Period"])
        self.models, self.group, self.start = models, group, start
        self.periods = _periods(start, end, self.step)
        self.stored = cloudwatch_index.stored_periods(
            cloudwatch_index.stored_datums(backend, self.namespace, self.metric),
            metric_spec,
            self.unit,
            start,
            end,
            self.step,
        )
        self.ingested = (
            _ingested(backend, group, self.metric, start, end) if group is not None else {}
        )

    def _modelled(self, start: datetime, end: datetime) -> Samples | None:
        """The models' share of a period, as samples (None: nothing)."""
        found = Samples()
        for model in self.models:
            kwargs = {"log_group": self.group} if self.group else {}
            total = model.statistic(self.namespace, self.metric, "Sum", start, end, **kwargs)
            if self.metric == "Duration":
                known = model.duration_cdf(start, end)
                if known is not None and total is not None:
                    count, cdf, low, high = known
                    found.add_distribution(Distribution(count, cdf, low, high), total)
            elif self.metric == "ConcurrentExecutions":
                peak = model.statistic(self.namespace, self.metric, "Maximum", start, end)
                if peak is not None:
                    found.add_value(peak)
            elif total is not None and self.namespace == "AWS/Lambda":
                found.add_value(1.0, total)  # Lambda publishes a 1 per invocation (error, ...)
            elif total is not None:
                found.add_value(total)  # the logs' bytes or events of the period
        return None if found.empty else found

    def value(self, number: int, start: datetime, end: datetime) -> float | None:
        stored = self.stored.get(number)
        logged = sum(
            amount
            for second, amount in self.ingested.items()
            if start.timestamp() <= second < end.timestamp()
        )
        if stored is None and not logged:
            if len(self.models) == 1:  # the model's own figure, exactly
                kwargs = {"log_group": self.group} if self.group else {}
                model = self.models[0]
                return model.statistic(self.namespace, self.metric, self.stat, start, end, **kwargs)
            if not self.models:
                return None
        combined = self._modelled(start, end) or Samples()
        if stored is not None:
            combined.merge(stored)
        if logged:
            combined.add_set(1.0, logged, logged, logged)
        return combined.statistic(self.stat)

    def datapoints(self) -> tuple[list[float], list[datetime]]:
        values: list[float] = []
        stamps: list[datetime] = []
        if self.unit and self.unit != unit_of(self.namespace, self.metric):
            return values, stamps  # AWS matches the unit the metric was published with
        for number, (start, end) in enumerate(self.periods):
            value = self.value(number, start, end)
            if value is not None:
                values.append(value)
                stamps.append(start)
        return values, stamps


def _metric_data(
    backend: Any, query: dict[str, Any], start: datetime, end: datetime, scan_by: str
) -> dict[str, Any] | None:
    stat_spec = query.get("MetricStat")
    if not stat_spec:
        return None
    metric_spec = stat_spec["Metric"]
    namespace, metric = metric_spec.get("Namespace", ""), metric_spec.get("MetricName", "")
    sources = _sources(
        str(backend.account_id),
        str(backend.region_name),
        namespace,
        metric,
        list(metric_spec.get("Dimensions") or []),
    )
    if sources is None:
        return None
    series = _Series(backend, *sources, stat_spec, start, end)
    values, stamps = series.datapoints()
    return _query_results.result(query, metric, str(stat_spec["Stat"]), values, stamps, scan_by)


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
        if "percentiles" in runtime.current().config.emulator_gaps and any(
            PERCENTILE.match(str(q.get("MetricStat", {}).get("Stat", ""))) for q in queries
        ):
            raise EmulatorGap("GetMetricData cannot compute percentiles (an emulator's gap)")
        start, end = _utc(start_time), _utc(end_time)
        if start >= end:  # moto refuses it, in AWS's words
            refused: list[dict[str, Any]] = original(
                backend, queries, start_time, end_time, scan_by
            )
            return refused
        answered: dict[str, dict[str, Any]] = {}
        rest = []
        with windows_remembered():  # a function's metrics share its pieces of the window
            for query in queries:
                found = _metric_data(backend, query, start, end, scan_by)
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
        namespace = str(response._get_param("Namespace") or "")
        metric = str(response._get_param("MetricName") or "")
        dimensions = list(response._get_param("Dimensions", []))
        backend = cloudwatch_backends[str(response.current_account)][response.region]
        sources = _sources(
            str(response.current_account), response.region, namespace, metric, dimensions
        )
        plain = [s for s in response._get_param("Statistics", []) if s in _PLAIN_STATISTICS]
        extended = list(response._get_param("ExtendedStatistics", []))
        if sources is None or not (plain or extended):
            return original(response)  # moto answers, or raises the parameter error
        start, end = _utc(response._get_param("StartTime")), _utc(response._get_param("EndTime"))
        unit = response._get_param("Unit")
        points: dict[datetime, dict[str, Any]] = {}
        with windows_remembered():  # the statistics share the pieces of each period
            for stat in plain + extended:
                spec = {
                    "Metric": {
                        "Namespace": namespace,
                        "MetricName": metric,
                        "Dimensions": dimensions,
                    },
                    "Period": response._get_int_param("Period"),
                    "Stat": stat,
                    "Unit": unit,
                }
                values, stamps = _Series(backend, *sources, spec, start, end).datapoints()
                for value, stamp in zip(values, stamps, strict=True):
                    point = points.setdefault(stamp, {})
                    if stat in plain:
                        point[stat] = value
                    else:
                        point.setdefault("ExtendedStatistics", {})[stat] = value
        datapoints = [
            {**point, "Timestamp": stamp, "Unit": unit_of(namespace, metric)}
            for stamp, point in sorted(points.items())
        ]
        return ActionResult({"Label": metric, "Datapoints": datapoints})
