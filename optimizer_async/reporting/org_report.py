"""An organisation's report (`--accounts`): every account and region's own run report, and
the totals per account and overall.

Each place (account, region) runs as a run of its own (run id, record, before-images,
report, limiters), so its report is exactly a single-region run's; this one groups them.
A place that could not run at all (its role refused, its credentials another account's)
carries its reason instead of a report. The API calls are summed with the organisation's
own (the caller's identity, the state store), so every call the run made is counted once.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any, Final

from optimizer_async.execution.results import status_text
from optimizer_async.fleet.accounts import Place
from optimizer_async.jsonio import json_text
from optimizer_async.money.costs import Money, money_text
from optimizer_async.reporting.formats import Details, OutputFormat
from optimizer_async.reporting.report import (
    MARKDOWN_BUDGET,
    SCHEMA_VERSION,
    RunReport,
    run_status,
    sum_calls,
    terminal_width,
)
from optimizer_async.reporting.report import render_markdown as render_run_markdown
from optimizer_async.reporting.report import render_table as render_run_table
from optimizer_async.reporting.terminal import Column, table, wrap

# A place's run that wrote and verified something: what tells partly applied from failed.
_WROTE: Final = frozenset({"converged", "partly_applied", "rolled_back"})

KIND: Final = "organisation"


@dataclass(frozen=True)
class PlaceTotals:
    """What an account's totals are made of, per place (report merge makes them too)."""

    account: str
    name: str
    region: str
    statuses: frozenset[str]  # its environments'; {"failed"} if it could not run
    environments: int
    failed: int  # environments failed, and 1 if the place could not run
    money: Money  # exact, unrounded


def account_totals(places: Sequence[PlaceTotals], stopped: bool) -> list[dict[str, Any]]:
    """Per account: its regions, environments, status and money, in the file's order;
    `stopped`: a signal stopped the run (every account's status says so)."""
    by_account: dict[str, list[PlaceTotals]] = {}
    for place in places:
        by_account.setdefault(place.account, []).append(place)
    totals = []
    for account, mine in by_account.items():
        money = Money.total(place.money for place in mine)
        totals.append(
            {
                "account": account,
                "account_name": mine[0].name,
                "regions": [place.region for place in mine],
                "status": run_status({s for place in mine for s in place.statuses}, stopped),
                "environments": sum(place.environments for place in mine),
                "failed": sum(place.failed for place in mine),
                "monthly_usd": round(money.net_usd, 2),
                "monthly_usd_low": round(money.net_low_usd, 2),
            }
        )
    return totals


@dataclass
class PlaceResult:
    """One account and region: its run's report, or why it could not run."""

    place: Place
    report: RunReport | None = None
    error: str | None = None
    calls: dict[str, Any] | None = None  # what it called before it failed, if it did

    @property
    def api_calls(self) -> dict[str, Any] | None:
        return self.report.api_calls if self.report is not None else self.calls

    @property
    def statuses(self) -> set[str]:
        """Its environments' statuses (as a run's status is made of); failed if it could
        not run."""
        if self.report is None:
            return {"failed"}
        return {env.status for env in self.report.environments}

    @property
    def status(self) -> str:
        return "failed" if self.report is None else self.report.status

    @property
    def savings(self) -> Money:
        return Money() if self.report is None else self.report.savings

    def totals(self) -> PlaceTotals:
        account, report = self.place.account, self.report
        environments = [] if report is None else report.environments
        return PlaceTotals(
            account.account_id,
            account.name,
            self.place.region,
            frozenset(self.statuses),
            len(environments),
            sum(env.status == "failed" for env in environments) + (report is None),
            self.savings,
        )

    def to_json(self) -> dict[str, Any]:
        account = self.place.account
        return {
            "account": account.account_id,
            "account_name": account.name,
            "region": self.place.region,
            "status": self.status,
            "error": self.error,
            "run_id": None if self.report is None else self.report.run_id,
            "report": None if self.report is None else self.report.document(),
        }


