from __future__ import annotations

import json
from datetime import UTC, datetime

from optimizer_async.costs import Money
from optimizer_async.report import RunReport, render
from optimizer_async.results import ChangeOutcome, EnvironmentOutcome, FunctionOutcome
from optimizer_async.steps.base import Change, MoneyLine


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
    markdown = render(report, "markdown")
    assert "**Error:** secret(s) not found: api-key-qa" in markdown
    assert "| lambda-function-dev | MemorySize | 3008 | 1024 | verified |" in markdown


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
    assert "saves $12.20/month (compute $12.50 - alarms $0.30)" in render(_report(), "table")
