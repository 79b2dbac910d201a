"""RunReport: what a run did, as JSON (machines), a table (people) or Markdown (PRs, wikis).

How a change's values read is each step's own (`Step.render_value`); the report looks the
step up in the registry and knows none of them.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any, Final

from optimizer_async.aws import pricing
from optimizer_async.execution.results import (
    FAILING,
    ChangeOutcome,
    EnvironmentOutcome,
    RunStatus,
    status_text,
)
from optimizer_async.execution.results import run_status as run_status  # org_report's, from here
from optimizer_async.fleet.finder import Finding
from optimizer_async.fleet.shards import Fingerprint, Shard
from optimizer_async.jsonio import json_text
from optimizer_async.money.costs import Money, Mood, money_text, usd_range
from optimizer_async.reporting.formats import Details, OutputFormat
from optimizer_async.reporting.terminal import ELLIPSIS, Column, fit, table, wrap
from optimizer_async.steps.base import MoneyLine, render_value, worst
from optimizer_async.steps.registry import REGISTRY

SCHEMA_VERSION: Final = 1


@dataclass
class RunReport:
    run_id: str
    dry_run: bool
    region: str
    started_at: datetime
    elapsed_s: float
    environments: list[EnvironmentOutcome]
    api_calls: dict[str, Any]
    steps: tuple[str, ...] = ()  # the steps that ran, by registry name
    selected: bool = False  # --only / --skip chose them (else: every registered step)
    rollback_of: str | None = None  # a rollback: the run it undid
    applied_plan: str | None = None  # `apply`: the plan file it applied
    plan_out: str | None = None  # a dry run with --plan-out: where the plan file went
    # --bake: {"duration_s", "polls", "rolled_back": {function: why}}
    bake: dict[str, Any] | None = None
    account_money: Money = field(default_factory=Money)  # the account's tiers, free tier
    prices: str = f"table {pricing.PRICES_AS_OF}"  # where the prices came from
    stopped_by: int | None = None  # the signal that stopped the run, if one did
    found: Finding | None = None  # --all: what was found, every candidate with its reason
    account: str | None = None  # the account the run read
    sharding: Sharding | None = None  # --shard: this run's share, and what merging needs
    # The plan document a dry run wrote (--plan-out) or an apply applied: not reported, but
    # its sha256 is (what ties the review to the file), and the organisation's plan file
    # takes its places' from here.
    plan: dict[str, Any] | None = field(default=None, repr=False)
    # Where the run's JSON report is kept (its record in the state store), for the
    # Markdown to say where what it left out is.
    record: str | None = field(default=None, repr=False)

    @property
    def plan_sha256(self) -> str | None:
        return None if self.plan is None else self.plan.get("sha256")

    @property
    def command(self) -> str:
        return "rollback" if self.rollback_of else "apply" if self.applied_plan else "run"

    @property
    def savings(self) -> Money:
        """Every environment's money, and the account's adjustments: the run's exact net."""
        return Money.total([*(env.total_money for env in self.environments), self.account_money])

    @property
    def failed(self) -> list[EnvironmentOutcome]:
        return [env for env in self.environments if env.status == "failed"]

    @property
    def status(self) -> RunStatus:
        return run_status(
            {env.status for env in self.environments},
            self.stopped_by is not None,
            dry_run=self.dry_run,
            applied=any(
                o.status == "applied" and o.verified
                for env in self.environments
                for o in env.all_changes()
            ),
            rollback=self.rollback_of is not None,
        )

    @property
    def held(self) -> list[EnvironmentOutcome]:
        return [env for env in self.environments if env.status == "held"]

    @property
    def exit_code(self) -> int:
        """128 + the signal that stopped it; 1 if something asked for was not done (a
        failure, or every environment held by another run) or the bake failed; else 0."""
        if self.stopped_by is not None:
            return 128 + self.stopped_by  # 130 SIGINT, 143 SIGTERM
        bake_failed = self.bake is not None and self.bake.get("error")
        return 1 if self.status in FAILING or bake_failed else 0

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = json_text.materialised(self.document())
        return document

    def write(
        self, output: OutputFormat, *streams: IO[str], details: Details | None = None
    ) -> None:
        write(self, output, *streams, details=details)

    def document(self) -> dict[str, Any]:
        """`to_json`, its environments made one at a time while written (`json_text`)."""
        savings = self.savings
        return {
            "schema_version": SCHEMA_VERSION,
            "run_id": self.run_id,
            "dry_run": self.dry_run,
            "status": self.status,
            "account": self.account,
            "region": self.region,
            "started_at": self.started_at.isoformat(),
            "elapsed_s": round(self.elapsed_s, 3),
            "command": self.command,
            "rollback_of": self.rollback_of,
            "stopped_by": None if self.stopped_by is None else signal.Signals(self.stopped_by).name,
            "applied_plan": self.applied_plan,
            "plan_out": self.plan_out,
            # Only with a plan: the shards' merged report has none, as their runs have none.
            **({"plan_sha256": self.plan_sha256} if self.plan_sha256 else {}),
            "bake": self.bake,
            "steps": list(self.steps),
            "found": None if self.found is None else self.found.to_json(),
            "environments": json_text.Lazy(self.environments, _environment_json),
            "savings": savings_json(
                savings, self.account_money, self.dry_run, self.region, self.prices
            ),
            "api_calls": self.api_calls,
            "shard": None if self.sharding is None else self.sharding.to_json(self.environments),
        }


