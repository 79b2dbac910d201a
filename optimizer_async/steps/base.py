"""The contract every optimisation keeps (Cloud Custodian's action pattern, grown to own state).

A *part* is one piece of inventory with its reader: what it reads from AWS (declared calls
and IAM permissions), how it is re-read to verify a change, what of it goes into the
before-image, and what must hold before anything that uses it may change (`problem`).
Parts are account-, environment- or function-scoped. Discovery reads a function part for
every function of every environment with one `read_many` call, which a batched part answers
with exact batches (`fetch_batches`), a few at a time: a task per function and part would
cost megabytes at fleet scale. A single function's `read` goes through the run's batch
loaders (`ReadContext.batched`), so concurrent single reads still share calls.

A *step* is one optimisation. It names the part its changes live in (`part`, re-read for
verification), the parts it consults (`uses`), the steps that must succeed first (`after`),
the calls it writes and their permissions; it plans purely from the inventory, applies its
own changes, prices them (`money`) and says how its values read in a report (`render_*`).
The engine decides when a step runs; the step decides how. Nothing outside `steps/` names a
particular step: the registry (`steps/registry.py`) is the only list of them.

A plan file is data, never authority: each step also records what its planning rested on
(`basis`: ARNs, the evidence its guardrails used) and checks a change read back from a plan
file against what it would itself plan (`verify`, strict by default), so `apply` writes
nothing a step would not have planned for that environment.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal, TypeVar

from optimizer_async.aws import pricing
from optimizer_async.aws.batching import BatchLoader, run_each
from optimizer_async.aws.pricing import PriceBook
from optimizer_async.definitions.naming import EnvironmentNames
from optimizer_async.definitions.targets import Targets
from optimizer_async.steps.inventory import (
    EnvironmentInventory,
    FunctionInventory,
    FunctionState,
    PartKey,
)

if TYPE_CHECKING:
    import structlog

    from optimizer_async.aws.gateway import Aws
    from optimizer_async.aws.iam_gate import IamGate
    from optimizer_async.aws.learned import LearnedWait
    from optimizer_async.steps.latest_reads import LatestReads

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
Json = Any
Scope = Literal["account", "environment", "function"]


@dataclass(frozen=True)
class ApiCall:
    service: str  # botocore's service name
    operation: str  # the API's operation name, e.g. GetFunction


@dataclass(frozen=True)
class Permission:
    """An IAM action and the resource it applies to, as an ARN template.

    Placeholders: {partition} {region} {account} {suffix} {function} {log_group} {queue}
    {role} {bucket} {alarm} {secret}. `*` only where AWS requires it.
    """

    action: str
    resource: str


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
class Reliance:
    """Settings of a step that use what one of its `after` steps made (a queue, a permission).

    A rollback that leaves any of these settings in place (refused, or not undone) leaves
    that step's changes in place too, so nothing it keeps points at what it deleted."""

    step: str  # the step whose changes the settings use: one the declaring step runs after
    settings: tuple[str, ...]  # the declaring step's settings (as its changes name them)
    why: str  # what they use it for, read after "may still": "send its failures there"


@dataclass(frozen=True, slots=True)
class StepPlan:
    changes: tuple[Change, ...] = ()
    unchanged: tuple[str, ...] = ()  # settings already at (or tighter than) target
    notes: tuple[str, ...] = ()
    blocked: str | None = None  # a guardrail stopped the change; the reason
    decisions: tuple[Decision, ...] = ()  # what the evidence let the step do
    # Changes held back on their own, each with its reason (never applied); the step's
    # other changes go ahead.
    held: tuple[tuple[Change, str], ...] = ()

    def __add__(self, other: StepPlan) -> StepPlan:
        return StepPlan(
            self.changes + other.changes,
            self.unchanged + other.unchanged,
            self.notes + other.notes,
            self.blocked or other.blocked,
            self.decisions + other.decisions,
            self.held + other.held,
        )


Risk = Literal["none", "adjusted", "skipped", "unknown", "at risk"]
# The worst first: a function's risk is that of its riskiest decision.
RISK_ORDER: Final[tuple[Risk, ...]] = ("at risk", "skipped", "adjusted", "unknown", "none")


def worst(risks: Iterable[Risk]) -> Risk:
    return min(risks, key=RISK_ORDER.index, default="none")


