"""What happened to each planned change: the engine fills these, the report renders them."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from optimizer_async.money.costs import Money
from optimizer_async.steps.base import Change, Decision, Json, Risk, worst

ChangeStatus = Literal["planned", "applied", "failed", "blocked"]
Status = Literal["unchanged", "planned", "changed", "failed", "held"]
Facts = tuple[dict[str, Json], dict[str, str]]  # what the parts report; the table's cells

# What a run did, as a whole: the report's `status`, its record's (`runs`), the service's
# `lambda_optimizer_runs_total{status}`. Values that predate this list keep their names
# ("planned", "converged") so that scripts reading reports go on working.
RunStatus = Literal[
    "planned",  # a dry run: every environment planned (or already at its targets)
    "planned_with_failures",  # a dry run in which some environment could not be planned
    "converged",  # applied: every change written and verified, none failed
    "partly_applied",  # some changes written and verified, others failed or were refused
    "failed",  # nothing written and verified; something failed
    "stopped",  # SIGINT / SIGTERM stopped it part way
    "rolled_back",  # a rollback that put back everything it was asked to
    "held",  # every environment was held by another run: nothing was done
    "nothing_to_do",  # everything was already at its targets (or already put back)
]
# What only `runs` says of a record: still under way, or its holder died part way; and a
# run that a later rollback undid shows as `rolled_back`.
RecordStatus = RunStatus | Literal["running", "interrupted"]
# The statuses that exit 1: something asked for was not done.
FAILING: Final[frozenset[str]] = frozenset(
    {"planned_with_failures", "partly_applied", "failed", "held"}
)
# How the headline and `runs` say each status to people.
STATUS_TEXT: Final[Mapping[str, str]] = {
    "planned": "dry run",
    "planned_with_failures": "dry run, planned with failures",
    "converged": "applied",
    "partly_applied": "partly applied",
    "failed": "failed",
    "stopped": "stopped",
    "rolled_back": "rolled back",
    "held": "held by another run",
    "nothing_to_do": "nothing to do",
    "running": "running",
    "interrupted": "interrupted",
}


def status_text(status: str) -> str:
    """A status as people read it (one unknown to this version: as it is written)."""
    return STATUS_TEXT.get(status, status.replace("_", " "))


def run_status(
    statuses: Collection[str],
    stopped: bool,
    *,
    dry_run: bool = False,
    applied: bool = False,
    rollback: bool = False,
) -> RunStatus:
    """A run's status from its environments' statuses; `applied`: some change of it was
    written and verified (what tells partly applied from failed); `rollback`: it put
    back a recorded run (what it converged to is the before-images: rolled back)."""
    if stopped:
        return "stopped"
    if statuses and all(status == "held" for status in statuses):
        return "held"
    if "failed" in statuses:
        if dry_run:
            judged = set(statuses) - {"failed", "held"}
            return "planned_with_failures" if judged else "failed"
        return "partly_applied" if applied else "failed"
    if "changed" in statuses:
        return "rolled_back" if rollback else "converged"
    return "planned" if "planned" in statuses else "nothing_to_do"


@dataclass(slots=True)
class ChangeOutcome:
    change: Change
    status: ChangeStatus = "planned"
    verified: bool | None = None  # None: not applied, so nothing to verify
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "planned" or (self.status == "applied" and self.verified is True)


def _status(outcomes: list[ChangeOutcome], error: str | None = None) -> Status:
    if error is not None or not all(o.ok for o in outcomes):
        return "failed"
    if not outcomes:
        return "unchanged"
    return "planned" if all(o.status == "planned" for o in outcomes) else "changed"


@dataclass(slots=True)
class FunctionOutcome:
    name: str
    changes: list[ChangeOutcome] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    money: Money = field(default_factory=Money)
    decisions: list[Decision] = field(default_factory=list)  # what the evidence allowed
    # What the function's parts say of it, made when the report asks (a fleet's evidence
    # is already in its inventories: kept twice, it was a tenth of a large run's memory).
    facts: Callable[[], Facts] | None = None
    rolled_back: str | None = None  # --bake undid its changes: why

    @property
    def evidence(self) -> dict[str, Json]:
        """Part name -> what it reports."""
        return self.facts()[0] if self.facts else {}

    @property
    def columns(self) -> dict[str, str]:
        """The parts' table cells."""
        return self.facts()[1] if self.facts else {}

    @property
    def status(self) -> Status:
        return "failed" if self.rolled_back else _status(self.changes)

    @property
    def risk(self) -> Risk:
        return worst(d.risk for d in self.decisions)


@dataclass
class EnvironmentOutcome:
    suffix: str
    error: str | None = None
    changes: list[ChangeOutcome] = field(default_factory=list)  # the environment's own
    unchanged: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    functions: list[FunctionOutcome] = field(default_factory=list)
    before_images: str | None = None  # where the rollback material was saved
    money: Money = field(default_factory=Money)  # the environment's own steps'
    held_by: str | None = None  # another run held its lease: not run (leases.py)

    @property
    def total_money(self) -> Money:
        """The environment's own money and its functions'."""
        return Money.total([self.money, *(fn.money for fn in self.functions)])

    @property
    def status(self) -> Status:
        if self.held_by is not None:
            return "held"
        statuses = {_status(self.changes, self.error)} | {fn.status for fn in self.functions}
        ranked: tuple[Status, ...] = ("failed", "changed", "planned")
        return next((status for status in ranked if status in statuses), "unchanged")

    def all_changes(self) -> list[ChangeOutcome]:
        return self.changes + [c for fn in self.functions for c in fn.changes]