@dataclass(frozen=True)
class Sharding:
    """A `--shard` run's share of the work, and what `report merge` needs to join the
    shards' reports into the report one run over everything would have written: every
    environment in order, and the money lines at full precision (the account's tiers and
    free tier are priced over all shards' lines together, once)."""

    shard: Shard
    every: tuple[str, ...]  # every environment of the run before sharding, in order
    free_tier: bool
    fingerprint: Fingerprint  # of the run's configuration and candidates: merge compares

    def to_json(self, environments: list[EnvironmentOutcome]) -> dict[str, Any]:
        return {
            "index": self.shard.index,
            "count": self.shard.count,
            "fingerprint": self.fingerprint.to_json(),
            "of": list(self.every),
            "environments": [env.suffix for env in environments],
            "free_tier": self.free_tier,
            "money_lines": json_text.Lazy(
                environments,
                lambda env: {
                    "suffix": env.suffix,
                    "lines": [exact_line(line) for line in env.total_money.lines],
                },
            ),
        }


def exact_line(line: MoneyLine) -> dict[str, Any]:
    """A money line as it is, not rounded for reading: `report merge` prices with it."""
    return {**line.to_json(), "monthly_usd": line.monthly_usd, "low_usd": line.low_usd}


def sum_calls(snapshots: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """API call counts of several runs (shards, an organisation's places), summed."""
    by_operation: dict[str, dict[str, int]] = {}
    failed: dict[str, int] = {}
    for snapshot in snapshots:
        for service, operations in snapshot["by_operation"].items():
            mine = by_operation.setdefault(service, {})
            for operation, count in operations.items():
                mine[operation] = mine.get(operation, 0) + count
        for key, count in snapshot["failed"].items():
            failed[key] = failed.get(key, 0) + count
    return {
        "total": sum(s["total"] for s in snapshots),
        "writes": sum(s["writes"] for s in snapshots),
        "attempts": sum(s["attempts"] for s in snapshots),
        "by_operation": {
            service: dict(sorted(ops.items())) for service, ops in sorted(by_operation.items())
        },
        "failed": dict(sorted(failed.items())),
    }


def savings_json(
    savings: Money, account_money: Money, dry_run: bool, region: str, prices: str
) -> dict[str, Any]:
    """A report's `savings`: the run's net, by label, and the account's lines."""
    return {
        "monthly_usd": round(savings.net_usd, 2),
        "monthly_usd_low": round(savings.net_low_usd, 2),
        **_labels(savings),
        "basis": "; ".join(savings.bases),
        "estimated": dry_run,
        "prices_as_of": pricing.PRICES_AS_OF,
        "price_region": region,
        "prices": prices,
        "account_lines": [line.to_json() for line in account_money.lines],
    }


def _labels(money: Money) -> dict[str, float]:
    """`{label}_monthly_usd` for every label, and `{label}_monthly_usd_low` where ranged."""
    found: dict[str, float] = {}
    for label, (_, amount, low) in money.by_label().items():
        key = re.sub(r"\W+", "_", label).strip("_")
        found[f"{key}_monthly_usd"] = round(amount, 2)
        if abs(amount - low) >= 0.005:
            found[f"{key}_monthly_usd_low"] = round(low, 2)
    return found


def _change_json(outcome: ChangeOutcome) -> dict[str, Any]:
    return {
        **outcome.change.to_json(),
        "status": outcome.status,
        "verified": outcome.verified,
        "error": outcome.error,
    }


def _environment_json(env: EnvironmentOutcome) -> dict[str, Any]:
    return {
        "suffix": env.suffix,
        "status": env.status,
        "error": env.error,
        "held_by": env.held_by,
        "before_images": env.before_images,
        "changes": [_change_json(c) for c in env.changes],
        "unchanged": env.unchanged,
        "notes": env.notes,
        "functions": [
            {
                "name": fn.name,
                "status": fn.status,
                "risk": fn.risk,
                "evidence": fn.evidence,
                "decisions": [decision.to_json() for decision in fn.decisions],
                "changes": [_change_json(c) for c in fn.changes],
                "unchanged": fn.unchanged,
                "notes": fn.notes,
                "rolled_back": fn.rolled_back,
                "savings": {
                    "monthly_usd": round(fn.money.net_usd, 2),
                    "monthly_usd_low": round(fn.money.net_low_usd, 2),
                    "lines": [line.to_json() for line in fn.money.lines],
                },
            }
            for fn in env.functions
        ],
    }


# --- people -------------------------------------------------------------------------------

# Up to this many environments, every one is shown in detail unless --details says not.
DETAILS_ALL_UP_TO: Final = 3
# GitHub refuses a comment (a pull request's description too) over 65,536 characters; the
# Markdown keeps under it with room for what a bot adds around it.
GITHUB_COMMENT_LIMIT: Final = 65_536
MARKDOWN_BUDGET: Final = 64_000
_CUT_NOTE_ROOM: Final = 2_000  # what the note on what was left out may take
_NAMED_AT_MOST: Final = 8  # environments a note names before "and N more"
_WHY_SHORT: Final = 60  # a reason in the summary's row; the whole of it under the table
_WHY_ONE_LINE: Final = 36  # a summary's `why` this wide holds a line of reason, else two
_WHY_SHORT_MARKDOWN: Final = 32  # ... and in Markdown's, where 500 rows must fit a comment
_MIN_WIDTH: Final = 40
# A table column's words may be shortened to this many characters when the table would not
# fit the terminal otherwise (`terminal.fit`); names keep more of themselves than text.
_SHRINK: Final[Mapping[str, int]] = {
    "environment": 12, "function": 20, "resource": 20, "line": 16,
    "before": 16, "after": 16, "current": 12, "target": 12, "chosen": 12, "why": 12,
    "from": 12, "memory from": 12, "run id": 16, "environments": 12, "where": 12,
    "account": 16, "regions": 12,
}  # fmt: skip
_FILL: Final = frozenset({"why", "from"})  # long text: the room the other columns leave
_NUMBERS: Final = frozenset({"functions", "planned", "applied", "failed", "blocked"})
_CHANGE_STATES: Final = ("planned", "applied", "failed", "blocked")


def terminal_width() -> int:
    """The terminal's width (`COLUMNS` first), 140 where there is none."""
    return max(_MIN_WIDTH, shutil.get_terminal_size((140, 40)).columns)


def _cells(outcome: ChangeOutcome) -> tuple[str, str, str]:
    """Setting, before and after as the change's step renders them."""
    change = outcome.change
    step = REGISTRY.get(change.step)
    if step is None:  # a step no longer registered: the plain rendering
        return change.setting, render_value(change.before), render_value(change.after)
    return (
        step.render_setting(change.setting),
        step.render_value(change.setting, change.before),
        step.render_value(change.setting, change.after),
    )


def _mark(outcome: ChangeOutcome) -> str:
    if outcome.status == "applied":
        return "verified" if outcome.verified else "NOT VERIFIED"
    return outcome.status


def _state(outcome: ChangeOutcome) -> str:
    """Planned, applied (and verified), failed (or not verified) or blocked."""
    if outcome.status == "applied":
        return "applied" if outcome.verified else "failed"
    return outcome.status


def _not_done(outcome: ChangeOutcome) -> bool:
    return _state(outcome) in ("failed", "blocked")


def _rows(env: EnvironmentOutcome) -> list[tuple[str, ...]]:
    """The changes; with a `why` for each that failed or was blocked, when one was."""
    outcomes = env.all_changes()
    why = any(_not_done(outcome) for outcome in outcomes)
    return [
        (
            c.change.resource,
            *_cells(c),
            _mark(c),
            *((c.error or "" if _not_done(c) else "",) if why else ()),
        )
        for c in outcomes
    ]


def _money_mood(report: RunReport) -> Mood:
    return "would" if report.dry_run else "does"


def _headline(report: RunReport) -> str:
    """The report's last line: what the run did (its status, as `runs` says it too)."""
    savings = report.savings
    calls, writes = report.api_calls.get("total", 0), report.api_calls.get("writes", 0)
    mode = status_text(report.status)
    if report.stopped_by is not None:
        mode += f" by {signal.Signals(report.stopped_by).name}"
    held = f", {len(report.held)} held" if report.held else ""
    counts = f"{len(report.environments)} environment(s), {len(report.failed)} failed{held}"
    calls_text = f"{calls} AWS calls ({writes} writes) · {report.elapsed_s:.1f} s"
    if report.rollback_of or report.applied_plan:
        what = (
            f"rollback of {report.rollback_of}"
            if report.rollback_of
            else f"apply of {report.applied_plan}"
        )
        return f"run {report.run_id} · {what} · {mode} · {counts} · " + calls_text
    breakdown = savings.breakdown()
    return (
        f"run {report.run_id} · {mode} · {counts} · {calls_text} · "
        f"{savings.net_text(_money_mood(report))}" + (f" ({breakdown})" if breakdown else "")
    )


# --- the summary: a row per environment, the reasons once, the totals ---------------------


def _reasons(env: EnvironmentOutcome) -> list[tuple[str, str]]:
    """Why the environment, or a change of it, was not done: (what, why) each once, in
    words (`reserved_concurrency blocked`, `reserving 50 would leave ...`)."""
    if env.held_by is not None:
        return [("held", f"by {env.held_by}")]
    found = [("failed", env.error)] if env.error else []
    found += [(f"{fn.name} rolled back by the bake", fn.rolled_back)
              for fn in env.functions if fn.rolled_back]  # fmt: skip
    for outcome in env.all_changes():
        if _not_done(outcome):
            kind = "blocked" if outcome.status == "blocked" else "failed"
            why = outcome.error or ("not verified" if outcome.status == "applied" else "no reason")
            found.append((f"{outcome.change.step} {kind}", why))
    return list(dict.fromkeys(found))


def _short(text: str, limit: int) -> str:
    """`text`, or its first words within `limit` characters and an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: limit + 1].rsplit(" ", 1)[0] if " " in text[:limit] else text[:limit]
    return cut.rstrip(" ,;:(") + ELLIPSIS


class _Notes:
    """The reasons of a summary that its cells shorten, numbered once each, with the
    environments they concern: twelve environments blocked by one limit read it once."""

    def __init__(self) -> None:
        self.numbers: dict[tuple[str, str], int] = {}
        self.where: dict[tuple[str, str], list[str]] = {}

    def cell(self, suffix: str, reasons: Sequence[tuple[str, str]], limit: int) -> str:
        """The first reason as far as `limit` allows; the number of each said in full
        under the table, where one is cut or there are several."""
        for reason in reasons:
            self.where.setdefault(reason, []).append(suffix)
        if not reasons:
            return ""
        first = reasons[0][1]
        if len(reasons) == 1 and len(first) <= limit:
            return first
        numbers = [self.numbers.setdefault(r, len(self.numbers) + 1) for r in reasons]
        marks = " ".join(f"[{number}]" for number in numbers)
        return f"{_short(first, limit)} {marks}" if limit else marks

    def lines(self) -> list[str]:
        """`[1] reserved_concurrency blocked: the reason (pr-19, ... 12 environments)`."""
        return [f"[{n}] {what}: {why} ({_named(self.where[what, why])})"
                for (what, why), n in self.numbers.items()]  # fmt: skip


def _named(suffixes: Sequence[str]) -> str:
    """`pr-1, pr-2`, or the first few and how many in all."""
    if len(suffixes) <= _NAMED_AT_MOST:
        return ", ".join(suffixes)
    return f"{', '.join(suffixes[:_NAMED_AT_MOST])} ... {len(suffixes)} environments"


def _counts(outcomes: Sequence[ChangeOutcome]) -> dict[str, int]:
    counts = dict.fromkeys(_CHANGE_STATES, 0)
    for outcome in outcomes:
        counts[_state(outcome)] += 1
    return counts


def _changes_text(outcomes: Sequence[ChangeOutcome]) -> str:
    """`11 planned, 1 blocked`: only the states some change is in."""
    counts = _counts(outcomes)
    return ", ".join(f"{n} {state}" for state, n in counts.items() if n) or "none"


def _moves_money(env: EnvironmentOutcome) -> bool:
    """Whether the environment's changes save or cost a cent (a held one's were not made)."""
    money = env.total_money
    return env.held_by is None and max(abs(money.net_usd), abs(money.net_low_usd)) >= 0.005


def _env_money(env: EnvironmentOutcome) -> str:
    """What the environment's changes save, in words; `-` where they move no money."""
    return env.total_money.net_text(unit="") if _moves_money(env) else "-"