@dataclass(frozen=True, slots=True)
class Decision:
    """What the evidence let a step do with one setting, and why."""

    setting: str
    current: Json
    target: Json
    chosen: Json  # the value to set; None: leave the setting as it is
    risk: Risk
    why: str

    def to_json(self) -> dict[str, Json]:
        return {
            "setting": self.setting,
            "current": self.current,
            "target": self.target,
            "chosen": self.chosen,
            "risk": self.risk,
            "why": self.why,
        }


# saves / adds count in the net; shown is context beside it (the request charge a change
# leaves as it was, the exposure at a concurrency limit, a one-off scan).
Effect = Literal["saves", "adds", "shown"]


@dataclass(frozen=True, slots=True)
class MoneyLine:
    """One line of a step's monthly money: what its changes save, or what they add."""

    label: str  # e.g. "compute", "alarms": lines with one label are summed in reports
    effect: Effect
    monthly_usd: float  # never negative; `effect` says which way it counts
    basis: str | None = None  # what the figure assumes, when it assumes anything
    # The low end where the evidence leaves a range (e.g. CPU-bound work runs longer on
    # less memory); None: the figure is settled.
    low_usd: float | None = None
    inputs: Mapping[str, Json] = field(default_factory=dict)  # the figures it is made of
    source: str | None = None  # where its price came from (page, or the Price List API)
    assumed: bool = False  # it depends on usage the evidence did not have

    @property
    def counts(self) -> bool:
        """Whether it is part of the net (a `shown` line is context)."""
        return self.effect != "shown"

    @property
    def net_usd(self) -> float:
        if not self.counts:
            return 0.0
        return self.monthly_usd if self.effect == "saves" else -self.monthly_usd

    @property
    def net_low_usd(self) -> float:
        """The net at the low end of the range (the same as `net_usd` when settled)."""
        if not self.counts:
            return 0.0
        low = self.monthly_usd if self.low_usd is None else self.low_usd
        return low if self.effect == "saves" else -low

    def to_json(self) -> dict[str, Json]:
        return {
            "label": self.label,
            "effect": self.effect,
            "monthly_usd": round(self.monthly_usd, 2),
            "low_usd": None if self.low_usd is None else round(self.low_usd, 2),
            "basis": self.basis,
            "inputs": dict(self.inputs),
            "source": self.source,
            "assumed": self.assumed,
        }


def to_json(value: Any) -> Json:
    """A part's value as JSON-ready data (dataclasses as dicts, tuples as lists)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(key): to_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(item) for item in value]
    return value


# --- contexts ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReadContext:
    """What a reader may use: the run's AWS gateway, its targets (lookback, budgets), and
    objects shared by every environment's reads (batch loaders, limiters, budgets)."""

    aws: Aws
    targets: Targets = field(default_factory=Targets)
    _shared: dict[str, Any] = field(default_factory=dict)
    _pass: dict[str, Any] = field(default_factory=dict)

    def shared(self, name: str, make: Callable[[], T]) -> T:
        """The run's object called `name`, made on first use."""
        return _made(self._shared, name, make)

    def one_pass(self) -> ReadContext:
        """This context for one pass of reads (a discovery, a re-read): the run's shared
        objects, and a fresh `per_pass` scratch that goes when the pass does."""
        return dataclasses.replace(self, _pass={})

    def per_pass(self, name: str, make: Callable[[], T]) -> T:
        """The pass's object called `name`, made on first use: what parts read in one pass
        may share (the metrics both evidence parts need), and must not outlive it."""
        return _made(self._pass, name, make)

    def batched(
        self,
        name: str,
        fetch: Callable[[Sequence[K]], Awaitable[Mapping[K, V]]],
        max_batch: int,
        **timing: float,
    ) -> BatchLoader[K, V]:
        """The run's loader called `name`: every environment's reads of it join the same
        batches. `timing`: BatchLoader's quiet_s / max_wait_s."""
        return self.shared(name, lambda: BatchLoader(fetch, max_batch, **timing))


@dataclass(frozen=True)
class PlanContext:
    """Everything a step may consult while planning (no I/O)."""

    environment: EnvironmentInventory
    targets: Targets
    # Pricing only: the prices (default: the dated table for the environment's region) and
    # the account-scoped parts the run read (the account's concurrency, for exposure).
    price_book: PriceBook | None = None
    account: Mapping[str, Any] = field(default_factory=dict)
    names: EnvironmentNames = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", EnvironmentNames(self.environment.suffix))

    @property
    def prices(self) -> PriceBook:
        return self.price_book or pricing.table(self.environment.region)


