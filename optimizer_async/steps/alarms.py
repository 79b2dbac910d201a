"""Two alarms per function: error rate above 1 % and duration above 20 s.

The error rate is metric math over Errors and Invocations, guarded against division by
zero; missing data (no traffic) is not breaching. An existing alarm is rewritten only when
its definition differs from the target, compared field by field after normalising.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Final, cast

from optimizer_async.aws.batching import fetch_batches
from optimizer_async.definitions import naming
from optimizer_async.definitions.targets import AlarmTargets
from optimizer_async.steps import monthly
from optimizer_async.steps.base import (
    ApiCall,
    ApplyContext,
    Change,
    FunctionItems,
    FunctionPart,
    FunctionStep,
    Json,
    MoneyLine,
    Permission,
    PlanContext,
    ReadContext,
    StepPlan,
    VerifyContext,
    render_value,
)
from optimizer_async.steps.evidence import METRICS, UsageMetrics
from optimizer_async.steps.inventory import EnvironmentInventory, FunctionInventory, FunctionState
from optimizer_async.steps.verifying import not_planned

if TYPE_CHECKING:
    from types_aiobotocore_cloudwatch.type_defs import (
        MetricStatTypeDef,
        PutMetricAlarmInputTypeDef,
        TagTypeDef,
    )

    from optimizer_async.aws.gateway import Aws

ERROR_RATE_EXPRESSION: Final = "IF(invocations > 0, 100 * errors / invocations, 0)"
ERROR_RATE_ALARM_METRICS: Final = 2  # Errors and Invocations; the expression is free
DURATION_ALARM_METRICS: Final = 1
_ALARM_ARN: Final = "arn:{partition}:cloudwatch:{region}:{account}:alarm:{alarm}"
_FUNCTIONS_PER_CALL: Final = 50  # DescribeAlarms takes 100 names, two per function
_OPERATORS: Final = {
    "GreaterThanThreshold": ">",
    "GreaterThanOrEqualToThreshold": ">=",
    "LessThanThreshold": "<",
    "LessThanOrEqualToThreshold": "<=",
}

AlarmsByName = Mapping[str, Mapping[str, Any] | None]  # alarm name -> DescribeAlarms entry or None


def _metric(function: str, name: str, period: int, stat: str) -> MetricStatTypeDef:
    return {
        "Metric": {
            "Namespace": "AWS/Lambda",
            "MetricName": name,
            "Dimensions": [{"Name": "FunctionName", "Value": function}],
        },
        "Period": period,
        "Stat": stat,
    }


def error_rate_alarm(function: str, targets: AlarmTargets) -> PutMetricAlarmInputTypeDef:
    """PutMetricAlarm arguments for the error-rate alarm."""
    period = targets.period_s
    return {
        "AlarmName": naming.error_rate_alarm_name(function),
        "AlarmDescription": (
            f"Error rate of {function} above {targets.error_rate_threshold_percent:g} %"
        ),
        "Metrics": [
            {
                "Id": "errors",
                "MetricStat": _metric(function, "Errors", period, "Sum"),
                "ReturnData": False,
            },
            {
                "Id": "invocations",
                "MetricStat": _metric(function, "Invocations", period, "Sum"),
                "ReturnData": False,
            },
            {
                "Id": "error_rate",
                "Expression": ERROR_RATE_EXPRESSION,
                "Label": "Error rate (%)",
                "ReturnData": True,
            },
        ],
        "ComparisonOperator": "GreaterThanThreshold",
        "Threshold": targets.error_rate_threshold_percent,
        "EvaluationPeriods": targets.evaluation_periods,
        "TreatMissingData": "notBreaching",
    }


def duration_alarm(function: str, targets: AlarmTargets) -> PutMetricAlarmInputTypeDef:
    """PutMetricAlarm arguments for the duration alarm (slowest invocation of the period)."""
    return {
        "AlarmName": naming.duration_alarm_name(function),
        "AlarmDescription": f"Duration of {function} above {targets.duration_threshold_ms:g} ms",
        "Namespace": "AWS/Lambda",
        "MetricName": "Duration",
        "Dimensions": [{"Name": "FunctionName", "Value": function}],
        "Statistic": "Maximum",
        "Period": targets.period_s,
        "ComparisonOperator": "GreaterThanThreshold",
        "Threshold": targets.duration_threshold_ms,
        "EvaluationPeriods": targets.evaluation_periods,
        "TreatMissingData": "notBreaching",
    }


def _dimensions(value: Any) -> list[tuple[str, str]]:
    return sorted((str(d["Name"]), str(d["Value"])) for d in value or [])


def _metric_query(query: Mapping[str, Any]) -> tuple[Any, ...]:
    stat = query.get("MetricStat")
    stat_key: tuple[Any, ...] = ()
    if stat:
        metric = stat["Metric"]
        stat_key = (
            metric.get("Namespace"),
            metric.get("MetricName"),
            _dimensions(metric.get("Dimensions")),
            int(stat.get("Period", 0)),
            stat.get("Stat"),
        )
    return (query["Id"], query.get("Expression"), bool(query.get("ReturnData", True)), stat_key)


def definition(alarm: Mapping[str, Any]) -> dict[str, Any]:
    """The fields that decide what an alarm watches, normalised so that a PutMetricAlarm
    request and a DescribeAlarms answer for the same alarm compare equal."""
    key: dict[str, Any] = {
        "comparison": alarm.get("ComparisonOperator"),
        "threshold": float(alarm.get("Threshold", 0.0)),
        "evaluation_periods": int(alarm.get("EvaluationPeriods", 0)),
        "treat_missing_data": alarm.get("TreatMissingData", "missing"),
    }
    if alarm.get("Metrics"):
        key["metrics"] = sorted(_metric_query(query) for query in alarm["Metrics"])
    else:
        key["metric"] = (
            alarm.get("Namespace"),
            alarm.get("MetricName"),
            _dimensions(alarm.get("Dimensions")),
            alarm.get("Statistic") or alarm.get("ExtendedStatistic"),
            int(alarm.get("Period", 0)),
        )
    return key


def summary(alarm: Mapping[str, Any]) -> dict[str, Any]:
    """What the report shows of an alarm."""
    watched = "error rate %" if alarm.get("Metrics") else alarm.get("MetricName")
    return {
        "watches": watched,
        "comparison": alarm.get("ComparisonOperator"),
        "threshold": alarm.get("Threshold"),
    }


async def _fetch(aws: Aws, functions: Sequence[str]) -> Mapping[str, AlarmsByName]:
    wanted = {
        function: (naming.error_rate_alarm_name(function), naming.duration_alarm_name(function))
        for function in functions
    }
    names = [name for pair in wanted.values() for name in pair]
    found: dict[str, Mapping[str, Any]] = {}
    async for page in aws.pages(
        "NextToken", aws.cloudwatch.describe_alarms, AlarmNames=names, MaxRecords=100
    ):
        for alarm in page.get("MetricAlarms", []):
            found[str(alarm.get("AlarmName"))] = cast(Mapping[str, Any], alarm)
    return {function: {name: found.get(name) for name in pair} for function, pair in wanted.items()}


class AlarmsPart(FunctionPart[AlarmsByName]):
    """The function's two alarms by name, None where missing."""

    name: ClassVar[str] = "alarms"
    reads = (ApiCall("cloudwatch", "DescribeAlarms"),)
    permissions = (Permission("cloudwatch:DescribeAlarms", _ALARM_ARN),)

    async def read(
        self, ctx: ReadContext, environment: EnvironmentInventory, function: FunctionState
    ) -> AlarmsByName:
        loader = ctx.batched(self.name, lambda names: _fetch(ctx.aws, names), _FUNCTIONS_PER_CALL)
        return await loader.load(function.name) or {}

    async def read_many(
        self, ctx: ReadContext, items: FunctionItems
    ) -> Mapping[str, AlarmsByName | Exception]:
        """One DescribeAlarms per 50 functions (100 alarm names)."""
        found = await fetch_batches(
            (function.name for _, function in items),
            _FUNCTIONS_PER_CALL,
            lambda names: _fetch(ctx.aws, names),
        )
        return {function.name: found.get(function.name) or {} for _, function in items}