_SUMMARY_HEADERS: Final = (
    "environment", "status", "functions", "changes", "risk", "per month", "why",
)  # fmt: skip


def _summary_rows(report: RunReport, notes: _Notes, limit: int) -> list[tuple[str, ...]]:
    """A row per environment: what it is, what was done, what it saves, why not."""
    rows: list[tuple[str, ...]] = []
    for env in report.environments:
        reasons = _reasons(env)
        risk = worst(fn.risk for fn in env.functions) if env.functions else "-"
        rows.append((
            env.suffix, env.status, str(len(env.functions)), _changes_text(env.all_changes()),
            risk, _env_money(env), notes.cell(env.suffix, reasons, limit),
        ))  # fmt: skip
    return rows


def _step_totals(report: RunReport) -> list[tuple[str, ...]]:
    """Per step: its changes planned, applied, failed and blocked over every environment."""
    by_step: dict[str, list[ChangeOutcome]] = {step: [] for step in report.steps}
    for env in report.environments:
        for outcome in env.all_changes():
            by_step.setdefault(outcome.change.step, []).append(outcome)
    return [
        (step, *(str(n or "-") for n in _counts(outcomes).values()))
        for step, outcomes in by_step.items()
        if outcomes
    ]


def _money_totals(report: RunReport) -> list[tuple[str, str]]:
    """What each kind of line saves or adds over every environment, the account's lines
    (tiers, free tier), and the net."""
    fleet = Money.total(env.total_money for env in report.environments)
    rows = [
        (label, f"{effect} {usd_range(low, amount)}")
        for label, (effect, amount, low) in fleet.by_label().items()
    ]
    rows += [
        (f"account: {label}", f"{effect} {usd_range(low, amount)}")
        for label, (effect, amount, low) in report.account_money.by_label().items()
    ]
    if rows:
        rows.append(("net", report.savings.net_text(_money_mood(report), unit="")))
    return rows


