"""A run's status says what it did, and says it alike everywhere: the report's last line, its
JSON `status`, `runs` (JSON and table) and the service's `lambda_optimizer_runs_total`. A run
whose every environment another run holds exits 1. A run killed with SIGKILL shows in `runs`
as interrupted, and once rolled back as rolled back."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from prometheus_client.parser import text_string_to_metric_families

from optimizer_async import cli
from optimizer_async.aws.gateway import AwsSettings
from optimizer_async.execution.signals import StopRequest
from optimizer_async.records import leases
from optimizer_async.records.state import LocalStateStore, run_key
from optimizer_async.reporting.report import render
from optimizer_async.runs.listing import list_runs
from optimizer_async.runs.orchestration import Controls, Request, replay_once
from optimizer_async.runs.replays import FreshPlan
from optimizer_async.sandbox.server import EmbeddedSandbox
from optimizer_async.service.metrics import Metrics
from tests.conftest import REGION
from tests.integration.conftest import Optimize, Unique

Seed = Callable[..., list[str]]

# status -> how the headline and `runs` say it, and the exit code.
EXPECTED = {
    "planned": ("dry run", 0),
    "planned_with_failures": ("dry run, planned with failures", 1),
    "converged": ("applied", 0),
    "partly_applied": ("partly applied", 1),
    "failed": ("failed", 1),
    "stopped": ("stopped", 143),
    "rolled_back": ("rolled back", 0),
    "held": ("held by another run", 1),
    "nothing_to_do": ("nothing to do", 0),
}


class Runs:
    """Runs through the command line, each with its JSON report and its report's headline."""

    def __init__(self, optimize: Optimize, tmp_path: Path) -> None:
        self.optimize, self.tmp_path = optimize, tmp_path
        self.headlines: dict[str, str] = {}
        self.codes: dict[str, int] = {}

    def __call__(self, *args: str) -> dict[str, Any]:
        markdown = self.tmp_path / "report.md"
        code, report = self.optimize(*args, "--report-file", str(markdown))
        self.headlines[report["run_id"]] = _headline(markdown.read_text())
        self.codes[report["run_id"]] = code
        return report


def _headline(markdown: str) -> str:
    """The report's last line (Markdown shows it under the title)."""
    title, blank, headline = markdown.splitlines()[:3]
    assert title.startswith("# lambda-optimizer run ")
    assert blank == ""
    return headline


def assert_agree(
    status: str,
    report: dict[str, Any],
    headline: str,
    code: int,
    optimize: Optimize,
    capsys: pytest.CaptureFixture[str],
    state: Path,
) -> None:
    """The headline, the JSON report, `runs` (JSON and Markdown) and the service's metrics
    all say `status`, and the exit code is the status's."""
    text, exit_code = EXPECTED[status]
    run_id = report["run_id"]
    assert report["status"] == status
    assert code == exit_code
    assert headline.startswith(f"run {run_id} · ")
    assert f" · {text} · " in headline or f" · {text} by " in headline, headline

    _, listed = optimize("runs")
    by_id = {run["run_id"]: run for run in listed["runs"]}
    assert by_id[run_id]["status"] == status
    capsys.readouterr()
    listing = state.parent / "listing.json"  # and in the file, in the format its name says
    assert cli.main(["runs", "--output", "markdown", "--state-dir", str(state),
                     "--report-file", str(listing)]) == 0  # fmt: skip
    (row,) = [line for line in capsys.readouterr().out.splitlines() if f"| {run_id} |" in line]
    assert row.split(" | ")[2] == text
    filed = {run["run_id"]: run for run in json.loads(listing.read_text())["runs"]}
    assert filed[run_id]["status"] == status

    metrics = Metrics()
    metrics.observe_report(report, "cycle", estimate=True)
    families = {f.name: f for f in text_string_to_metric_families(metrics.text().decode())}
    (run,) = [s for s in families["lambda_optimizer_runs"].samples if s.name.endswith("_total")]
    assert (run.labels["status"], run.value) == (status, 1.0)
    bounds = {
        s.labels["bound"]: s.value
        for s in families["lambda_optimizer_savings_estimated_monthly_usd"].samples
    }
    savings = report["savings"]
    assert bounds == {
        "low": savings.get("monthly_usd_low", savings["monthly_usd"]),
        "high": savings["monthly_usd"],
    }


