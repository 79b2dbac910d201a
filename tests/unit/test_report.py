from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from optimizer_async.execution.results import ChangeOutcome, EnvironmentOutcome, FunctionOutcome
from optimizer_async.money.costs import Money, money_text
from optimizer_async.reporting.report import RunReport, render, render_markdown, render_table
from optimizer_async.steps.base import Change, Decision, MoneyLine


def _report(
    status: str = "applied", verified: bool | None = True, error: str | None = None
) -> RunReport:
    change = Change("function_configuration", "lambda-function-dev", "MemorySize", 3008, 1024)
    function = FunctionOutcome(
        "lambda-function-dev",
        changes=[ChangeOutcome(change, status, verified)],  # type: ignore[arg-type]
        money=Money((MoneyLine("compute", "saves", 12.5), MoneyLine("alarms", "adds", 0.3))),
    )
    envs = [
        EnvironmentOutcome("dev", functions=[function]),
        EnvironmentOutcome("qa", error=error) if error else EnvironmentOutcome("qa"),
    ]
    return RunReport(
        "r-1", status == "planned", "us-east-1", datetime.now(UTC), 1.5, envs, {"total": 7}
    )


def _flat(text: str) -> str:
    """The text with its wrapping undone: what a wrapped line says."""
    return " ".join(text.split())


def test_json_report_fields_and_status() -> None:
    data = json.loads(render(_report(), "json"))
    assert data["schema_version"] == 1
    assert data["status"] == "converged"
    assert data["environments"][0]["functions"][0]["changes"][0]["verified"] is True
    assert data["savings"]["monthly_usd"] == 12.2
    assert data["api_calls"] == {"total": 7}


def test_unverified_change_fails_the_run() -> None:
    report = _report(verified=False)
    assert report.status == "failed"
    assert report.exit_code == 1
    assert "NOT VERIFIED" in render(report, "table")


def test_environment_error_is_shown_and_fails() -> None:
    report = _report(error="secret(s) not found: api-key-qa")
    assert report.exit_code == 1
    table = render(report, "table")
    assert "environment qa: failed — secret(s) not found: api-key-qa" in table
    (row,) = [line for line in table.splitlines() if line.startswith("qa ")]
    assert row.split()[:2] == ["qa", "failed"]
    assert "secret(s) not found: api-key-qa" in row  # the summary says why, beside its row
    markdown = render(report, "markdown")
    assert "**Error:** secret(s) not found: api-key-qa" in markdown
    assert "| lambda-function-dev | MemorySize | 3008 | 1024 | verified |" in markdown
    assert "| qa | failed | 0 | none | - | - | secret(s) not found: api-key-qa |" in markdown


def test_dry_run_says_would_save() -> None:
    text = render(_report(status="planned", verified=None), "table")
    assert "dry run" in text
    assert "would save $12.20/month" in text


def test_the_steps_that_ran_are_named_when_chosen() -> None:
    report = _report()
    report.steps = ("function_configuration", "log_retention")
    assert "steps:" not in render(report, "table")  # every step ran: nothing to say
    assert json.loads(render(report, "json"))["steps"] == list(report.steps)
    report.selected = True
    assert "steps: function_configuration, log_retention" in render(report, "table")
    assert "steps: function_configuration, log_retention" in render(report, "markdown")


def test_money_is_broken_down_by_label() -> None:
    data = json.loads(render(_report(), "json"))
    assert (data["savings"]["compute_monthly_usd"], data["savings"]["alarms_monthly_usd"]) == (
        12.5,
        0.3,
    )
    said = "saves $12.20/month (saved: compute $12.50; added: alarms $0.30)"
    assert said in _flat(render(_report(), "table"))
    assert said in render(_report(), "markdown")


# --- money in words, whichever way it goes -------------------------------------------------


@pytest.mark.parametrize(
    ("low", "high", "does", "would"),
    [
        (0.24, 4.84, "saves $0.24-$4.84/month", "would save $0.24-$4.84/month"),
        (7.0, 7.0, "saves $7.00/month", "would save $7.00/month"),
        (-4.84, -0.24, "costs $0.24-$4.84/month more", "would cost $0.24-$4.84/month more"),
        (-11.59, -11.59, "costs $11.59/month more", "would cost $11.59/month more"),
        (
            -0.37,
            7.0,
            "between costing $0.37 and saving $7.00/month",
            "would be between costing $0.37 and saving $7.00/month",
        ),
        (0.0, 0.0, "saves $0.00/month", "would save $0.00/month"),
        (-0.004, 2.0, "saves $0.00-$2.00/month", "would save $0.00-$2.00/month"),  # cents
        (-1234.5, -1000.0, "costs $1,000.00-$1,234.50/month more", None),
    ],
)
def test_money_reads_in_words_for_each_sign(
    low: float, high: float, does: str, would: str | None
) -> None:
    assert money_text(low, high) == does
    assert money_text(high, low) == does  # the ends in either order
    if would is not None:
        assert money_text(low, high, mood="would") == would
    assert "$-" not in does