def _problem(env: EnvironmentOutcome) -> bool:
    """Whether an environment needs a reader's eye: it failed, or a change of it failed or
    was blocked, or a function was rolled back, or the evidence put a decision at risk or
    adjusted a target."""
    if env.held_by is not None:
        return False  # nothing of it was read: its row says who holds it
    return env.status == "failed" or any(fn.risk in ("at risk", "adjusted") for fn in env.functions)


def _detailed(report: RunReport, details: Details | None) -> list[EnvironmentOutcome]:
    """The environments shown in detail: `details`, or by default every one of a few and
    the problems of more."""
    if details is None:
        details = "all" if len(report.environments) <= DETAILS_ALL_UP_TO else "problems"
    if details == "none":
        return []
    if details == "all":
        return [env for env in report.environments if env.held_by is None]
    return [env for env in report.environments if _problem(env)]


def _details_line(
    report: RunReport, shown: Sequence[EnvironmentOutcome], details: Details | None
) -> str:
    """What the details below leave out, and how to see it: '' when nothing."""
    total = len(report.environments)
    if len(shown) == total or details == "all" or (details is None and total <= DETAILS_ALL_UP_TO):
        return ""
    if details == "none":
        return "details: none (--details none); --details all shows every environment's"
    return (
        f"details: {len(shown)} of {total} environments (failed, blocked, at risk or "
        "adjusted); --details all shows every one, --output json holds everything"
    )