@pytest.fixture
def runs(optimize: Optimize, tmp_path: Path) -> Runs:
    return Runs(optimize, tmp_path)


def _agree(
    status: str,
    report: dict[str, Any],
    runs: Runs,
    optimize: Optimize,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    run_id = report["run_id"]
    headline, code = runs.headlines[run_id], runs.codes[run_id]
    assert_agree(status, report, headline, code, optimize, capsys, tmp_path / "state")


def test_a_dry_run_is_planned_and_its_range_is_exported_whole(
    seed: Seed, runs: Runs, optimize: Optimize, unique: Unique,
    capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:  # fmt: skip
    (dev,) = seed(unique("dev"))
    report = runs("--suffix", dev, "--dry-run")
    _agree("planned", report, runs, optimize, capsys, tmp_path)
    savings = report["savings"]
    assert savings["monthly_usd_low"] < savings["monthly_usd"]  # a range: both ends exported
    assert report["api_calls"]["writes"] == 0


def test_a_dry_run_with_an_environment_that_cannot_be_planned(
    seed: Seed, runs: Runs, optimize: Optimize, unique: Unique,
    capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:  # fmt: skip
    (dev,) = seed(unique("dev"))
    report = runs("--suffix", f"{dev},{unique('gone')}", "--dry-run")
    _agree("planned_with_failures", report, runs, optimize, capsys, tmp_path)
    assert ", 1 failed · " in runs.headlines[report["run_id"]]
    assert "(0 writes)" in runs.headlines[report["run_id"]]


def test_an_apply_a_re_run_and_a_rollback(
    seed: Seed, runs: Runs, optimize: Optimize, unique: Unique,
    capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:  # fmt: skip
    (dev,) = seed(unique("dev"))
    applied = runs("--suffix", dev)
    _agree("converged", applied, runs, optimize, capsys, tmp_path)
    again = runs("--suffix", dev)
    _agree("nothing_to_do", again, runs, optimize, capsys, tmp_path)
    undone = runs("rollback", "--run-id", applied["run_id"])
    _agree("rolled_back", undone, runs, optimize, capsys, tmp_path)
    assert f"rollback of {applied['run_id']} · rolled back · " in runs.headlines[undone["run_id"]]

    _, listed = optimize("runs")
    by_id = {run["run_id"]: run for run in listed["runs"]}
    assert by_id[applied["run_id"]]["status"] == "rolled_back"  # what it did was undone
    assert by_id[applied["run_id"]]["recorded_status"] == "converged"
    assert by_id[applied["run_id"]]["rolled_back_by"] == undone["run_id"]
    assert by_id[again["run_id"]]["status"] == "nothing_to_do"  # never rolled back itself


def test_an_apply_in_which_one_environment_fails_is_partly_applied(
    seed: Seed, runs: Runs, optimize: Optimize, unique: Unique,
    capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:  # fmt: skip
    (dev,) = seed(unique("dev"))
    report = runs("--suffix", f"{dev},{unique('gone')}")
    _agree("partly_applied", report, runs, optimize, capsys, tmp_path)
    assert report["api_calls"]["writes"] > 0


def test_an_apply_that_changes_nothing_and_fails_is_failed(
    runs: Runs, optimize: Optimize, unique: Unique,
    capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:  # fmt: skip
    report = runs("--suffix", unique("gone"))
    _agree("failed", report, runs, optimize, capsys, tmp_path)
    assert report["api_calls"]["writes"] == 0


def test_a_run_whose_every_environment_is_held_exits_1(
    seed: Seed, runs: Runs, optimize: Optimize, unique: Unique, account_id: str,
    capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:  # fmt: skip
    dev, staging = seed(unique("dev"), unique("staging"))
    other = leases.Holder(
        "20990101T000000Z-0a0a0a",
        socket.gethostname(),
        os.getpid(),  # alive: this very process
        (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
        leases.PROCESSES,
    )
    store = leases.LocalLeases(tmp_path / "state")
    for suffix in (dev, staging):
        key = leases.lease_key(account_id, REGION, suffix)
        assert anyio.run(store.take, key, other, datetime.now(UTC)) is None
    report = runs("--suffix", f"{dev},{staging}")
    _agree("held", report, runs, optimize, capsys, tmp_path)
    assert ", 0 failed, 2 held · " in runs.headlines[report["run_id"]]
    assert report["api_calls"]["writes"] == 0

    anyio.run(store.release, leases.lease_key(account_id, REGION, staging), other)
    partly = runs("--suffix", f"{dev},{staging}")  # one held, the other done: not a failure
    assert (partly["status"], runs.codes[partly["run_id"]]) == ("converged", 0)
    assert ", 0 failed, 1 held · " in runs.headlines[partly["run_id"]]


def test_a_run_stopped_by_sigterm(
    seed: Seed, optimize: Optimize, unique: Unique, endpoint_url: str,
    capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:  # fmt: skip
    (dev,) = seed(unique("dev"))
    state = tmp_path / "state"
    config = cli.parse_config(
        ["--suffix", dev, "--state-dir", str(state), "--no-progress", "--log-level", "warning"],
        {"AWS_ENDPOINT_URL": endpoint_url},
    )
    stop = StopRequest()
    stop.signum = signal.SIGTERM  # asked before the first write: none starts
    settings = AwsSettings(region=REGION, endpoint_url=endpoint_url)
    stopped = anyio.run(replay_once, Request(FreshPlan(config)), settings, Controls(stop=stop))
    report = stopped.to_json()
    headline = _headline(render(stopped, "markdown"))
    assert " · stopped by SIGTERM · " in headline
    assert_agree("stopped", report, headline, stopped.exit_code, optimize, capsys, state)
    assert report["api_calls"]["writes"] == 0


@pytest.mark.sandbox_only("a run killed part way, on the sandbox's update windows")
def test_a_run_killed_with_sigkill_is_interrupted_then_rolled_back_in_runs(
    sandbox: EmbeddedSandbox, seed: Seed, optimize: Optimize, tmp_path: Path
) -> None:
    seed("dev")
    environ = {k: v for k, v in os.environ.items() if k != "ENVIRONMENT_SUFFIX"}
    environ["AWS_ENDPOINT_URL"] = sandbox.endpoint_url
    with sandbox.configured(update_s=30.0):  # killed while its updates are in flight
        process = subprocess.Popen(
            [sys.executable, "-m", "optimizer_async", "--suffix", "dev",
             "--log-format", "json", "--state-dir", str(tmp_path / "state")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environ,
        )  # fmt: skip
        try:
            assert process.stderr is not None
            for line in process.stderr:
                if json.loads(line).get("event") == "step.applied":
                    break
            process.send_signal(signal.SIGKILL)
            process.communicate(timeout=60)
        finally:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    (run_dir,) = (tmp_path / "state" / "runs").iterdir()
    killed = run_dir.name
    assert json.loads((run_dir / "run.json").read_text())["status"] == "running"  # as left

    _, listed = optimize("runs")
    (shown,) = listed["runs"]
    assert (shown["status"], shown["recorded_status"]) == ("interrupted", "running")

    code, rollback = optimize("rollback", "--run-id", killed)
    assert (code, rollback["status"]) == (0, "rolled_back")
    _, listed = optimize("runs")
    by_id = {run["run_id"]: run for run in listed["runs"]}
    assert by_id[killed]["status"] == "rolled_back"
    assert by_id[killed]["rolled_back_by"] == rollback["run_id"]
    assert by_id[rollback["run_id"]]["status"] == "rolled_back"


def test_a_running_record_elsewhere_is_interrupted_once_its_leases_lapse(tmp_path: Path) -> None:
    """A holder in another process space (another machine) cannot be asked whether its
    process lives: its leases say it. A dry run elsewhere holds none: it stays running."""
    store = LocalStateStore(tmp_path)
    now = datetime(2026, 12, 1, tzinfo=UTC)
    run_id = "20261201T000000Z-abcdef"
    elsewhere = {"host": "another-machine", "pid": 1, "processes": "another-boot/4026531836"}
    record = {
        "run_id": run_id, "command": "run", "account": "123456789012", "region": REGION,
        "dry_run": False, "suffixes": ["dev"], "status": "running", "holder": elsewhere,
        "leased": ["dev"],
    }  # fmt: skip
    dry = {**record, "run_id": "20261201T000000Z-fedcba", "dry_run": True, "leased": []}
    lease = leases.Holder(run_id, "another-machine", 1, (now + timedelta(seconds=60)).isoformat())

    async def statuses(at: datetime) -> dict[str, str]:
        return {str(run["run_id"]): str(run["status"]) for run in await list_runs(store, at)}

    async def main() -> None:
        await store.write(run_key(run_id, "run.json"), record)
        await store.write(run_key(str(dry["run_id"]), "run.json"), dry)
        key = leases.lease_key("123456789012", REGION, "dev")
        assert await leases.LocalLeases(tmp_path).take(key, lease, now) is None
        assert await statuses(now) == {run_id: "running", dry["run_id"]: "running"}
        later = now + timedelta(seconds=61)  # it stopped renewing: lapsed
        assert await statuses(later) == {run_id: "interrupted", dry["run_id"]: "running"}

    anyio.run(main)


@pytest.mark.sandbox_only("the service against the sandbox")
async def test_the_service_says_the_status_its_report_says(
    sandbox: EmbeddedSandbox, seed: Seed, unique: Unique, tmp_path: Path
) -> None:
    from tests.integration.test_service import _service, _until  # the service's own helpers

    (dev,) = seed(unique("dev"))
    args = ("--suffix", f"{dev},{unique('gone')}", "--dry-run", "--interval", "1h")
    async with _service(sandbox, tmp_path, *args) as (_, http):

        async def cycle() -> list[dict[str, Any]]:
            runs = (await http.get("/runs")).json()["runs"]
            return [run for run in runs if run["status"] not in ("running", "queued")]

        (listed,) = await _until(cycle)
        report = (await http.get(f"/runs/{listed['run_id']}")).json()
        text = (await http.get("/metrics")).text
    assert listed["status"] == report["status"] == "planned_with_failures"
    families = {f.name: f for f in text_string_to_metric_families(text)}
    runs = {
        (s.labels["trigger"], s.labels["status"]): s.value
        for s in families["lambda_optimizer_runs"].samples
        if s.name.endswith("_total")
    }
    assert runs == {("cycle", "planned_with_failures"): 1.0}
    bounds = {
        s.labels["bound"]: s.value
        for s in families["lambda_optimizer_savings_estimated_monthly_usd"].samples
    }
    savings = report["savings"]
    assert bounds == {"low": savings["monthly_usd_low"], "high": savings["monthly_usd"]}
    assert bounds["low"] < bounds["high"]


def test_runs_shows_a_run_rolled_back_only_by_a_whole_rollback_that_stands(tmp_path: Path) -> None:
    """Not by a dry run of one, nor by the bake's (it puts back only what got worse); a
    rollback written before `rolled_back` existed said `converged`; a rollback rolled back
    in turn leaves the run's changes in place again."""
    store = LocalStateStore(tmp_path)
    records: list[dict[str, Any]] = [
        {"run_id": "20261201T000001Z-000001", "command": "run", "status": "converged"},
        {"run_id": "20261201T000002Z-000002", "command": "run", "status": "converged"},
        {"run_id": "20261201T000003Z-000003", "command": "run", "status": "partly_applied"},
        {"run_id": "20261201T000004Z-000004", "command": "rollback", "status": "converged",
         "rollback_of": "20261201T000001Z-000001"},
        {"run_id": "20261201T000005Z-000005", "command": "rollback", "status": "planned",
         "rollback_of": "20261201T000002Z-000002", "dry_run": True},
        {"run_id": "20261201T000006Z-000006", "command": "rollback", "status": "rolled_back",
         "rollback_of": "20261201T000003Z-000003", "trigger": "bake"},
        {"run_id": "20261201T000007Z-000007", "command": "rollback", "status": "rolled_back",
         "rollback_of": "20261201T000002Z-000002"},
        {"run_id": "20261201T000008Z-000008", "command": "rollback", "status": "rolled_back",
         "rollback_of": "20261201T000007Z-000007"},
    ]  # fmt: skip

    async def main() -> dict[str, str]:
        for record in records:
            await store.write(run_key(str(record["run_id"]), "run.json"), record)
        return {str(run["run_id"])[-1]: str(run["status"]) for run in await list_runs(store)}

    assert anyio.run(main) == {
        "1": "rolled_back",  # by 4, as it said then
        "2": "converged",  # 5 was a dry run; 7 undid it, then 8 undid 7
        "3": "partly_applied",  # only the bake's rollback
        "4": "converged",
        "5": "planned",
        "6": "rolled_back",
        "7": "rolled_back",
        "8": "rolled_back",
    }