@dataclass(frozen=True)
class FleetContext:
    """What fleet-wide guardrails may consult: the account-scoped parts."""

    parts: Mapping[str, Any]

    def part(self, key: PartKey[T]) -> T | None:
        """The account part's value; None when the run did not read it."""
        value: T | None = self.parts.get(key.name)
        return value


@dataclass(frozen=True)
class VerifyContext:
    """One change read back from a plan file, with what the plan says of its environment:
    all `Step.verify` may consult (no I/O). Every field comes from the file as well, so a
    step checks names and ARNs against the naming rules before it trusts them."""

    suffix: str
    account_id: str
    region: str
    targets: Targets
    functions: Mapping[str, Mapping[str, Json]]  # the recorded function list, by name
    function: str | None  # the change's function; None for an environment step's change
    basis: Json  # what the plan recorded for this step (and function): `Step.basis`
    names: EnvironmentNames = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", EnvironmentNames(self.suffix))


def _made(objects: dict[str, Any], name: str, make: Callable[[], T]) -> T:
    """`objects[name]`, made on first use."""
    if name not in objects:
        objects[name] = make()
    value: T = objects[name]
    return value


@dataclass(frozen=True)
class ApplyContext:
    aws: Aws
    plan: PlanContext
    log: structlog.stdlib.BoundLogger
    iam_gate: IamGate
    update_wait: LearnedWait  # how long the run's function updates take to settle
    latest: LatestReads  # a function read after its last write: verification's re-read


# --- parts -------------------------------------------------------------------------------


class Part(PartKey[T], ABC):
    """A piece of inventory and its reader. Subclass one of the three scopes below."""

    name: ClassVar[str]
    scope: ClassVar[Scope]
    reads: ClassVar[tuple[ApiCall, ...]]
    permissions: ClassVar[tuple[Permission, ...]]
    in_before_image: ClassVar[bool] = True  # False for evidence, which nothing restores

    def needed(self, targets: Targets) -> bool:
        """Whether this run needs the part at all (reading it may be pointless)."""
        return True

    def problem(self, value: T) -> str | None:
        """Why no step that uses this part may change anything in the environment, if so."""
        return None

    def image(self, value: T) -> Json:
        """The part's fragment of the before-image: what undoing a change would need."""
        return to_json(value)

    def report(self, value: T) -> Json:
        """What reports show of the part (JSON, under its name); None: nothing."""
        return None

    def columns(self, value: T) -> Mapping[str, str] | None:
        """Table cells for the part, one row per function or environment; None: no table."""
        return None


class AccountPart(Part[T]):
    """Read once per run, for the account and region (e.g. its concurrency limits)."""

    scope: ClassVar[Scope] = "account"

    @abstractmethod
    async def read(self, ctx: ReadContext) -> T: ...


class EnvironmentPart(Part[T]):
    """Read once per environment (e.g. its dead-letter queue)."""

    scope: ClassVar[Scope] = "environment"

    @abstractmethod
    async def read(self, ctx: ReadContext, environment: EnvironmentInventory) -> T:
        """Read from the environment's core: its names and its functions' states."""

    async def refresh(self, ctx: ReadContext, environment: EnvironmentInventory) -> T:
        """Re-read after a change, to verify it (by default: read again)."""
        return await self.read(ctx, environment)


# (environment, function) pairs a function part reads at once: every function of the fleet.
FunctionItems = Sequence[tuple[EnvironmentInventory, FunctionState]]
# A default bulk read's single reads at once: enough to fill a loader's batches, few
# enough that thousands of functions do not wait as thousands of tasks.
_READS_AT_ONCE: Final = 100


