"""Reports a platform team reads at fleet scale, from dry runs of the sandbox's fleets as
people run them (the command line): the summary first, a row per environment, every
failed or blocked row saying why, details only for the environments that need a reader's
eye, money in words, names whole at 80 columns, and a Markdown report of 500 environments
that a pull request comment holds."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest

from optimizer_async import cli
from optimizer_async.reporting.report import GITHUB_COMMENT_LIMIT
from optimizer_async.sandbox.server import EmbeddedSandbox

pytestmark = pytest.mark.sandbox_only("fleets seeded straight into the sandbox's backends")

FLEET = [f"pr-{i}" for i in range(1, 31)]
# The account's 1,000 concurrent executions hold 18 reservations of 50 over the floor of
# 100: the other 12 environments fail, blocked by the fleet guardrail, all for one reason.
BLOCKED = 12
_DETAIL = re.compile(r"environment (\S+): ")  # an environment's details begin


def _dry_run(
    sandbox: EmbeddedSandbox,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    suffixes: list[str],
    *args: str,
    columns: int = 140,
) -> tuple[str, dict[str, Any]]:
    """The command line's dry run over `suffixes` on a terminal `columns` wide: its stdout
    and its JSON report (`--report-file`)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", sandbox.endpoint_url)
    monkeypatch.setenv("COLUMNS", str(columns))
    monkeypatch.delenv("ENVIRONMENT_SUFFIX", raising=False)
    document = tmp_path / f"report-{columns}.json"
    capsys.readouterr()
    code = cli.main([
        "--suffix", ",".join(suffixes), "--dry-run", "--state-dir", str(tmp_path / "state"),
        "--no-progress", "--log-level", "info", "--log-format", "json",
        "--log-file", str(tmp_path / "run.log"), "--report-file", str(document), *args,
    ])  # fmt: skip
    out = capsys.readouterr().out
    report = json.loads(document.read_text())
    assert code == (1 if report["status"] == "planned_with_failures" else 0)
    return out, report


def _problems(report: dict[str, Any]) -> list[str]:
    """The environments that need a reader's eye: failed (a change blocked or failed), or
    a decision at risk or adjusted."""
    return [
        env["suffix"]
        for env in report["environments"]
        if env["status"] == "failed"
        or any(fn["risk"] in ("at risk", "adjusted") for fn in env["functions"])
    ]