def _money_env(suffix: str, saves: float, saves_low: float, adds: float) -> EnvironmentOutcome:
    """An environment whose compute saves `saves_low`-`saves` and tracing adds `adds`."""
    change = Change("function_configuration", f"lambda-function-{suffix}", "Timeout", 300, 30)
    money = Money(
        (MoneyLine("compute", "saves", saves, None, saves_low), MoneyLine("tracing", "adds", adds))
    )
    function = FunctionOutcome(f"lambda-function-{suffix}", [ChangeOutcome(change)], money=money)
    return EnvironmentOutcome(suffix, functions=[function])


@pytest.mark.parametrize(
    ("saves", "saves_low", "adds", "cell", "headline"),
    [
        (5.0, 1.0, 0.76, "saves $0.24-$4.24", "would save $0.24-$4.24/month"),
        (5.0, 1.0, 5.24, "costs $0.24-$4.24 more", "would cost $0.24-$4.24/month more"),
        (
            8.0,
            1.0,
            1.37,
            "between costing $0.37 and saving $6.63",
            "would be between costing $0.37 and saving $6.63/month",
        ),
    ],
)
def test_every_rendering_says_money_in_words(
    saves: float, saves_low: float, adds: float, cell: str, headline: str
) -> None:
    """A positive, negative and mixed net: the summary, the details, the money totals, the
    headline and the Markdown all say it in words; no signed figure reaches a reader."""
    env = _money_env("pr-1", saves, saves_low, adds)
    report = RunReport("r-2", True, "us-east-1", datetime.now(UTC), 1.0, [env], {"total": 3})
    table, markdown = render_table(report, 140), render_markdown(report)
    (row,) = [line for line in table.splitlines() if line.startswith("pr-1 ")]
    assert row.endswith(cell)  # the summary's row
    assert f"| pr-1 | planned | 1 | 1 planned | none | {cell} |  |" in markdown
    for text in (table, markdown):
        assert "$-" not in text
        assert f"· {headline}" in _flat(text)  # the headline
        title = "pr-1" if text is table else "<code>pr-1</code>"
        assert f"{title}: planned · {headline}" in _flat(text)  # the environment's title
        assert f"| net | {headline.removesuffix(' more').replace('/month', '')}" in text or (
            f"net {headline.replace('/month', '')}" in _flat(text)
        )  # the money totals
    data = json.loads(render(report, "json"))  # JSON keeps the signed numbers
    assert data["savings"]["monthly_usd"] == round(saves - adds, 2)
    assert data["savings"]["monthly_usd_low"] == round(saves_low - adds, 2)


# --- reasons, in words, in the table --------------------------------------------------------

_GUARD = (
    "reserving 50 would leave the account's unreserved concurrency below AWS's minimum of "
    "100: 18 of 30 reservations fit the account's limit of 1000"
)


def _blocked(suffix: str, reason: str = _GUARD, *, rollback: bool = False) -> EnvironmentOutcome:
    name = f"lambda-function-{suffix}"
    ok = ChangeOutcome(Change("function_configuration", name, "Timeout", 300, 30))
    blocked = ChangeOutcome(
        Change("reserved_concurrency", name, "ReservedConcurrentExecutions", None, 50),
        status="blocked",
        error=reason,
    )
    function = FunctionOutcome(name, [ok, blocked], notes=[reason] if rollback else [])
    return EnvironmentOutcome(suffix, functions=[function])


def test_a_blocked_change_says_why_in_the_summary_and_under_the_change() -> None:
    envs = [_blocked(f"pr-{i}") for i in range(1, 5)] + [EnvironmentOutcome("pr-5")]
    report = RunReport("r-3", True, "us-east-1", datetime.now(UTC), 1.0, envs, {"total": 1})
    table = render_table(report, 140)
    summary = table.split("changes per step")[0]
    for i in range(1, 5):
        (row,) = [line for line in summary.splitlines() if line.startswith(f"pr-{i} ")]
        assert "reserving 50 would leave" in row  # beside its row, in words
        assert "[1]" in row  # cut: whole once, under the table
    (whole,) = [line for line in summary.splitlines() if line.startswith("[1] ")]
    assert whole.startswith("[1] reserved_concurrency blocked: reserving 50 would leave")
    assert "pr-1, pr-2, pr-3, pr-4" in _flat(summary)
    details = table.split("environment pr-1:")[1]
    assert f"blocked: {_GUARD}" in _flat(details)  # under the change it blocked
    markdown = render_markdown(report)
    assert f"| ReservedConcurrentExecutions | - | 50 | blocked | {_GUARD} |" in markdown
    assert "[1] reserved_concurrency blocked: reserving 50" in markdown