class FunctionPart(Part[T]):
    """Read once per function (e.g. its log group); in bulk, by discovery (`read_many`)."""

    scope: ClassVar[Scope] = "function"
    # Functions per early read; 0 for none. Discovery reads the function parts once every
    # environment's core is read, for whole batches; a part with an early batch also gets
    # each whole batch of functions as their cores arrive (`read_early`), so its batched
    # calls run while the other cores are still being read.
    early_batch: ClassVar[int] = 0

    @abstractmethod
    async def read(
        self, ctx: ReadContext, environment: EnvironmentInventory, function: FunctionState
    ) -> T: ...

    async def read_early(self, ctx: ReadContext, items: FunctionItems) -> None:
        """Start the pass's reads of one early batch (`early_batch` functions), kept where
        `read_many` finds them (it reads nothing twice); a failure is kept for `read_many`
        to report, never raised here."""

    async def refresh(
        self, ctx: ReadContext, environment: EnvironmentInventory, function: FunctionState
    ) -> T:
        """Re-read after a change, to verify it (by default: read again)."""
        return await self.read(ctx, environment, function)

    async def read_many(
        self, ctx: ReadContext, items: FunctionItems
    ) -> Mapping[str, T | Exception]:
        """The part of many functions (of many environments), by function name; a function
        whose read failed maps to the error (its environment fails, not the fleet).

        By default each function is read on its own, a hundred at a time. A part that reads
        in batches overrides this with exact batches (`fetch_batches`)."""
        return await _each(items, self.read, ctx)

    async def refresh_many(
        self, ctx: ReadContext, items: FunctionItems
    ) -> Mapping[str, T | Exception]:
        """`read_many` for verification: `read_many` unless `refresh` is overridden."""
        if type(self).refresh is FunctionPart.refresh:
            return await self.read_many(ctx, items)
        return await _each(items, self.refresh, ctx)


async def _each(
    items: FunctionItems,
    read: Callable[[ReadContext, EnvironmentInventory, FunctionState], Awaitable[T]],
    ctx: ReadContext,
) -> dict[str, T | Exception]:
    """Call a one-function reader for every function, `_READS_AT_ONCE` at a time."""
    found: dict[str, T | Exception] = {}

    async def one(item: tuple[EnvironmentInventory, FunctionState]) -> None:
        environment, function = item
        try:
            found[function.name] = await read(ctx, environment, function)
        except Exception as error:
            found[function.name] = error

    await run_each(items, one, _READS_AT_ONCE)
    return found


# --- steps -------------------------------------------------------------------------------


class Step(ABC):
    name: ClassVar[str]
    scope: ClassVar[Scope]
    part: ClassVar[Part[Any]]  # where the step's changes live: re-read to verify them
    uses: ClassVar[tuple[Part[Any], ...]] = ()  # other parts it consults while planning
    after: ClassVar[tuple[str, ...]] = ()  # steps that must succeed first (same run)
    # Steps of the same function to let finish first when the run has them, whatever their
    # outcome: an order that saves reads, not a prerequisite (selection does not need them).
    after_if_run: ClassVar[tuple[str, ...]] = ()
    reads: ClassVar[tuple[ApiCall, ...]] = ()  # reads its apply makes beyond its parts'
    # Its changes are made under the function's RevisionId (an optimistic lock): a plan
    # file's are refused once the RevisionId moved since the plan.
    revision_locked: ClassVar[bool] = False
    writes: ClassVar[tuple[ApiCall, ...]]
    permissions: ClassVar[tuple[Permission, ...]]

    @property
    def parts(self) -> tuple[Part[Any], ...]:
        return (self.part, *self.uses)

    def declared_calls(self) -> frozenset[ApiCall]:
        """Every AWS call the step may make, its parts' reads included."""
        calls = {*self.reads, *self.writes}
        for part in self.parts:
            calls.update(part.reads)
        return frozenset(calls)

    def declared_permissions(self) -> frozenset[Permission]:
        permissions = set(self.permissions)
        for part in self.parts:
            permissions.update(part.permissions)
        return frozenset(permissions)

    def same(self, setting: str, left: Json, right: Json) -> bool:
        """Whether two values of a setting are the same (rollback compares live with planned)."""
        return bool(left == right)

    # Which of its settings use which `after` step's changes: what a rollback keeps while
    # they stay (see `Reliance`).
    relies_on: ClassVar[tuple[Reliance, ...]] = ()

    def serves(self, change: Change, function: FunctionInventory | None) -> bool:
        """Whether this change of the step is one the function (None: the environment) uses
        when a setting of it relies on this step; by default every change of the step is."""
        return True

    def guard_fleet(self, fleet: FleetContext, plans: Sequence[StepPlan]) -> list[StepPlan]:
        """Fleet-wide guardrail over this step's plans, in the fleet's order (every function
        of every environment, or every environment); may block some. Default: none."""
        return list(plans)

    def render_setting(self, setting: str) -> str:
        """A setting's name as a report shows it."""
        return setting

    def render_value(self, setting: str, value: Json) -> str:
        """A before/after value, short enough for a table cell."""
        return render_value(value)

    def review(self, change: Change) -> tuple[str, ...]:
        """What a reviewer must read to judge the change whole, where the table's cells
        shorten it (Markdown lines; () when the cells say it all). By default: an ARN the
        cells cut to its name, written out, since its account and region matter."""
        lines: list[str] = []
        for label, value in (("before", change.before), ("after", change.after)):
            if isinstance(value, str) and self.render_value(change.setting, value) != value:
                lines.append(f"- {label}: `{value}`")
        return tuple(lines)

    def verify(self, ctx: VerifyContext, change: Change) -> str | None:
        """Why `change`, read from a plan file, is not one this step would plan for the
        environment (None: it is). A plan file sits in CI artifacts and on disks between
        review and apply, and apply holds write permissions: so by default a step refuses
        what it cannot check, and each registered step checks its resources, settings and
        values against the names, the targets and its recorded `basis`."""
        return f"{self.name} does not verify changes read from a plan file"


