"""One GetMetricData result as moto's response writer takes it, shared by the patches that
answer queries themselves (the workload model's metrics, the stored-datapoint index)."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def returned(query: dict[str, Any]) -> bool:
    """Whether the query's values go into the answer (`ReturnData`, true unless said)."""
    return query.get("ReturnData", True) not in (False, "false", "False")


def result(
    query: dict[str, Any],
    metric_name: str,
    stat: str,
    values: list[Any],
    stamps: list[datetime],
    scan_by: str,
) -> dict[str, Any]:
    """The query's result, its points in the order `ScanBy` asks for (ascending given)."""
    if scan_by == "TimestampDescending":
        values, stamps = values[::-1], stamps[::-1]
    return {
        "id": query["Id"],
        "label": query.get("Label") or f"{metric_name} {stat}",
        "values": values,
        "timestamps": stamps,
        "status_code": "Complete",
    }