# --- each environment in detail -----------------------------------------------------------

Section = tuple[str, tuple[str, ...], list[tuple[str, ...]]]  # title, headers, rows


def _sections(env: EnvironmentOutcome) -> list[Section]:
    """What each function's evidence says and what it let the steps do, then the changes
    (why each one not done was not), then the money."""
    sections: list[Section] = []
    headers: dict[str, None] = {}
    for fn in env.functions:
        headers.update(dict.fromkeys(fn.columns))
    if headers:
        rows = [
            (fn.name, fn.risk, *(fn.columns.get(h, "-") for h in headers)) for fn in env.functions
        ]
        sections.append(("evidence", ("function", "risk", *headers), rows))
    decisions: list[tuple[str, ...]] = [
        (fn.name, d.setting, render_value(d.current), render_value(d.target),
         "kept" if d.chosen is None else render_value(d.chosen), d.risk, d.why)
        for fn in env.functions
        for d in fn.decisions
    ]  # fmt: skip
    if decisions:
        headers_ = ("function", "setting", "current", "target", "chosen", "risk", "why")
        sections.append(("decisions", headers_, decisions))
    changes = _rows(env)
    if changes:
        why = ("why",) if len(changes[0]) > 5 else ()
        headers_ = ("resource", "setting", "before", "after", "result", *why)
        sections.append(("changes", headers_, changes))
    money: list[tuple[str, ...]] = [
        (
            fn.name,
            line.label,
            line.effect,
            usd_range(line.monthly_usd if line.low_usd is None else line.low_usd, line.monthly_usd),
            ("assumed: " if line.assumed else "") + _inputs(line.inputs),
        )
        for fn in env.functions
        for line in fn.money.lines
    ]
    if money:
        sections.append(("money per month", ("function", "line", "", "USD", "from"), money))
    undone: list[tuple[str, ...]] = [
        (fn.name, fn.rolled_back) for fn in env.functions if fn.rolled_back
    ]
    if undone:
        sections.append(("rolled back by the bake", ("function", "why"), undone))
    return sections


def _one_function(section: Section) -> Section:
    """A section whose rows are all one function's (as most environments have one) names
    it once, in its title, not in every row."""
    name, headers, rows = section
    if headers[0] != "function" or len({row[0] for row in rows}) != 1:
        return section
    return f"{name}: {rows[0][0]}", headers[1:], [row[1:] for row in rows]


def _notes(env: EnvironmentOutcome) -> list[str]:
    """The environment's notes and its functions', but those a change's `why` already says
    (a rollback's "kept: ..." is both)."""
    said = {outcome.error for outcome in env.all_changes() if _not_done(outcome)}
    notes = env.notes + [note for fn in env.functions for note in fn.notes]
    return [note for note in dict.fromkeys(notes) if note not in said]


def _title(env: EnvironmentOutcome, dry_run: bool) -> str:
    """`pr-19: failed · would save $16.73-$34.42/month`: its money where it moves any."""
    title = f"{env.suffix}: {env.status}"
    if _moves_money(env):
        title += f" · {env.total_money.net_text('would' if dry_run else 'does')}"
    return title


