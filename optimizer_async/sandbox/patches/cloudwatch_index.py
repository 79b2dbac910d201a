"""CloudWatch reads that cost what they return, whatever the account holds.

moto 5.2.5 answers GetMetricData by scanning every stored datum for every query and every
period (including empty ones), DescribeAlarms(AlarmNames) by testing every alarm against
the list of names, and AlarmNamePrefix by testing every alarm. With thousands of functions
that is most of the sandbox's time. Here:

- stored datapoints (PutMetricData; `cloudwatch_metrics` adds the model's and the logs'
  share before this) are indexed by (namespace, metric name), tail-appended as moto
  stores them, and a query reads only its metric's datums, bucketed by period
  arithmetic. A query matches namespace, name, dimensions (as a set) and unit, as AWS
  does (moto ignores the namespace once dimensions are given). Statistics follow
  CloudWatch's rules (`sandbox/statistics.py`: a percentile over statistic sets has no
  datapoint; moto raised a TypeError). Metric math and Metrics Insights queries go to
  moto as before; S3's own metrics, which moto computes from every bucket, only when a
  query asks for AWS/S3;
- alarms are found by name with dict lookups and by prefix with a sorted name index, and
  every listing is a copy (moto handed out a live view of its dict, which a concurrent
  PutMetricAlarm could change under the serializer).
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from moto.cloudwatch.models import CloudWatchBackend, MetricAggregatedDatum

from optimizer_async.sandbox.patches import _query_results
from optimizer_async.sandbox.patches._patching import wrap_method
from optimizer_async.sandbox.statistics import Samples

_LOCK = threading.Lock()
_PROVIDED = "AWS/S3"  # the namespace of the metrics moto's backends provide (S3's)


class _DatumIndex:
    """A backend's stored datums by (namespace, name), covering `metric_data[:covered]`."""

    def __init__(self, data: list[Any]) -> None:
        self.source = data
        self.covered = 0
        self.by_metric: dict[tuple[str, str], list[Any]] = defaultdict(list)

    def refresh(self) -> None:
        for datum in self.source[self.covered :]:
            self.by_metric[(datum.namespace, datum.name)].append(datum)
        self.covered = len(self.source)


def _datum_index(backend: Any) -> _DatumIndex:
    """The backend's index, brought up to date (rebuilt if moto replaced or cut its list)."""
    with _LOCK:
        index: _DatumIndex | None = backend.__dict__.get("_sandbox_datums")
        data = backend.metric_data
        if index is None or index.source is not data or index.covered > len(data):
            index = backend.__dict__["_sandbox_datums"] = _DatumIndex(data)
        index.refresh()
        return index


def _dimension_key(pairs: Any) -> frozenset[tuple[str, str]]:
    return frozenset((str(d.name), str(d.value)) for d in pairs)


def _aware(moment: datetime) -> datetime:
    """moto keeps some times without a zone: they are UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def samples_of(datums: list[Any]) -> Samples:
    """Stored datums (PutMetricData) as a period's samples: values and statistic sets."""
    found = Samples()
    for datum in datums:
        if isinstance(datum, MetricAggregatedDatum):
            found.add_set(
                float(datum.sample_count), float(datum.sum), float(datum.min), float(datum.max)
            )
        else:
            found.add_value(float(datum.value))
    return found


