"""RunReport: what a run did, as JSON (machines), a table (people) or Markdown (PRs, wikis).

How a change's values read is each step's own (`Step.render_value`); the report looks the
step up in the registry and knows none of them.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any, Final

from rich.console import Console
from rich.table import Table
from rich.text import Text

from optimizer_async import json_text, pricing
from optimizer_async.config import OutputFormat
from optimizer_async.costs import Money, usd_range
from optimizer_async.finder import Finding
from optimizer_async.results import (
    FAILING,
    ChangeOutcome,
    EnvironmentOutcome,
    RunStatus,
    status_text,
)
from optimizer_async.results import run_status as run_status  # org_report's, from here
from optimizer_async.shards import Fingerprint, Shard
from optimizer_async.steps.base import MoneyLine, render_value
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

    def write(self, output: OutputFormat, *streams: IO[str]) -> None:
        write(self, output, *streams)

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


def _rows(env: EnvironmentOutcome) -> list[tuple[str, str, str, str, str]]:
    outcomes = env.changes + [c for fn in env.functions for c in fn.changes]
    return [(c.change.resource, *_cells(c), _mark(c)) for c in outcomes]


def _headline(report: RunReport) -> str:
    """The report's last line: what the run did (its status, as `runs` says it too)."""
    savings = report.savings
    verb = "would save" if report.dry_run else "saves"
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
        f"{verb} {savings.net_text()}/month" + (f" ({breakdown})" if breakdown else "")
    )


Section = tuple[str, tuple[str, ...], list[tuple[str, ...]]]  # title, headers, rows


def _sections(env: EnvironmentOutcome) -> list[Section]:
    """What each function's evidence says and what it let the steps do, then the changes."""
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
    changes: list[tuple[str, ...]] = list(_rows(env))
    if changes:
        sections.append(("changes", ("resource", "setting", "before", "after", "result"), changes))
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
        lines.append(f"applied plan {report.applied_plan}, sha256 {digest}")
    return "\n".join(lines) or None


def render_table(report: RunReport, width: int | None = None) -> str:
    width = width or max(100, shutil.get_terminal_size((140, 40)).columns)
    console = Console(
        file=io.StringIO(), width=width, force_terminal=False, no_color=True, emoji=False
    )
    for env in report.environments:
        money = env.total_money
        title = f"environment {env.suffix}: {env.status}"
        if money.net_usd or money.net_low_usd:
            title += f" · {money.net_text()}/month"
        if env.error or env.held_by:
            console.print(Text(f"{title} — {env.error or f'held by {env.held_by}'}"))
            continue
        sections = _sections(env)
        if not any(name == "changes" for name, _, _ in sections):
            console.print(Text(f"{title} — nothing to do"))
        else:
            console.print(Text(title))
        for name, headers, rows in sections:
            table = Table(title=name, title_justify="left", expand=False)
            for header in headers:
                wide = header in ("before", "after", "why", "memory from")
                table.add_column(header, overflow="fold", max_width=48 if wide else 44)
            for row in rows:
                table.add_row(*(Text(cell) for cell in row))
            console.print(table)
        notes = env.notes + [n for fn in env.functions for n in fn.notes]
        for note in notes:
            console.print(Text(f"  note: {note}"))
    steps = _steps_line(report)
    if steps:
        console.print(Text(steps))
    console.print(Text(_headline(report)))
    output = console.file.getvalue()  # type: ignore[attr-defined]
    return str(output)


def render_markdown(report: RunReport) -> str:
    lines = [f"# lambda-optimizer run {report.run_id}", "", _headline(report), ""]
    steps = _steps_line(report)
    if steps:
        lines += [steps, ""]
    if report.plan_out and report.plan is not None:  # what apply holds every change to
        targets = json.dumps(report.plan.get("targets"), sort_keys=True)
        lines += [f"the plan's targets and guardrails: `{targets}`", ""]
    for env in report.environments:
        lines += [f"## `{env.suffix}` — {env.status}", ""]
        if env.error or env.held_by:
            lines += [f"**Error:** {env.error}" if env.error else f"Held by {env.held_by}.", ""]
            continue
        sections = _sections(env)
        if not any(name == "changes" for name, _, _ in sections):
            lines += ["Nothing to do.", ""]
        for name, headers, rows in sections:
            lines += [f"### {name}", "", _markdown_row(headers), "|" + "---|" * len(headers)]
            lines += [_markdown_row(row) for row in rows]
            lines.append("")
        lines += _in_full(env)
    return "\n".join(lines) + "\n"


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


def _markdown_row(cells: tuple[str, ...]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def render(report: RunReport, output: OutputFormat) -> str:
    if output == "json":
        return "".join(json_text.chunks(report.document())) + "\n"
    if output == "markdown":
        return render_markdown(report)
    return render_table(report)


def write(report: RunReport, output: OutputFormat, *streams: IO[str]) -> None:
    """`render` into every stream, made once; JSON as it is made, never whole in memory."""
    if output == "json":
        json_text.write(report.document(), *streams)
        text = "\n"
    else:
        text = render(report, output)
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
        lines = [f"# runs in {location}", "", _markdown_row(headers), "|" + "---|" * 6]
        return "\n".join([*lines, *(_markdown_row(row) for row in rows)]) + "\n"
    console = Console(file=io.StringIO(), width=140, force_terminal=False, no_color=True)
    table = Table(title=f"runs in {location}", title_justify="left")
    for header in headers:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    console.print(table if rows else Text(f"no runs in {location}"))
    return str(console.file.getvalue())  # type: ignore[attr-defined]


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
            usd_range(*fn["estimated_monthly_usd"]),
            f"${fn['realised_monthly_usd']:,.2f}",
            " -> ".join(f"${v:.10f}".rstrip("0") for v in fn["inputs"]["usd_per_invocation"]),
        )
        for fn in document["functions"]
    ]
    total = ("total", "", usd_range(*document["estimated_monthly_usd"]),
             f"${document['realised_monthly_usd']:,.2f}", "")  # fmt: skip
    if output == "markdown":
        lines = [f"# {title}", "", _markdown_row(headers), "|" + "---|" * len(headers)]
        return "\n".join([*lines, *(_markdown_row(row) for row in [*rows, total])]) + "\n"
    console = Console(file=io.StringIO(), width=160, force_terminal=False, no_color=True)
    table = Table(title=title, title_justify="left")
    for header in headers:
        table.add_column(header, overflow="fold")
    for row in [*rows, total]:
        table.add_row(*(Text(cell) for cell in row))
    console.print(table)
    return str(console.file.getvalue())  # type: ignore[attr-defined]