def _reasons(env: dict[str, Any]) -> list[str]:
    changes = env["changes"] + [c for fn in env["functions"] for c in fn["changes"]]
    return [c["error"] for c in changes if c["status"] in ("blocked", "failed")] + (
        [env["error"]] if env["error"] else []
    )


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_a_30_environment_dry_run_opens_with_its_summary_and_details_only_its_problems(
    sandbox: EmbeddedSandbox,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    sandbox.seed(FLEET)
    out, report = _dry_run(sandbox, monkeypatch, capsys, tmp_path, FLEET)
    lines = out.splitlines()
    envs = {env["suffix"]: env for env in report["environments"]}
    failed = [suffix for suffix, env in envs.items() if env["status"] == "failed"]
    assert len(failed) == BLOCKED

    # The summary first: a row per environment, in the run's order.
    assert lines[0] == "summary: 30 environment(s)"
    end = lines.index("changes per step")
    summary = lines[:end]
    rows = [line for line in summary if re.match(r"pr-\d+ ", line)]
    assert [row.split()[0] for row in rows] == FLEET
    assert len(summary) <= len(FLEET) + 8  # the rows, their header, the reason said once
    for row in rows:
        suffix, status, functions = row.split()[:3]
        assert (status, functions) == (envs[suffix]["status"], "1")
    # Every failed row says why, in words, beside it; the whole reason once under the table.
    for suffix in failed:
        (row,) = [row for row in rows if row.startswith(f"{suffix} ")]
        (reason,) = set(_reasons(envs[suffix]))
        assert "1 blocked" in row
        assert reason[:24] in row, row
        assert re.search(r"\[\d+\]$", row)
    (whole,) = {reason for suffix in failed for reason in _reasons(envs[suffix])}
    assert f"reserved_concurrency blocked: {whole}" in _flat("\n".join(summary))
    # Then the totals per step and the money, before any environment's details.
    first_detail = next(i for i, line in enumerate(lines) if _DETAIL.match(line))
    totals = lines[end:first_detail]
    assert "money per month" in totals
    (blocked_step,) = [line for line in totals if line.startswith("reserved_concurrency ")]
    assert blocked_step.split()[-1] == str(BLOCKED)
    # Details only for the problems, each blocked change with its reason under it.
    detailed = [_DETAIL.match(line)[1] for line in lines if _DETAIL.match(line)]  # type: ignore[index]
    assert detailed == _problems(report)
    assert set(failed) <= set(detailed) < set(FLEET)
    assert _flat("\n".join(lines[first_detail:])).count(f"blocked: {whole}") == BLOCKED
    assert f"details: {len(detailed)} of 30 environments" in _flat(out)
    # The order of its length: the summary and totals, then a bounded block per problem.
    assert len(lines) <= len(FLEET) + 40 + 60 * len(detailed)
    # Money in words everywhere people read it; JSON keeps the signed numbers.
    assert "$-" not in out
    headline = _flat(out).rsplit(" · ", 1)[1]
    assert re.match(r"would (save|cost|be between costing) \$", headline), headline
    finished = [json.loads(line) for line in (tmp_path / "run.log").read_text().splitlines()]
    (event,) = [e for e in finished if e.get("event") == "run.finished"]
    assert headline.startswith(event["savings"])  # the log says it as the headline does
    assert isinstance(report["savings"]["monthly_usd"], float)

    # --details none: the summary and totals alone, a line or so per environment.
    quiet, _ = _dry_run(sandbox, monkeypatch, capsys, tmp_path, FLEET, "--details", "none")
    assert not any(_DETAIL.match(line) for line in quiet.splitlines())
    assert len(quiet.splitlines()) <= len(FLEET) + 35


def _known_names(report: dict[str, Any]) -> set[str]:
    """Every name the report may print: environments, functions, resources, settings."""
    names = set()
    for env in report["environments"]:
        names.add(env["suffix"])
        for fn in env["functions"]:
            names.add(fn["name"])
        for change in env["changes"] + [c for fn in env["functions"] for c in fn["changes"]]:
            names.update({change["resource"], change["setting"]})
    return names


def _token_starts(line: str) -> dict[int, str]:
    return {m.start(): m.group() for m in re.finditer(r"\S+", line)}


def test_at_80_columns_no_name_is_broken_mid_token(
    sandbox: EmbeddedSandbox,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    fleet = [*FLEET[:24], "feature-checkout-redesign-42", "release-2026-11-platform-v2"]
    sandbox.seed(fleet)
    out, report = _dry_run(
        sandbox, monkeypatch, capsys, tmp_path, fleet, "--details", "all", columns=80
    )
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80
    names = _known_names(report)
    shown = {token.strip(",;:()[]`'") for line in lines for token in line.split()}
    for suffix in fleet:  # every environment's name, whole, in the summary
        assert suffix in shown
    for token in shown:
        head, _, tail = token.partition("…")
        if head and tail:  # a name shortened in its middle: both its ends are the name's
            assert any(n.startswith(head) and n.endswith(tail) for n in names), token
    # A name broken across lines would leave its pieces at one column of adjacent lines
    # (`lambda-function-pr-2` over `6`): no two such pieces make a name.
    for above, below in itertools.pairwise(lines):
        starts = _token_starts(above)
        for column, piece in _token_starts(below).items():
            if column in starts and column > 0:
                assert starts[column] + piece not in names, (above, below)
                assert f"{starts[column]}{piece}".rstrip(",") not in names, (above, below)


def test_the_markdown_of_500_environments_fits_a_pull_request_comment(
    sandbox: EmbeddedSandbox,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    fleet = [f"pr-{i}" for i in range(1, 501)]
    sandbox.seed(fleet)
    out, report = _dry_run(sandbox, monkeypatch, capsys, tmp_path, fleet, "--output", "markdown")
    assert len(out) < 65_000 < GITHUB_COMMENT_LIMIT
    title, blank, headline = out.splitlines()[:3]
    assert (title, blank) == (f"# lambda-optimizer run {report['run_id']}", "")
    assert headline.startswith(f"run {report['run_id']} · dry run, planned with failures · ")
    summary = out.split("## summary", 1)[1].split("## details", 1)[0]
    rows = [line for line in summary.splitlines() if line.startswith("| pr-")]
    assert [row.split(" | ")[0].removeprefix("| ") for row in rows] == fleet  # whole
    failed = [env["suffix"] for env in report["environments"] if env["status"] == "failed"]
    assert len(failed) > 400
    for row in rows:
        if row.split(" | ")[1] == "failed":
            assert re.search(r"\[\d+\] \|$", row)  # its reason's number; the words below
    assert "- [1] reserved_concurrency blocked: reserving 50 would leave" in summary
    # What is cut, and where all of it is.
    details = out.split("## details", 1)[1]
    assert "**Left out:** the details of" in details
    assert f"runs/{report['run_id']}/report.json" in details
    blocks = details.count("<details>")
    assert blocks == details.count("</details>") < len(fleet)
    assert f"the details of {len(fleet) - blocks} of {len(fleet)} environments" in details
    assert "$-" not in out