ALARMS: Final = AlarmsPart()


class Alarms(FunctionStep):
    name: ClassVar[str] = "alarms"
    part = ALARMS
    uses = (METRICS,)
    writes = (
        ApiCall("cloudwatch", "PutMetricAlarm"),
        ApiCall("cloudwatch", "DeleteAlarms"),  # rollback: alarms the run created
    )
    permissions = (
        Permission("cloudwatch:PutMetricAlarm", _ALARM_ARN),
        Permission("cloudwatch:TagResource", _ALARM_ARN),
        Permission("cloudwatch:DeleteAlarms", _ALARM_ARN),
    )

    def desired(self, ctx: PlanContext, function: str) -> list[PutMetricAlarmInputTypeDef]:
        alarms = ctx.targets.alarms
        return [error_rate_alarm(function, alarms), duration_alarm(function, alarms)]

    def plan(self, ctx: PlanContext, function: FunctionInventory) -> StepPlan:
        changes: list[Change] = []
        unchanged: list[str] = []
        current_alarms = function.part(ALARMS)
        for wanted in self.desired(ctx, function.name):
            name = wanted["AlarmName"]
            current = current_alarms.get(name)
            if current is not None and definition(current) == definition(wanted):
                unchanged.append(name)
                continue
            before = None if current is None else summary(current)
            changes.append(Change(self.name, name, "MetricAlarm", before, summary(wanted)))
        notes = firing_at_once(function.part(METRICS), ctx.targets.alarms)
        return StepPlan(tuple(changes), tuple(unchanged), notes)

    async def apply(
        self, ctx: ApplyContext, function: FunctionInventory, changes: tuple[Change, ...]
    ) -> None:
        wanted = {alarm["AlarmName"]: alarm for alarm in self.desired(ctx.plan, function.name)}
        tags: list[TagTypeDef] = [
            {"Key": k, "Value": v} for k, v in sorted(ctx.plan.names.optimizer_tags.items())
        ]
        for change in changes:
            if change.after is None:
                await ctx.aws.cloudwatch.delete_alarms(AlarmNames=[change.resource])
                continue
            alarm: PutMetricAlarmInputTypeDef = {**wanted[change.resource], "Tags": tags}
            await ctx.aws.cloudwatch.put_metric_alarm(**alarm)

    def verify(self, ctx: VerifyContext, change: Change) -> str | None:
        """One of the function's two alarms, defined as the targets define it (apply writes
        the targets' definition; the summary must say what it writes)."""
        assert ctx.function is not None  # plan_check hands a function step its function
        function, alarms = ctx.function, ctx.targets.alarms
        defined = (error_rate_alarm(function, alarms), duration_alarm(function, alarms))
        wanted = {alarm["AlarmName"]: alarm for alarm in defined}
        if change.resource not in wanted:
            return f"{change.resource!r} is not an alarm of {ctx.function} ({', '.join(wanted)})"
        if change.setting != "MetricAlarm":
            return f"{change.setting} is not a setting {self.name} writes"
        return not_planned(change, change.before, summary(wanted[change.resource]))

    def current(self, ctx: PlanContext, function: FunctionInventory, change: Change) -> Any:
        alarm = function.part(ALARMS).get(change.resource)
        return None if alarm is None else summary(alarm)

    async def undo(
        self,
        ctx: ApplyContext,
        function: FunctionInventory,
        changes: tuple[Change, ...],
        image: Mapping[str, Json],
    ) -> None:
        """Delete the alarms the run created; put back, as they were, those it rewrote."""
        before: Mapping[str, Any] = image.get(ALARMS.name) or {}
        for change in changes:
            old = before.get(change.resource)
            if change.after is None or old is None:
                await ctx.aws.cloudwatch.delete_alarms(AlarmNames=[change.resource])
            else:
                await ctx.aws.cloudwatch.put_metric_alarm(**restorable(old))

    def money(
        self, ctx: PlanContext, function: FunctionInventory, changes: Sequence[Change]
    ) -> tuple[MoneyLine, ...]:
        """New alarms are billed per metric they watch (two for the error-rate math)."""
        error_rate = naming.error_rate_alarm_name(function.name)
        metrics = sum(
            ERROR_RATE_ALARM_METRICS if c.resource == error_rate else DURATION_ALARM_METRICS
            for c in changes
            if c.before is None
        )
        return (monthly.alarms(metrics, ctx.prices),) if metrics else ()

    def render_value(self, setting: str, value: Json) -> str:
        if isinstance(value, Mapping) and {"watches", "comparison", "threshold"} <= set(value):
            operator = _OPERATORS.get(str(value["comparison"]), str(value["comparison"]))
            return f"{value['watches']} {operator} {value['threshold']:g}"
        return render_value(value)


