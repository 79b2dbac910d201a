"""Stored metrics and alarms are read through indexes: same answers, cost of the answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from optimizer_async.sandbox.patches import cloudwatch_index
from optimizer_async.sandbox.server import EmbeddedSandbox
from tests.conftest import ClientFactory

START = datetime(2026, 3, 2, tzinfo=UTC)


def _query(namespace: str, dimension: str, stat: str = "Sum", **extra: Any) -> dict[str, Any]:
    return {
        "Id": "q",
        "MetricStat": {
            "Metric": {
                "Namespace": namespace,
                "MetricName": "Jobs",
                "Dimensions": [{"Name": "Queue", "Value": dimension}],
            },
            "Period": 3600,
            "Stat": stat,
            **extra,
        },
    }


def _put(cloudwatch: Any, namespace: str, dimension: str, hour: int, value: float) -> None:
    cloudwatch.put_metric_data(
        Namespace=namespace,
        MetricData=[
            {
                "MetricName": "Jobs",
                "Dimensions": [{"Name": "Queue", "Value": dimension}],
                "Timestamp": START + timedelta(hours=hour, minutes=10),
                "Value": value,
                "Unit": "Count",
            }
        ],
    )


def test_stored_datapoints_by_metric_period_and_dimension(
    client: ClientFactory, sandbox: EmbeddedSandbox
) -> None:
    cloudwatch = client("cloudwatch")
    for hour, value in ((0, 1.0), (0, 2.0), (2, 5.0)):
        _put(cloudwatch, "Custom/A", "q1", hour, value)
    _put(cloudwatch, "Custom/A", "q2", 0, 100.0)  # another dimension value
    _put(cloudwatch, "Custom/B", "q1", 0, 1000.0)  # another namespace, same name and dims

    def read(query: dict[str, Any], scan_by: str = "TimestampAscending") -> Any:
        answer = cloudwatch.get_metric_data(
            MetricDataQueries=[query],
            StartTime=START,
            EndTime=START + timedelta(hours=4),
            ScanBy=scan_by,
        )
        (result,) = answer["MetricDataResults"]
        return result["Values"], [t.hour for t in result["Timestamps"]]

    assert read(_query("Custom/A", "q1")) == ([3.0, 5.0], [0, 2])
    assert read(_query("Custom/A", "q1"), "TimestampDescending") == ([5.0, 3.0], [2, 0])
    assert read(_query("Custom/A", "q1", "Maximum")) == ([2.0, 5.0], [0, 2])
    assert read(_query("Custom/A", "q2")) == ([100.0], [0])
    assert read(_query("Custom/B", "q1")) == ([1000.0], [0])
    assert read(_query("Custom/A", "q1", Unit="Seconds")) == ([], [])
    assert read(_query("Custom/A", "q3")) == ([], [])


def test_a_query_reads_only_its_own_metric(
    client: ClientFactory, sandbox: EmbeddedSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloudwatch = client("cloudwatch")
    other = [
        {"MetricName": f"Other{i}", "Value": 1.0, "Timestamp": START + timedelta(minutes=i)}
        for i in range(500)
    ]
    cloudwatch.put_metric_data(Namespace="Custom/A", MetricData=other)
    _put(cloudwatch, "Custom/A", "q1", 0, 1.0)
    _put(cloudwatch, "Custom/A", "q1", 1, 2.0)
    examined: list[object] = []
    original = cloudwatch_index._dimension_key

    def counting(pairs: Any) -> frozenset[tuple[str, str]]:
        examined.append(pairs)
        return original(pairs)

    monkeypatch.setattr(cloudwatch_index, "_dimension_key", counting)
    answer = cloudwatch.get_metric_data(
        MetricDataQueries=[_query("Custom/A", "q1")],
        StartTime=START,
        EndTime=START + timedelta(days=30),
        ScanBy="TimestampAscending",
    )
    assert answer["MetricDataResults"][0]["Values"] == [1.0, 2.0]
    assert len(examined) == 2  # the metric's own datums, not the 502 stored


def test_alarms_by_name_and_prefix(client: ClientFactory, sandbox: EmbeddedSandbox) -> None:
    cloudwatch = client("cloudwatch")
    names = ["fn-b-errors", "fn-a-throttles", "fn-a-errors", "other-errors"]
    for name in names:
        cloudwatch.put_metric_alarm(
            AlarmName=name,
            Namespace="AWS/Lambda",
            MetricName="Errors",
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1.0,
            ComparisonOperator="GreaterThanThreshold",
        )

    def by_prefix(prefix: str) -> list[str]:
        alarms = cloudwatch.describe_alarms(AlarmNamePrefix=prefix)["MetricAlarms"]
        return [a["AlarmName"] for a in alarms]

    def by_names(*wanted: str) -> list[str]:
        alarms = cloudwatch.describe_alarms(AlarmNames=list(wanted))["MetricAlarms"]
        return [a["AlarmName"] for a in alarms]

    assert by_prefix("fn-a") == ["fn-a-errors", "fn-a-throttles"]
    assert by_prefix("fn-") == ["fn-a-errors", "fn-a-throttles", "fn-b-errors"]
    assert by_prefix("zzz") == []
    assert by_names("other-errors", "fn-a-errors", "missing") == ["fn-a-errors", "other-errors"]
    cloudwatch.delete_alarms(AlarmNames=["fn-a-errors"])
    assert by_prefix("fn-a") == ["fn-a-throttles"]
    assert by_names("fn-a-errors") == []
    assert len(cloudwatch.describe_alarms()["MetricAlarms"]) == 3
