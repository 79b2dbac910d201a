"""Monthly savings of a plan, from 30 days of CloudWatch usage.

Compute: the GB-seconds no longer allocated, at the architecture's price, assuming each
invocation lasts as long as before (Lambda bills allocated memory for the billed duration;
a CPU-bound function may run longer with less memory, which the guardrails will measure).
Added: the alarms the optimizer creates (billed per metric: two for the error-rate math,
one for duration). The full model (logs, X-Ray, Price List API) is a separate issue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from optimizer_async import naming, pricing
from optimizer_async.inventory import FunctionInventory
from optimizer_async.steps.base import Change
from optimizer_async.steps.function_configuration import MEMORY

ERROR_RATE_ALARM_METRICS: Final = 2  # Errors and Invocations; the expression is free
DURATION_ALARM_METRICS: Final = 1


@dataclass(frozen=True)
class Savings:
    compute_usd: float = 0.0
    alarms_usd: float = 0.0  # a cost, so it reduces the net

    @property
    def net_usd(self) -> float:
        return self.compute_usd - self.alarms_usd

    def __add__(self, other: Savings) -> Savings:
        return Savings(self.compute_usd + other.compute_usd, self.alarms_usd + other.alarms_usd)


def function_savings(function: FunctionInventory, changes: list[Change]) -> Savings:
    """What the given changes to one function save per month."""
    compute = 0.0
    usage = function.usage
    for change in changes:
        if change.setting == MEMORY and usage is not None and usage.days > 0:
            freed_gb = (int(change.before) - int(change.after)) / 1024.0
            seconds_per_month = usage.duration_ms / 1000.0 * pricing.DAYS_PER_MONTH / usage.days
            compute += (
                freed_gb * seconds_per_month * pricing.gb_second_price(function.state.architecture)
            )
    error_rate = naming.error_rate_alarm_name(function.name)
    metrics = sum(
        ERROR_RATE_ALARM_METRICS if c.resource == error_rate else DURATION_ALARM_METRICS
        for c in changes
        if c.step == "alarms" and c.before is None
    )
    return Savings(compute, metrics * pricing.CLOUDWATCH_ALARM_METRIC_MONTH_USD)