class FunctionStep(Step):
    """A per-function optimisation."""

    scope: ClassVar[Scope] = "function"

    @abstractmethod
    def plan(self, ctx: PlanContext, function: FunctionInventory) -> StepPlan: ...

    @abstractmethod
    async def apply(
        self, ctx: ApplyContext, function: FunctionInventory, changes: tuple[Change, ...]
    ) -> None: ...

    def money(
        self, ctx: PlanContext, function: FunctionInventory, changes: Sequence[Change]
    ) -> tuple[MoneyLine, ...]:
        """What the given changes to the function save or add per month."""
        return ()

    @abstractmethod
    def current(self, ctx: PlanContext, function: FunctionInventory, change: Change) -> Json:
        """The live value of the change's setting, spelt as the step's changes spell values."""

    def basis(self, ctx: PlanContext, function: FunctionInventory) -> Json:
        """What a plan file records beside the function's changes for `verify` to re-check
        them without AWS (the ARNs they name, the evidence the guardrails used); never a
        secret. None: the names and targets suffice."""
        return None

    async def undo(
        self,
        ctx: ApplyContext,
        function: FunctionInventory,
        changes: tuple[Change, ...],
        image: Mapping[str, Json],
    ) -> None:
        """Put settings back: each change's `after` is the value before the run. `apply`
        makes a setting equal `after`, so by default undo is apply; `image` is the function's
        before-image entry, for steps whose changes name less than they restore."""
        await self.apply(ctx, function, changes)


class EnvironmentStep(Step):
    """A per-environment optimisation (shared by the environment's functions)."""

    scope: ClassVar[Scope] = "environment"

    @abstractmethod
    def plan(self, ctx: PlanContext) -> StepPlan: ...

    @abstractmethod
    async def apply(self, ctx: ApplyContext, changes: tuple[Change, ...]) -> None: ...

    def money(self, ctx: PlanContext, changes: Sequence[Change]) -> tuple[MoneyLine, ...]:
        """What the given changes to the environment save or add per month."""
        return ()

    @abstractmethod
    def current(self, ctx: PlanContext, change: Change) -> Json:
        """The live value of the change's setting, spelt as the step's changes spell values."""

    def basis(self, ctx: PlanContext) -> Json:
        """What a plan file records beside the environment's changes (see FunctionStep.basis)."""
        return None

    async def undo(
        self, ctx: ApplyContext, changes: tuple[Change, ...], image: Mapping[str, Json]
    ) -> None:
        """Put settings back (see FunctionStep.undo); `image` is the environment's."""
        await self.apply(ctx, changes)


def render_value(value: Json) -> str:
    """The default rendering: `-` for nothing, `k=v` for mappings, ARNs by their name."""
    if value is None:
        return "-"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    text = str(value)
    if text.startswith("arn:"):
        parts = text.split(":", 5)
        if len(parts) < 6:
            return text
        return parts[5] if ":" in parts[5] else f"{parts[2]}:{parts[5]}"
    return text