def test_a_rollback_says_what_it_kept_and_why_once() -> None:
    kept = (
        "kept: lambda-dlq-dev - function lambda-function-dev may still send failed "
        "invocations to it (its DeadLetterConfig.TargetArn is not rolled back); --force "
        "rolls it back anyway"
    )
    report = RunReport(
        "r-4", False, "us-east-1", datetime.now(UTC), 1.0, [_blocked("dev", kept, rollback=True)],
        {"total": 1, "writes": 0}, rollback_of="r-0",
    )  # fmt: skip
    table = render_table(report, 140)
    flat = _flat(table)
    assert f"blocked: {kept}" in flat  # under the change, in the details
    assert f"note: {kept}" not in flat  # and not a second time as a note
    (row,) = [line for line in table.splitlines() if line.startswith("dev ")]
    assert "kept: lambda-dlq-dev" in row
    assert "rollback of r-0" in flat


def test_at_80_columns_long_names_are_shortened_in_their_middle_never_broken() -> None:
    long = "feature-checkout-redesign-with-a-very-long-branch-name-42"
    report = RunReport(
        "r-5", True, "us-east-1", datetime.now(UTC), 1.0, [_blocked(long), _blocked("pr-26")],
        {"total": 1},
    )  # fmt: skip
    table = render_table(report, 80)
    assert max(len(line) for line in table.splitlines()) <= 80
    tokens = {token for line in table.splitlines() for token in line.split()}
    assert "pr-26" in tokens
    assert "lambda-function-pr-26" in tokens
    # The long name: whole on a line of its own, or shortened in its middle, both ends kept.
    assert long in tokens or any(
        "…" in t and long.startswith(t.split("…")[0]) and long.endswith(t.split("…")[1])
        for t in tokens
    )
    for token in tokens:  # nothing else of it: no piece of a name on a line by itself
        if token not in (long, f"lambda-function-{long}") and "…" not in token:
            assert not (len(token) > 3 and long.startswith(token) and token != long), token


# --- which environments are shown in detail -------------------------------------------------


def _fleet(n: int, problems: set[int]) -> RunReport:
    envs = []
    for i in range(1, n + 1):
        if i in problems:
            envs.append(_blocked(f"pr-{i}"))
            continue
        name = f"lambda-function-pr-{i}"
        change = ChangeOutcome(Change("function_configuration", name, "Timeout", 300, 30))
        envs.append(EnvironmentOutcome(f"pr-{i}", functions=[FunctionOutcome(name, [change])]))
    return RunReport("r-6", True, "us-east-1", datetime.now(UTC), 1.0, envs, {"total": 1})


def _detailed(table: str) -> list[str]:
    return [
        line.split()[1].rstrip(":")
        for line in table.splitlines()
        if line.startswith("environment pr-")
    ]


def test_details_follow_only_for_problems_unless_asked() -> None:
    report = _fleet(6, {2, 5})
    adjusted = report.environments[3].functions[0]
    adjusted.decisions = [Decision("MemorySize", 3008, 1024, 1088, "adjusted", "max used x 1.25")]
    assert _detailed(render_table(report, 140)) == ["pr-2", "pr-4", "pr-5"]
    assert "details: 3 of 6 environments" in render_table(report, 140)
    assert _detailed(render_table(report, 140, "problems")) == ["pr-2", "pr-4", "pr-5"]
    assert _detailed(render_table(report, 140, "all")) == [f"pr-{i}" for i in range(1, 7)]
    assert _detailed(render_table(report, 140, "none")) == []
    few = _fleet(3, set())  # a demo's three: everything, by default
    assert _detailed(render_table(few, 140)) == ["pr-1", "pr-2", "pr-3"]
    assert _detailed(render_table(few, 140, "problems")) == []
    # Markdown: every environment's block, none, or (unasked) those that fit.
    assert render_markdown(report).count("<details>") == 6
    assert render_markdown(report, "none").count("<details>") == 0


def test_the_summary_is_a_row_per_environment_then_totals() -> None:
    report = _fleet(40, {7})
    lines = render_table(report, 140, "none").splitlines()
    assert lines[0] == "summary: 40 environment(s)"
    rows = [line for line in lines if line.startswith("pr-")]
    assert [row.split()[0] for row in rows] == [f"pr-{i}" for i in range(1, 41)]
    assert len(lines) < 40 + 25  # the environments, and a few lines of totals
    assert "changes per step" in lines


def test_markdown_keeps_within_its_budget_and_says_what_it_left_out() -> None:
    report = _fleet(60, set(range(1, 61, 3)))
    report.record = "/state/runs/r-6/report.json"
    whole = render_markdown(report, "all")
    budget = len(whole) * 3 // 4  # room for the problems' blocks, not for every block
    cut = render_markdown(report, budget=budget)
    assert len(cut) <= budget
    assert all(f"| pr-{i} |" in cut for i in range(1, 61))  # the summary whole
    assert "**Left out:** the details of" in cut
    assert "`/state/runs/r-6/report.json`" in cut
    assert cut.count("<details>") == cut.count("</details>")
    blocks = [part.split("</code>")[0] for part in cut.split("<details><summary><code>")[1:]]
    assert blocks == sorted(blocks, key=lambda suffix: int(suffix[3:]))  # in the fleet's order
    assert {f"pr-{i}" for i in range(1, 61, 3)} <= set(blocks)  # the problems first in
    assert len(blocks) < 60
