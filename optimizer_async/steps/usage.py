"""30 days of each function's CloudWatch usage: part, not step; what savings are priced from.

One GetMetricData answers 500 queries, two per function (Invocations and Duration, daily
sums), so the run's batch loader reads 250 functions, from any environments, per call.
Usage is evidence, not rollback material: it stays out of the before-image.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, ClassVar, Final

from optimizer_async.inventory import EnvironmentInventory, FunctionState
from optimizer_async.steps.base import (
    ApiCall,
    FunctionPart,
    Permission,
    ReadContext,
)

if TYPE_CHECKING:
    from types_aiobotocore_cloudwatch.type_defs import MetricDataQueryTypeDef

    from optimizer_async.aws.gateway import Aws

USAGE_DAYS: Final = 30
_FUNCTIONS_PER_CALL: Final = 250  # GetMetricData: 500 queries, two per function


@dataclass(frozen=True)
class Usage:
    """What the savings estimate is computed from."""

    days: int
    invocations: float
    duration_ms: float  # summed over all invocations


def _queries(functions: Sequence[str]) -> list[MetricDataQueryTypeDef]:
    queries: list[MetricDataQueryTypeDef] = []
    for index, function in enumerate(functions):
        for prefix, metric in (("i", "Invocations"), ("d", "Duration")):
            queries.append(
                {
                    "Id": f"{prefix}{index}",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": "AWS/Lambda",
                            "MetricName": metric,
                            "Dimensions": [{"Name": "FunctionName", "Value": function}],
                        },
                        "Period": 86400,
                        "Stat": "Sum",
                    },
                    "ReturnData": True,
                }
            )
    return queries


async def _fetch(aws: Aws, functions: Sequence[str]) -> Mapping[str, Usage]:
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    sums: dict[str, float] = {}
    async for page in aws.pages(
        "NextToken",
        aws.cloudwatch.get_metric_data,
        MetricDataQueries=_queries(functions),
        StartTime=end - timedelta(days=USAGE_DAYS),
        EndTime=end,
    ):
        for result in page.get("MetricDataResults", []):
            key = str(result.get("Id"))
            sums[key] = sums.get(key, 0.0) + sum(result.get("Values", []))
    return {
        function: Usage(USAGE_DAYS, sums.get(f"i{index}", 0.0), sums.get(f"d{index}", 0.0))
        for index, function in enumerate(functions)
    }


class UsagePart(FunctionPart[Usage | None]):
    name: ClassVar[str] = "usage"
    reads = (ApiCall("cloudwatch", "GetMetricData"),)
    permissions = (Permission("cloudwatch:GetMetricData", "*"),)  # no resource-level scoping
    in_before_image = False

    async def read(
        self, ctx: ReadContext, environment: EnvironmentInventory, function: FunctionState
    ) -> Usage | None:
        loader = ctx.batched(self.name, lambda names: _fetch(ctx.aws, names), _FUNCTIONS_PER_CALL)
        return await loader.load(function.name)


USAGE: Final = UsagePart()