def _inputs(inputs: Mapping[str, Any]) -> str:
    """`memory_mb_before=3008, ...`: what a money line is made of, briefly."""

    def number(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.6g}"
        return str(value)

    return ", ".join(
        f"{key}={number(value)}" for key, value in inputs.items() if not isinstance(value, Mapping)
    )


def _steps_line(report: RunReport) -> str | None:
    """Which steps ran, when --only / --skip chose them (otherwise: all of them); where a
    plan file went."""
    lines = [f"steps: {', '.join(report.steps)}"] if report.selected else []
    if report.found is not None:
        lines.append(report.found.summary())
    if report.prices and report.command == "run":
        lines.append(
            f"prices: {report.prices}, {report.region} (each line's source: --output json)"
        )
    if report.bake is not None:
        undone = report.bake["rolled_back"]
        if report.bake.get("error"):
            lines.append(f"the bake failed: {report.bake['error']}; the changes stand")
        else:
            lines.append(
                f"baked {report.bake['duration_s'] / 60:g} min ({report.bake['polls']} polls): "
                + (f"rolled back {', '.join(sorted(undone))}" if undone else "every change held")
            )
    digest = report.plan_sha256
    if report.plan_out:
        pin = f" --expect-sha256 {digest}" if digest else ""
        lines.append(f"plan written to {report.plan_out}, sha256 {digest}: review it, then "
                     f"apply it with `lambda-optimizer apply {report.plan_out}{pin}`")  # fmt: skip
    if report.applied_plan and digest:
        verb = "checked plan" if report.dry_run else "applied plan"  # a dry apply wrote nothing
        lines.append(f"{verb} {report.applied_plan}, sha256 {digest}")
    return "\n".join(lines) or None


# --- the table -----------------------------------------------------------------------------


def _columns(headers: Sequence[str]) -> list[Column]:
    return [
        Column(h, _SHRINK.get(h), "right" if h in _NUMBERS else "left", h in _FILL) for h in headers
    ]


def _summary_table(report: RunReport, width: int) -> list[str]:
    """The summary's table, each environment on a line where the terminal allows: the
    reason beside the row (cut to the column), or under it on a narrow terminal; each reason
    it cut, whole, once under the table."""
    title = f"summary: {len(report.environments)} environment(s)"
    headers = ("environment", "status", "fns", *_SUMMARY_HEADERS[3:])  # "fns": 80 columns
    columns = _columns(headers)
    notes = _Notes()
    rows = _summary_rows(report, notes, _WHY_SHORT)
    if not any(row[-1] for row in rows):  # nothing failed: no column for why
        return table(title, columns[:-1], [row[:-1] for row in rows], width)
    widths = fit(columns, rows, width)  # `why` gets what the others leave
    wanted = max((len(row[-1]) for row in rows), default=0)
    if widths is not None and widths[-1] >= min(wanted, _WHY_ONE_LINE):  # beside its row
        if widths[-1] < wanted:
            notes = _Notes()
            rows = _summary_rows(report, notes, widths[-1] - len(" [9]") - 1)
        lines = table(title, columns, rows, width, widths)
    else:  # a narrow terminal: the reason on a line of its own, under its row
        notes = _Notes()
        below = width - max((len(row[0]) for row in rows), default=0) - 8
        rows = _summary_rows(report, notes, max(below - len(" [9]"), 0))
        lines = table(title, columns[:-1], [row[:-1] for row in rows], width,
                      below=[row[-1] for row in rows])  # fmt: skip
    return lines + [line for note in notes.lines() for line in wrap(note, width, hang="    ")]


def _environment_lines(env: EnvironmentOutcome, dry_run: bool, width: int) -> list[str]:
    title = f"environment {_title(env, dry_run)}"
    if env.error or env.held_by:
        return wrap(f"{title} — {env.error or f'held by {env.held_by}'}", width, hang="  ")
    sections = _sections(env)
    nothing = not any(name == "changes" for name, _, _ in sections)
    lines = wrap(title + (" — nothing to do" if nothing else ""), width, hang="  ")
    for name, headers, rows in map(_one_function, sections):
        if name == "changes" and headers[-1] == "why":  # each reason under its change
            below = [f"{row[-2]}: {row[-1]}" if row[-1] else "" for row in rows]
            lines += table(name, _columns(headers[:-1]), [r[:-1] for r in rows], width, below=below)
            continue
        lines += table(name, _columns(headers), rows, width)
    lines += [line for note in _notes(env) for line in wrap(f"note: {note}", width, "  ", "  ")]
    return lines