def firing_at_once(metrics: UsageMetrics, targets: AlarmTargets) -> tuple[str, ...]:
    """An alarm whose threshold today's traffic already breaches fires the moment it exists."""
    notes: list[str] = []
    days = metrics.lookback_days
    rate, limit = metrics.error_rate_percent, targets.error_rate_threshold_percent
    if rate > limit:
        notes.append(
            f"the error-rate alarm will fire at once: {rate:.2f} % of invocations failed in the "
            f"last {days} days (threshold {limit:g} %)"
        )
    p99, highest = metrics.duration_p99_ms, metrics.duration_max_ms
    threshold = targets.duration_threshold_ms
    if p99 is not None and p99 > threshold:
        notes.append(
            f"the duration alarm will fire at once: p99 {p99:,.0f} ms in the last {days} days "
            f"(threshold {threshold:,.0f} ms)"
        )
    elif highest is not None and highest > threshold:
        notes.append(
            f"the duration alarm will fire on the slowest invocations: maximum {highest:,.0f} ms "
            f"in the last {days} days (threshold {threshold:,.0f} ms)"
        )
    return tuple(notes)


# What PutMetricAlarm takes back from a DescribeAlarms entry (the rest is AWS's own state).
_DEFINITION_FIELDS: Final = (
    "AlarmName", "AlarmDescription", "ActionsEnabled", "OKActions", "AlarmActions",
    "InsufficientDataActions", "MetricName", "Namespace", "Statistic", "ExtendedStatistic",
    "Dimensions", "Period", "Unit", "EvaluationPeriods", "DatapointsToAlarm", "Threshold",
    "ComparisonOperator", "TreatMissingData", "EvaluateLowSampleCountPercentile", "Metrics",
    "ThresholdMetricId",
)  # fmt: skip


def restorable(alarm: Mapping[str, Any]) -> PutMetricAlarmInputTypeDef:
    """PutMetricAlarm arguments that recreate a described alarm's definition."""
    return cast(
        "PutMetricAlarmInputTypeDef",
        {key: alarm[key] for key in _DEFINITION_FIELDS if alarm.get(key) not in (None, [])},
    )
