"""Decisions from evidence, end to end: a seeded mixed fleet (one function per usage profile),
its evidence read back exactly, the guardrails per mode, and - with the sandbox's workload
model - what the changes do to the traffic that follows."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from optimizer_async.sandbox.server import EmbeddedSandbox
from optimizer_async.sandbox.workload.profiles import NAMED
from tests.integration.conftest import Optimize

pytestmark = pytest.mark.sandbox_only("the workload model's evidence, read back exactly")
Seed = Callable[..., list[str]]
PROFILES = ("steady", "memory-hungry", "slow", "bursty", "idle")
SUFFIXES = ("steady", "hungry", "slow", "bursty", "idle")
FUNCTIONS = {suffix: f"lambda-function-{suffix}" for suffix in SUFFIXES}


@pytest.fixture
def fleet(seed: Seed) -> list[str]:
    return seed(*SUFFIXES, profiles=PROFILES)


def _functions(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {fn["name"]: fn for env in report["environments"] for fn in env["functions"]}


def _after(function: dict[str, Any], setting: str) -> Any:
    found = [c["after"] for c in function["changes"] if c["setting"] == setting]
    return found[0] if found else None


def _decision(function: dict[str, Any], setting: str) -> dict[str, Any]:
    (decision,) = [d for d in function["decisions"] if d["setting"] == setting]
    return dict(decision)


def _run(optimize: Optimize, fleet: list[str], *args: str) -> dict[str, dict[str, Any]]:
    code, report = optimize("--suffix", ",".join(fleet), *args)
    assert code == 0, json.dumps(report, indent=1)
    return _functions(report)


def test_the_evidence_read_back_is_what_was_seeded(
    sandbox: EmbeddedSandbox, fleet: list[str], optimize: Optimize
) -> None:
    sandbox.reset_stats()
    functions = _run(optimize, fleet, "--dry-run")
    for suffix, profile_name in zip(SUFFIXES, PROFILES, strict=True):
        profile = NAMED[profile_name]
        evidence = functions[FUNCTIONS[suffix]]["evidence"]
        metrics, lines = evidence["metrics"], evidence["report_lines"]
        invocations = 14 * profile.invocations_per_day
        assert metrics["lookback_days"] == 14
        assert metrics["invocations"] == pytest.approx(invocations)
        assert metrics["errors"] == pytest.approx(invocations * profile.error_rate)
        assert metrics["throttles"] == 0
        if profile_name == "idle":
            assert metrics["duration_p99_ms"] is None
            assert lines["memory_max_mb"] is None
            assert "no invocations" in lines["source"]
            continue
        assert metrics["duration_p99_ms"] == pytest.approx(profile.duration_p99_ms)
        assert metrics["duration_max_ms"] == pytest.approx(profile.duration_max_ms)
        assert metrics["concurrency_max"] == pytest.approx(profile.peak_concurrency)
        assert metrics["ingested_bytes"] == pytest.approx(
            invocations * profile.log_bytes_per_invocation
        )
        assert lines["source"] == "logs insights"
        assert lines["reports"] == pytest.approx(invocations)
        assert lines["memory_max_mb"] == pytest.approx(profile.memory_max_mb)
        assert lines["memory_p99_mb"] == pytest.approx(profile.memory_p99_mb)
        scan = lines["scan"]
        assert scan["bytes_scanned"] > 0
        assert scan["cost_usd"] == pytest.approx(scan["bytes_scanned"] / 1e9 * 0.005)

    stats = {(r["operation"], r["outcome"]): r["count"] for r in sandbox.stats()["calls"]}
    assert sandbox.stats()["writes"] == 0  # a dry run reads evidence, writes nothing
    # Four functions with traffic, one log group each: one query covers them all
    # (ceil(functions / 50) per window), and the account's 30-query limit is never met.
    assert stats[("StartQuery", "ok")] == math.ceil(4 / 50)
    assert not [key for key in stats if key[1] == "error:LimitExceededException"]


def test_each_function_gets_what_its_evidence_allows(
    fleet: list[str], optimize: Optimize, tmp_path: Path
) -> None:
    table = tmp_path / "plan.txt"
    functions = _run(optimize, fleet, "--dry-run", "--report-file", str(table))

    steady = functions[FUNCTIONS["steady"]]
    assert (_after(steady, "MemorySize"), _after(steady, "Timeout")) == (1024, 30)
    assert _after(steady, "ReservedConcurrentExecutions") == 50
    assert steady["risk"] == "none"

    hungry = functions[FUNCTIONS["hungry"]]
    max_used = hungry["evidence"]["report_lines"]["memory_max_mb"]
    assert _after(hungry, "MemorySize") >= 1.25 * max_used
    assert _after(hungry, "MemorySize") == math.ceil(1.25 * max_used / 64) * 64
    assert _decision(hungry, "MemorySize")["risk"] == "adjusted"

    slow = functions[FUNCTIONS["slow"]]
    metrics = slow["evidence"]["metrics"]
    slowdown = 1769 / 1024  # memory drops to 1024 MB: the worst case is fully CPU-bound
    worst = max(
        metrics["duration_p99_ms"] * slowdown * 1.5, metrics["duration_max_ms"] * slowdown * 1.1
    )
    assert _after(slow, "Timeout") * 1000 >= worst
    assert _decision(slow, "Timeout")["risk"] == "adjusted"
    assert any("duration alarm will fire at once" in note for note in slow["notes"])

    bursty = functions[FUNCTIONS["bursty"]]
    peak = bursty["evidence"]["metrics"]["concurrency_max"]
    assert _after(bursty, "ReservedConcurrentExecutions") >= 1.5 * peak

    idle = functions[FUNCTIONS["idle"]]
    assert (_after(idle, "MemorySize"), _after(idle, "Timeout")) == (1024, 30)
    assert {d["risk"] for d in idle["decisions"]} == {"unknown"}
    assert all("no invocations in the last 14 days" in d["why"] for d in idle["decisions"])

    text = table.read_text()  # the dry run's table: the evidence and the decisions
    assert "evidence" in text
    assert "decisions" in text
    for name in FUNCTIONS.values():
        assert name in text


def test_strict_skips_the_risky_changes_with_the_reason(
    fleet: list[str], optimize: Optimize
) -> None:
    functions = _run(optimize, fleet, "--dry-run", "--guardrails", "strict")
    hungry = functions[FUNCTIONS["hungry"]]
    assert _after(hungry, "MemorySize") is None
    assert "skipped (--guardrails strict)" in _decision(hungry, "MemorySize")["why"]
    assert _after(functions[FUNCTIONS["slow"]], "Timeout") is None
    assert _after(functions[FUNCTIONS["bursty"]], "ReservedConcurrentExecutions") is None
    assert _after(functions[FUNCTIONS["idle"]], "MemorySize") is None  # no evidence: skipped
    assert _after(functions[FUNCTIONS["steady"]], "MemorySize") == 1024


def test_off_applies_the_targets_and_warns(fleet: list[str], optimize: Optimize) -> None:
    functions = _run(optimize, fleet, "--dry-run", "--guardrails", "off")
    for suffix, setting in (
        ("hungry", "MemorySize"),
        ("slow", "Timeout"),
        ("bursty", "ReservedConcurrentExecutions"),
    ):
        function = functions[FUNCTIONS[suffix]]
        assert _after(function, setting) == {"MemorySize": 1024, "Timeout": 30}.get(setting, 50)
        assert _decision(function, setting)["risk"] == "at risk"
        assert any(note.startswith(f"WARNING {setting}:") for note in function["notes"])


def _broken(sandbox: EmbeddedSandbox) -> dict[str, list[str]]:
    """What the next day of traffic does to each function: its kinds of failure."""
    now = sandbox.model_now()
    outcomes = sandbox.workload_outcomes("us-east-1", now, now + timedelta(days=1))
    return {
        name: [kind for kind in ("out_of_memory", "timeouts", "throttles")
               if getattr(outcome, kind) > 0]
        for name, outcome in outcomes.items()
    }  # fmt: skip


def test_the_default_run_breaks_no_function(
    sandbox: EmbeddedSandbox, fleet: list[str], optimize: Optimize
) -> None:
    assert all(kinds == [] for kinds in _broken(sandbox).values())  # healthy at baseline
    _run(optimize, fleet)
    assert _broken(sandbox) == {name: [] for name in FUNCTIONS.values()}


def test_with_guardrails_off_the_risky_functions_break(
    sandbox: EmbeddedSandbox, fleet: list[str], optimize: Optimize
) -> None:
    _run(optimize, fleet, "--guardrails", "off")
    broken = _broken(sandbox)
    assert broken[FUNCTIONS["hungry"]] == ["out_of_memory"]
    assert broken[FUNCTIONS["slow"]] == ["timeouts"]
    assert broken[FUNCTIONS["bursty"]] == ["throttles"]
    assert broken[FUNCTIONS["steady"]] == broken[FUNCTIONS["idle"]] == []


def test_a_spent_scan_budget_falls_back_to_metrics_only(
    fleet: list[str], optimize: Optimize
) -> None:
    functions = _run(optimize, fleet, "--dry-run", "--max-scan-gb", "0")
    hungry = functions[FUNCTIONS["hungry"]]
    source = hungry["evidence"]["report_lines"]["source"]
    assert source.startswith("metrics only: a ")
    assert "--max-scan-gb" in source
    memory = _decision(hungry, "MemorySize")
    assert (memory["chosen"], memory["risk"]) == (None, "skipped")  # in use, memory unknown
    assert _after(hungry, "MemorySize") is None
    assert _decision(hungry, "Timeout")["risk"] == "none"  # the metrics still decide


def test_logs_insights_queries_stay_few_and_under_the_account_limit(
    sandbox: EmbeddedSandbox, seed: Seed, optimize: Optimize
) -> None:
    """60 functions in 20 environments: their metrics take one GetMetricData batch of 62,
    their REPORT lines ceil(60 / 50) = 2 queries, never a refused one."""
    suffixes = seed(*(f"e{index}" for index in range(20)), functions_per_env=3)
    sandbox.reset_stats()
    bases = ("lambda-function", "lambda-function2", "lambda-function3")
    code, report = optimize(
        "--suffix",
        ",".join(suffixes),
        "--dry-run",
        "--skip",
        "reserved_concurrency",  # 60 x 50 would not fit the account's 1,000: not the point here
        "--max-scan-gb",
        "500",  # 60 x 3.15 GB
        *(a for b in bases for a in ("--function-base", b)),
    )
    assert code == 0, report["environments"][0]
    functions = _functions(report)
    assert len(functions) == 60
    assert {fn["evidence"]["report_lines"]["source"] for fn in functions.values()} == {
        "logs insights"
    }
    calls = {(r["operation"], r["outcome"]): r["count"] for r in sandbox.stats()["calls"]}
    assert calls[("StartQuery", "ok")] == math.ceil(60 / 50)
    assert calls[("GetMetricData", "ok")] == 1
    assert not [key for key in calls if key[1] == "error:LimitExceededException"]


def test_data_put_as_an_emulator_is_seeded_is_read_as_put(
    sandbox: EmbeddedSandbox, optimize: Optimize
) -> None:
    """Seeded the way an emulator is (no workload model: Duration as statistic sets, a day
    of REPORT lines through PutLogEvents): a percentile over statistic sets has no
    datapoint, as on AWS, without an error or a retry, so the maximum decides the timeout;
    the REPORT lines decide the memory."""
    from optimizer_async.sandbox.seeder import Seeder

    Seeder(sandbox.endpoint_url, sandbox_control=False, profiles=("steady",)).seed(["emu"])
    sandbox.reset_stats()
    functions = _run(optimize, ["emu"], "--dry-run")
    emu = functions["lambda-function-emu"]
    metrics, lines = emu["evidence"]["metrics"], emu["evidence"]["report_lines"]
    assert metrics["duration_p99_ms"] is None
    assert metrics["duration_max_ms"] == pytest.approx(NAMED["steady"].duration_max_ms)
    assert _after(emu, "Timeout") == 30
    assert _decision(emu, "Timeout")["why"].startswith(
        "maximum 2.00 s x 1.5 (standing in for the p99: the metrics hold none)"
    )
    assert (lines["source"], lines["reports"]) == ("logs insights", 24)
    assert lines["memory_max_mb"] <= NAMED["steady"].memory_max_mb
    assert _after(emu, "MemorySize") == 1024  # the target: well above 1.25 x what was used
    calls = [r for r in sandbox.stats()["calls"] if r["operation"] == "GetMetricData"]
    assert {r["outcome"] for r in calls} == {"ok"}
    assert sum(r["count"] for r in calls) == 1  # one batch, asked once


@pytest.mark.aws_behaviour("metric-percentiles", "logs-insights-statistics")
def test_an_endpoint_without_percentiles_or_statistics_costs_two_questions(
    sandbox: EmbeddedSandbox, optimize: Optimize
) -> None:
    """An endpoint that answers every percentile with a 500 and runs no Logs Insights
    `stats` (LocalStack's gaps, imitated by the sandbox): the p99 is asked twice in the
    whole run, without retries, never per batch; the memory comes from the reports read
    event by event, the same as Logs Insights would have said."""
    mix = ["memory-hungry", "steady"] * 40  # 80 functions: two GetMetricData batches
    suffixes = [f"gap{index}" for index in range(len(mix))]
    sandbox.seed(suffixes, profiles=mix)
    with sandbox.configured(emulator_gaps=("percentiles", "insights-statistics")):
        sandbox.reset_stats()
        # (no reservations: 80 of them would not fit the account's unreserved concurrency)
        functions = _run(
            optimize,
            suffixes,
            "--dry-run",
            "--skip",
            "reserved_concurrency",
            "--max-scan-gb",
            "1000",
        )
        calls = sandbox.stats()["calls"]
    failed = [r for r in calls if r["operation"] == "GetMetricData" and r["outcome"] != "ok"]
    assert sum(r["count"] for r in failed) == 2
    assert sum(r["count"] for r in calls if r["operation"] == "FilterLogEvents") >= len(mix)
    for index, profile_name in enumerate(mix):
        function = functions[f"lambda-function-gap{index}"]
        metrics, lines = function["evidence"]["metrics"], function["evidence"]["report_lines"]
        assert metrics["duration_p99_ms"] is None
        assert (
            "standing in for the p99: the endpoint computes no p99"
            in _decision(function, "Timeout")["why"]
        )
        assert lines["source"].startswith("log events read one by one")
        assert lines["memory_max_mb"] == NAMED[profile_name].memory_max_mb
    hungry = functions["lambda-function-gap0"]
    assert _after(hungry, "MemorySize") == math.ceil(1.25 * 1_400 / 64) * 64  # its maximum


def test_data_put_for_a_seeded_function_changes_what_the_optimizer_sees(
    sandbox: EmbeddedSandbox, optimize: Optimize, client: Callable[..., Any]
) -> None:
    """The model says steady (300 MB, 2 s, a handful at once); what was put says otherwise:
    2,900 MB used, 28 s, 400 at once. The optimizer decides from both, as AWS would have
    had all of it: no lower memory, a timeout for 28 s, a reservation for 400."""
    from tests.aws_data import put_metrics, put_reports, usage

    (seeded,) = sandbox.seed(["put"], profiles=["steady"])
    (function,) = seeded.functions
    heavy = usage(200, (2_800, 2_900), (20_000.0, 28_000.0), peak_concurrency=400)
    put_reports(client("logs"), f"/aws/lambda/{function}", heavy)
    put_metrics(client("cloudwatch"), function, heavy)
    functions = _run(optimize, ["put"], "--dry-run")
    outcome = functions[function]
    lines, metrics = outcome["evidence"]["report_lines"], outcome["evidence"]["metrics"]
    assert lines["memory_max_mb"] == 2_900
    assert (metrics["duration_max_ms"], metrics["concurrency_max"]) == (28_000.0, 400.0)
    assert _after(outcome, "MemorySize") is None  # 2,900 x 1.25 is above today's 3,008
    assert _decision(outcome, "MemorySize")["risk"] == "skipped"
    assert _after(outcome, "Timeout") == math.ceil(28 * 1.1)  # no CPU lost at 3,008 MB
    assert _after(outcome, "ReservedConcurrentExecutions") == 600