@dataclass
class OrganisationReport:
    run_id: str
    dry_run: bool
    command: str
    started_at: datetime
    elapsed_s: float
    places: list[PlaceResult]
    own_calls: dict[str, Any]  # the organisation's own: identity, state store
    stopped_by: int | None = None
    rollback_of: str | None = None
    shard: dict[str, int] | None = None  # --shard I/N: {"index", "count"}
    notes: list[str] = field(default_factory=list)
    plan_out: str | None = None  # a dry run with --plan-out: every place's plan, one file
    applied_plan: str | None = None  # `apply`: the organisation's plan it applied

    @property
    def status(self) -> str:
        """As a single run's status reads: over every place's environments."""
        statuses = {status for place in self.places for status in place.statuses}
        applied = any(
            place.report is not None and place.report.status in _WROTE for place in self.places
        )
        return run_status(
            statuses,
            self.stopped_by is not None,
            dry_run=self.dry_run,
            applied=applied,
            rollback=self.rollback_of is not None,
        )

    @property
    def exit_code(self) -> int:
        if self.stopped_by is not None:
            return 128 + self.stopped_by
        failed = any(p.report is None or p.report.exit_code for p in self.places)
        return 1 if failed else 0

    @property
    def savings(self) -> Money:
        return Money.total(place.savings for place in self.places)

    @property
    def api_calls(self) -> dict[str, Any]:
        places = [place.api_calls for place in self.places if place.api_calls is not None]
        return sum_calls([self.own_calls, *places])

    def write(
        self, output: OutputFormat, *streams: IO[str], details: Details | None = None
    ) -> None:
        write(self, output, *streams, details=details)

    def accounts(self) -> list[dict[str, Any]]:
        totals = [place.totals() for place in self.places]
        return account_totals(totals, self.stopped_by is not None)

    def document(self) -> dict[str, Any]:
        savings = self.savings
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": KIND,
            "run_id": self.run_id,
            "dry_run": self.dry_run,
            "status": self.status,
            "command": self.command,
            "rollback_of": self.rollback_of,
            "applied_plan": self.applied_plan,
            "plan_out": self.plan_out,
            "started_at": self.started_at.isoformat(),
            "elapsed_s": round(self.elapsed_s, 3),
            "stopped_by": None if self.stopped_by is None else signal.Signals(self.stopped_by).name,
            "shard": self.shard,
            "accounts": self.accounts(),
            "savings": {
                "monthly_usd": round(savings.net_usd, 2),
                "monthly_usd_low": round(savings.net_low_usd, 2),
                "estimated": self.dry_run,
            },
            "api_calls": self.api_calls,
            "notes": self.notes,
            "places": json_text.Lazy(self.places, PlaceResult.to_json),
        }


def headline(report: OrganisationReport) -> str:
    calls = report.api_calls
    failed = sum(place.report is None for place in report.places)
    return (
        f"organisation run {report.run_id} · {status_text(report.status)} · "
        f"{len(report.places)} account/region(s), {failed} could not run · "
        f"{calls['total']} AWS calls ({calls['writes']} writes) · {report.elapsed_s:.1f} s · "
        f"{report.savings.net_text('would' if report.dry_run else 'does')}"
    )


def _totals_rows(report: OrganisationReport) -> list[tuple[str, ...]]:
    return [
        (
            f"{a['account_name']} ({a['account']})",
            " ".join(a["regions"]),
            a["status"],
            str(a["environments"]),
            str(a["failed"]),
            money_text(a["monthly_usd_low"], a["monthly_usd"], unit=""),
        )
        for a in report.accounts()
    ]


_TOTALS_HEADERS: Final = ("account", "regions", "status", "environments", "failed", "per month")
_TOTALS_COLUMNS: Final = (
    Column("account", 16), Column("regions", 12), Column("status"),
    Column("environments", justify="right"), Column("failed", justify="right"),
    Column("per month"),
)  # fmt: skip


def render_table(
    report: OrganisationReport, width: int | None = None, details: Details | None = None
) -> str:
    """Each place's own report (its summary first), then the accounts' totals and the
    organisation's headline."""
    width = width or terminal_width()
    parts = []
    for place in report.places:
        parts.append(f"=== {place.place.label} ===\n")
        if place.report is None:
            parts.append("\n".join(wrap(f"could not run: {place.error}", width, hang="  ")) + "\n")
        else:
            parts.append(render_run_table(place.report, width, details))
    lines = table("accounts", _TOTALS_COLUMNS, _totals_rows(report), width)
    lines += [line for note in report.notes for line in wrap(f"note: {note}", width, hang="  ")]
    if report.plan_out:
        apply = f"lambda-optimizer apply {report.plan_out} --accounts FILE"
        lines += wrap(f"plan written to {report.plan_out}: review it, then `{apply}`", width)
    lines += wrap(headline(report), width, hang="  ")
    parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


def render_markdown(
    report: OrganisationReport, details: Details | None = None, budget: int = MARKDOWN_BUDGET
) -> str:
    """The headline and the accounts' totals, then each place's own report a level down,
    each within its share of the budget (GitHub's comment size)."""
    lines = [f"# lambda-optimizer organisation run {report.run_id}", "", headline(report), ""]
    lines += ["| " + " | ".join(_TOTALS_HEADERS) + " |", "|" + "---|" * len(_TOTALS_HEADERS)]
    lines += ["| " + " | ".join(row) + " |" for row in _totals_rows(report)]
    lines.append("")
    lines += [f"note: {note}" for note in report.notes]
    used = len("\n".join(lines))
    share = max((budget - used) // max(len(report.places), 1), 0)
    for place in report.places:
        if place.report is None:
            lines += [f"## {place.place.label}", "", f"**Could not run:** {place.error}", ""]
            continue
        # The place's own report, a level down, titled by its place.
        own = render_run_markdown(place.report, details, share)
        body = re.sub(r"^(#+) ", r"#\1 ", own, flags=re.MULTILINE)
        lines += [f"## {place.place.label} · run {place.report.run_id}", body.split("\n", 1)[1]]
    return "\n".join(lines) + "\n"


def write(
    report: OrganisationReport,
    output: OutputFormat,
    *streams: IO[str],
    details: Details | None = None,
) -> None:
    """As `report.write`: JSON as it is made, never whole in memory."""
    if output == "json":
        json_text.write(report.document(), *streams)
        text = "\n"
    elif output == "table":
        text = render_table(report, details=details)
    else:
        text = render_markdown(report, details)
    for stream in streams:
        stream.write(text)