def render_table(
    report: RunReport, width: int | None = None, details: Details | None = None
) -> str:
    """The fleet first: a row per environment, the reasons, the totals per step and the
    money; then the environments that need a reader's eye in detail (`--details`); last,
    the headline."""
    width = width or terminal_width()
    lines = _summary_table(report, width)
    steps = _step_totals(report)
    if steps:
        lines += ["", *table("changes per step", _columns(("step", *_CHANGE_STATES)), steps, width)]
    money = _money_totals(report)
    if money:
        lines += ["", *table("money per month", _columns(("line", "per month")), money, width)]
    shown = _detailed(report, details)
    said = _details_line(report, shown, details)
    if said:
        lines += ["", *wrap(said, width, hang="  ")]
    for env in shown:
        lines += ["", *_environment_lines(env, report.dry_run, width)]
    steps_line = _steps_line(report)
    lines.append("")
    if steps_line:
        lines += wrap(steps_line, width, hang="  ")
    lines += wrap(_headline(report), width, hang="  ")
    return "\n".join(lines) + "\n"


# --- Markdown ------------------------------------------------------------------------------


def render_markdown(
    report: RunReport, details: Details | None = None, budget: int | None = MARKDOWN_BUDGET
) -> str:
    """The headline, the summary whole, then each environment in a collapsible block:
    every one of them (problems first) while the report stays within `budget` characters
    (GitHub's comment limit; `--details all`: no limit), saying what it left out and
    where the whole report is."""
    lines = [f"# lambda-optimizer run {report.run_id}", "", _headline(report), ""]
    steps = _steps_line(report)
    if steps:
        lines += [steps, ""]
    if report.plan_out and report.plan is not None:  # what apply holds every change to
        targets = json.dumps(report.plan.get("targets"), sort_keys=True)
        lines += [f"the plan's targets and guardrails: `{targets}`", ""]
    notes = _Notes()
    rows = _summary_rows(report, notes, _WHY_SHORT_MARKDOWN)
    if budget is not None and sum(len(_markdown_row(row)) for row in rows) > budget // 2:
        notes = _Notes()  # a fleet: each reason only by its number, so that the rows fit
        rows = _summary_rows(report, notes, 0)
    lines += ["## summary", "", *_markdown_table(_SUMMARY_HEADERS, rows), ""]
    lines += [f"- {_escape(note)}" for note in notes.lines()] + ([""] if notes.numbers else [])
    steps_rows = _step_totals(report)
    if steps_rows:
        per_step = _markdown_table(("step", *_CHANGE_STATES), steps_rows)
        lines += ["### changes per step", "", *per_step, ""]
    money = _money_totals(report)
    if money:
        lines += ["### money per month", "", *_markdown_table(("line", "per month"), money), ""]
    if details == "none" or not report.environments:
        return "\n".join(lines) + "\n"
    lines += ["## details", ""]
    head = "\n".join(lines) + "\n"
    blocks, left_out = _markdown_blocks(report, None if details == "all" else budget, len(head))
    cut = [_left_out(report, left_out)] if left_out else []
    return head + "".join([*cut, *(blocks[i] for i in sorted(blocks))])


def _markdown_blocks(
    report: RunReport, budget: int | None, used: int
) -> tuple[dict[int, str], list[str]]:
    """Each environment's block, by its place in the report; problems first while the
    budget lasts, then the others. What did not fit: by suffix."""
    room = None if budget is None else budget - used - _CUT_NOTE_ROOM
    order = sorted(
        range(len(report.environments)),
        key=lambda i: not _problem(report.environments[i]),
    )
    blocks: dict[int, str] = {}
    left_out: list[str] = []
    for i in order:
        env = report.environments[i]
        if room is not None and room <= 0:
            left_out.append(env.suffix)
            continue
        block = _markdown_environment(env, report.dry_run)
        if room is not None and len(block) > room:
            left_out.append(env.suffix)
            continue
        blocks[i] = block
        if room is not None:
            room -= len(block)
    in_order = {env.suffix: i for i, env in enumerate(report.environments)}
    return blocks, sorted(left_out, key=in_order.__getitem__)


def _markdown_environment(env: EnvironmentOutcome, dry_run: bool) -> str:
    """One environment in a `<details>` block: its sections and, for a plan's review,
    every change whole."""
    said = _escape(_title(env, dry_run).split(": ", 1)[1])
    lines = [f"<details><summary><code>{env.suffix}</code>: {said}</summary>", ""]
    if env.error or env.held_by:
        lines += [f"**Error:** {env.error}" if env.error else f"Held by {env.held_by}.", ""]
    else:
        sections = _sections(env)
        if not any(name == "changes" for name, _, _ in sections):
            lines += ["Nothing to do.", ""]
        for name, headers, rows in map(_one_function, sections):
            lines += [f"### {name}", "", *_markdown_table(headers, rows), ""]
        lines += [f"- note: {_escape(note)}" for note in _notes(env)]
        lines += [""] if _notes(env) else []
        lines += _in_full(env)
    return "\n".join([*lines, "</details>", ""]) + "\n"