def stored_periods(
    datums: list[Any],
    metric: dict[str, Any],
    unit: str | None,
    start: datetime,
    end: datetime,
    step: int,
) -> dict[int, Samples]:
    """The metric's stored datums in [start, end), by period number."""
    wanted = frozenset((str(d["Name"]), str(d["Value"])) for d in metric.get("Dimensions") or [])
    start, end = _aware(start), _aware(end)
    periods: dict[int, list[Any]] = defaultdict(list)
    for datum in datums:
        stamp = _aware(datum.timestamp)
        if not start <= stamp < end or _dimension_key(datum.dimensions) != wanted:
            continue
        if unit and datum.unit != unit:
            continue
        periods[int((stamp - start).total_seconds()) // step].append(datum)
    return {number: samples_of(found) for number, found in periods.items()}


def stored_datums(backend: Any, namespace: str, name: str) -> list[Any]:
    """The backend's stored datums of one metric (S3's computed ones included)."""
    index = _datum_index(backend)
    stored = index.by_metric.get((namespace, name), [])
    if not namespace.startswith(_PROVIDED):
        return stored
    provided = [d for d in backend.aws_metric_data if (d.namespace, d.name) == (namespace, name)]
    return stored + provided


def _query_result(
    datums: list[Any], query: dict[str, Any], start: datetime, end: datetime, scan_by: str
) -> dict[str, Any]:
    stat_spec = query["MetricStat"]
    metric = stat_spec["Metric"]
    step = int(stat_spec["Period"])
    periods = stored_periods(datums, metric, stat_spec.get("Unit"), start, end, step)
    stat = stat_spec["Stat"]
    values, stamps = [], []
    for number in sorted(periods):
        value = periods[number].statistic(stat)
        if value is not None:
            values.append(value)
            stamps.append(start + timedelta(seconds=number * step))
    return _query_results.result(query, metric["MetricName"], stat, values, stamps, scan_by)


class _AlarmNames:
    """A sorted copy of an alarm dict's names, rebuilt when the dict's key set changed."""

    def __init__(self) -> None:
        self.version: tuple[int, int] = (-1, -1)  # (changes seen, alarm count)
        self.names: list[str] = []


def _alarm_names(backend: Any) -> list[str]:
    with _LOCK:
        index: _AlarmNames = backend.__dict__.setdefault("_sandbox_alarm_names", _AlarmNames())
        version = backend.__dict__.get("_sandbox_alarm_version", 0), len(backend.alarms)
        if index.version != version:
            index.names, index.version = sorted(backend.alarms), version
        return index.names


def _changed(backend: Any) -> None:
    with _LOCK:
        backend.__dict__["_sandbox_alarm_version"] = (
            backend.__dict__.get("_sandbox_alarm_version", 0) + 1
        )


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
        start, end = start_time.replace(microsecond=0), end_time.replace(microsecond=0)
        if start >= end or any("MetricStat" not in q for q in queries):
            result: list[dict[str, Any]] = original(backend, queries, start_time, end_time, scan_by)
            return result
        index = _datum_index(backend)
        provided: dict[tuple[str, str], list[Any]] | None = None

        def datums(metric: dict[str, Any]) -> list[Any]:
            nonlocal provided
            key = (str(metric["Namespace"]), str(metric["MetricName"]))
            stored = index.by_metric.get(key, [])
            if not key[0].startswith(_PROVIDED):
                return stored
            if provided is None:  # moto computes S3's metrics per call, from every bucket
                provided = defaultdict(list)
                for datum in backend.aws_metric_data:
                    provided[(datum.namespace, datum.name)].append(datum)
            return stored + provided.get(key, [])

        return [
            _query_result(datums(q["MetricStat"]["Metric"]), q, start, end, scan_by)
            for q in queries
            if _query_results.returned(q)
        ]

    @wrap_method(CloudWatchBackend, "describe_alarms")
    def describe_alarms(original: Any, backend: Any) -> list[Any]:
        return list(backend.alarms.values())

    @wrap_method(CloudWatchBackend, "get_alarms_by_alarm_names")
    def by_names(original: Any, backend: Any, alarm_names: list[str]) -> list[Any]:
        alarms = backend.alarms
        return [alarms[name] for name in sorted(set(alarm_names)) if name in alarms]

    @wrap_method(CloudWatchBackend, "get_alarms_by_alarm_name_prefix")
    def by_prefix(original: Any, backend: Any, name_prefix: str) -> list[Any]:
        names = _alarm_names(backend)
        found = []
        at = bisect.bisect_left(names, name_prefix)
        while at < len(names) and names[at].startswith(name_prefix):
            alarm = backend.alarms.get(names[at])
            if alarm is not None:
                found.append(alarm)
            at += 1
        return found

    for name in ("put_metric_alarm", "delete_alarms"):

        @wrap_method(CloudWatchBackend, name)
        def changes(original: Any, backend: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return original(backend, *args, **kwargs)
            finally:
                _changed(backend)
