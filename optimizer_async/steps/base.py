"""What every optimisation step declares and does (Cloud Custodian's action pattern).

A step declares the AWS calls it reads and writes and the IAM permissions it needs (the
policy generator and the sandbox's call counts use these), plans purely from the inventory,
and applies its own changes. The engine decides when a step runs; the step decides how.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import structlog

from optimizer_async.aws.gateway import Aws
from optimizer_async.aws.iam_gate import IamGate
from optimizer_async.inventory import EnvironmentInventory, FunctionInventory
from optimizer_async.naming import EnvironmentNames
from optimizer_async.targets import Targets

# Inventory parts a step reads; verification re-reads exactly the parts whose steps changed.
Part = Literal["function", "log_group", "alarms", "queue", "role_policies", "bucket"]
Json = Any


@dataclass(frozen=True)
class ApiCall:
    service: str
    operation: str


@dataclass(frozen=True)
class Permission:
    """An IAM action and the resource it applies to, as an ARN template.

    Placeholders: {partition} {region} {account} {suffix} {function} {log_group} {queue}
    {role} {bucket} {alarm}. `*` only where AWS requires it.
    """

    action: str
    resource: str


@dataclass(frozen=True)
class Change:
    """One setting of one resource, from `before` to `after` (JSON values, no secrets)."""

    step: str
    resource: str
    setting: str
    before: Json
    after: Json

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.step, self.resource, self.setting)

    def to_json(self) -> dict[str, Json]:
        return {
            "step": self.step,
            "resource": self.resource,
            "setting": self.setting,
            "before": self.before,
            "after": self.after,
        }


@dataclass(frozen=True)
class StepPlan:
    changes: tuple[Change, ...] = ()
    unchanged: tuple[str, ...] = ()  # settings already at (or tighter than) target
    notes: tuple[str, ...] = ()
    blocked: str | None = None  # a guardrail stopped the change; the reason

    def __add__(self, other: StepPlan) -> StepPlan:
        return StepPlan(
            self.changes + other.changes,
            self.unchanged + other.unchanged,
            self.notes + other.notes,
            self.blocked or other.blocked,
        )


@dataclass(frozen=True)
class PlanContext:
    """Everything a step may consult while planning (no I/O)."""

    environment: EnvironmentInventory
    targets: Targets
    names: EnvironmentNames = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", EnvironmentNames(self.environment.suffix))

    @property
    def queue_arn(self) -> str:
        env = self.environment
        if env.queue is not None:
            return env.queue.arn
        return f"arn:aws:sqs:{env.region}:{env.account_id}:{self.names.dead_letter_queue}"

    @property
    def secret_arns(self) -> dict[str, str]:
        """Secret ARNs by name (discovery guarantees both exist before anything is planned)."""
        return {name: arn for name, arn in self.environment.secret_arns.items() if arn}


@dataclass(frozen=True)
class ApplyContext:
    aws: Aws
    plan: PlanContext
    log: structlog.stdlib.BoundLogger
    iam_gate: IamGate = field(default_factory=IamGate)


class Step(ABC):
    name: ClassVar[str]
    part: ClassVar[Part]
    reads: ClassVar[tuple[ApiCall, ...]]
    writes: ClassVar[tuple[ApiCall, ...]]
    permissions: ClassVar[tuple[Permission, ...]]


class FunctionStep(Step):
    """A per-function optimisation."""

    after: ClassVar[tuple[str, ...]] = ()  # environment steps that must succeed first

    @abstractmethod
    def plan(self, ctx: PlanContext, function: FunctionInventory) -> StepPlan: ...

    @abstractmethod
    async def apply(
        self, ctx: ApplyContext, function: FunctionInventory, changes: tuple[Change, ...]
    ) -> None: ...


class EnvironmentStep(Step):
    """A per-environment optimisation (shared by the environment's functions)."""

    @abstractmethod
    def plan(self, ctx: PlanContext) -> StepPlan: ...

    @abstractmethod
    async def apply(self, ctx: ApplyContext, changes: tuple[Change, ...]) -> None: ...