def _left_out(report: RunReport, suffixes: Sequence[str]) -> str:
    """What the Markdown left out, and where all of it is."""
    where = [f"the run's JSON report `{report.record}`"] if report.record else []
    where.append("`--output json`")
    if report.plan_out:
        where.insert(0, f"the plan file `{report.plan_out}` (every change whole)")
    return (
        f"**Left out:** the details of {len(suffixes)} of {len(report.environments)} "
        f"environments ({_named(suffixes)}), to keep this report within GitHub's "
        f"{GITHUB_COMMENT_LIMIT:,}-character comment limit. Everything is in "
        f"{', '.join(where[:-1]) + ' and ' if len(where) > 1 else ''}{where[-1]}; "
        "`--details all` writes every environment's details in Markdown.\n\n"
    )


def _in_full(env: EnvironmentOutcome) -> list[str]:
    """What a reviewer must read whole that the changes table shortens (each step's
    `review`: a policy as a diff of statements, an ARN written out): a plan is approved on
    what it will write, not on a summary of it."""
    lines: list[str] = []
    for outcome in env.changes + [c for fn in env.functions for c in fn.changes]:
        change = outcome.change
        step = REGISTRY.get(change.step)
        shown = () if step is None else step.review(change)
        if step is not None and shown:
            lines += [f"`{change.resource}` {step.render_setting(change.setting)}:", "", *shown, ""]
    return ["### in full", "", *lines] if lines else []


def _markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return [_markdown_row(headers), "|" + "---|" * len(headers), *map(_markdown_row, rows)]


def _markdown_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def _escape(text: str) -> str:
    """Text where Markdown would read `<` as HTML (a `<details>` summary, a note)."""
    return text.replace("<", "&lt;")


def render(report: RunReport, output: OutputFormat, details: Details | None = None) -> str:
    if output == "json":
        return "".join(json_text.chunks(report.document())) + "\n"
    if output == "markdown":
        return render_markdown(report, details)
    return render_table(report, details=details)


def write(
    report: RunReport, output: OutputFormat, *streams: IO[str], details: Details | None = None
) -> None:
    """`render` into every stream, made once; JSON as it is made, never whole in memory."""
    if output == "json":
        json_text.write(report.document(), *streams)
        text = "\n"
    else:
        text = render(report, output, details)
    for stream in streams:
        stream.write(text)


def render_runs(runs: list[dict[str, Any]], output: OutputFormat, location: str) -> str:
    """`lambda-optimizer runs`: what each recorded run did, and whether it can be undone."""
    if output == "json":
        return json.dumps({"state": location, "runs": runs}, indent=2, default=str) + "\n"
    rows = [
        (
            str(run["run_id"]),
            str(run.get("command", "run"))
            + (f" of {run['rollback_of']}" if run.get("rollback_of") else ""),
            status_text(str(run.get("status", ""))),
            f"{len(run['places'])} account/region(s)"
            if "places" in run
            else " ".join(str(run.get(key) or "") for key in ("account", "region")).strip(),
            ", ".join(run.get("suffixes", [])),
            "yes" if run.get("environments_recorded") else "no",
        )
        for run in runs
    ]
    headers = ("run id", "command", "status", "where", "environments", "can roll back")
    if output == "markdown":
        lines = [f"# runs in {location}", "", *_markdown_table(headers, rows)]
        return "\n".join(lines) + "\n"
    width = terminal_width()
    if not rows:
        return "\n".join(wrap(f"no runs in {location}", width)) + "\n"
    return "\n".join(table(f"runs in {location}", _columns(headers), rows, width)) + "\n"


def render_savings(document: dict[str, Any], output: OutputFormat) -> str:
    """`lambda-optimizer savings`: realised beside estimated, per function and in total."""
    if output == "json":
        return json.dumps(document, indent=2, default=str) + "\n"
    before, after = document["windows"]["before"], document["windows"]["after"]
    title = (
        f"run {document['run_id']}: realised savings per month, {document['prices']} prices; "
        f"before {before[0]} - {before[1]}, since {after[0]} - {after[1]}"
    )
    headers = ("function", "memory MB", "estimated", "realised", "USD per invocation")
    rows = [
        (
            fn["name"],
            " -> ".join(str(m) for m in fn["memory_mb"]),
            money_text(*fn["estimated_monthly_usd"], unit=""),
            money_text(fn["realised_monthly_usd"], fn["realised_monthly_usd"], unit=""),
            " -> ".join(f"${v:.10f}".rstrip("0") for v in fn["inputs"]["usd_per_invocation"]),
        )
        for fn in document["functions"]
    ]
    realised = document["realised_monthly_usd"]
    total = ("total", "", money_text(*document["estimated_monthly_usd"], unit=""),
             money_text(realised, realised, unit=""), "")  # fmt: skip
    if output == "markdown":
        return "\n".join([f"# {title}", "", *_markdown_table(headers, [*rows, total])]) + "\n"
    width = terminal_width()
    lines = [*wrap(title, width, hang="  "), *table(None, _columns(headers), [*rows, total], width)]
    return "\n".join(lines) + "\n"
