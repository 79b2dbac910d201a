"""The optimisation steps, one module each, and their registry.

Order matters only where a step names another in `after`; the engine runs the rest
concurrently. Adding an optimisation is adding a module and a line here.
"""

from __future__ import annotations

from typing import Final

from optimizer_async.steps.alarms import Alarms
from optimizer_async.steps.base import EnvironmentStep, FunctionStep, Step
from optimizer_async.steps.dead_letter_queue import DeadLetterQueue
from optimizer_async.steps.deployment_bucket import DeploymentBucket
from optimizer_async.steps.function_configuration import FunctionConfiguration
from optimizer_async.steps.log_retention import LogRetention
from optimizer_async.steps.reserved_concurrency import ReservedConcurrency
from optimizer_async.steps.role_policy import RolePolicy

ENVIRONMENT_STEPS: Final[tuple[EnvironmentStep, ...]] = (
    DeadLetterQueue(),
    RolePolicy(),
    DeploymentBucket(),
)
FUNCTION_STEPS: Final[tuple[FunctionStep, ...]] = (
    FunctionConfiguration(),
    ReservedConcurrency(),
    LogRetention(),
    Alarms(),
)
REGISTRY: Final[dict[str, Step]] = {
    step.name: step for step in (*ENVIRONMENT_STEPS, *FUNCTION_STEPS)
}
