"""Decisions from evidence, planned purely: each rule, each guardrail mode, the savings range."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from optimizer_async.definitions.targets import GuardrailMode, Guardrails, Targets
from optimizer_async.steps.base import Decision, PlanContext
from optimizer_async.steps.evidence import METRICS, REPORT_LINES, ReportLines, UsageMetrics
from optimizer_async.steps.function_configuration import FunctionConfiguration
from optimizer_async.steps.guardrails import (
    concurrency_floor,
    cpu_slowdown,
    memory_floor_mb,
    timeout_floor_s,
)
from optimizer_async.steps.plan import EnvironmentPlan, plan_environment
from optimizer_async.steps.registry import REGISTRY
from tests.unit.builders import (
    baseline_environment,
    steady_metrics,
    steady_report_lines,
    with_part,
)

FUNCTION = "lambda-function-dev"
RULES = Guardrails()


def _plan(
    metrics: UsageMetrics | None = None,
    lines: ReportLines | None = None,
    mode: GuardrailMode = "adjust",
) -> EnvironmentPlan:
    env = baseline_environment("dev")
    fn = env.functions[0]
    fn = with_part(fn, METRICS, metrics or steady_metrics())
    fn = with_part(fn, REPORT_LINES, lines or steady_report_lines())
    targets = Targets(guardrails=Guardrails(mode=mode))
    return plan_environment(replace(env, functions=(fn,)), targets, tuple(REGISTRY))


def _decisions(plan: EnvironmentPlan) -> dict[str, Decision]:
    return {d.setting: d for fn in plan.functions for s in fn.steps.values() for d in s.decisions}


def _after(plan: EnvironmentPlan, setting: str) -> Any:
    found = [c.after for c in plan.changes if c.resource == FUNCTION and c.setting == setting]
    return found[0] if found else None


def test_the_rules_arithmetic() -> None:
    assert memory_floor_mb(1400, RULES) == 1792  # 1750 rounded up to 64 MB
    assert memory_floor_mb(300, RULES) == 384
    assert cpu_slowdown(3008, 1024) == pytest.approx(1769 / 1024)
    assert cpu_slowdown(3008, 2048) == 1.0  # both at or above one full vCPU
    # p99 45 s x 1.73 x 1.5 = 116.6 s; max 60 s x 1.73 x 1.1 = 114.0 s
    assert timeout_floor_s(45_000, 60_000, 1769 / 1024, RULES) == 117
    assert timeout_floor_s(900, 2_000, 1.0, RULES) == 3
    assert concurrency_floor(120, RULES) == 180


def test_a_steady_function_gets_exactly_the_targets() -> None:
    plan = _plan()
    assert (_after(plan, "MemorySize"), _after(plan, "Timeout")) == (1024, 30)
    assert _after(plan, "ReservedConcurrentExecutions") == 50
    assert {d.risk for d in _decisions(plan).values()} == {"none"}


def test_memory_never_below_max_used_with_headroom() -> None:
    hungry = steady_report_lines(memory_max_mb=1400.0, memory_p99_mb=1350.0)
    decision = _decisions(_plan(lines=hungry))["MemorySize"]
    assert (decision.chosen, decision.risk) == (1792, "adjusted")
    assert "max memory used 1,400 MB x 1.25 needs >= 1792 MB" in decision.why
    assert _after(_plan(lines=hungry), "MemorySize") == 1792


def test_timeout_covers_the_slow_functions_projected_worst_case() -> None:
    slow = steady_metrics(duration_p99_ms=45_000.0, duration_max_ms=60_000.0)
    plan = _plan(metrics=slow)
    # Memory drops to 1024 MB: fully CPU-bound work would run 1769/1024 times longer.
    assert _after(plan, "Timeout") == 117
    decision = _decisions(plan)["Timeout"]
    assert decision.risk == "adjusted"
    assert "x 1.73 if CPU-bound at 1024 MB" in decision.why


def test_a_reservation_never_caps_below_the_peak() -> None:
    plan = _plan(metrics=steady_metrics(concurrency_max=120, throttles=37))
    assert _after(plan, "ReservedConcurrentExecutions") == 180
    notes = " | ".join(n for fn in plan.functions for s in fn.steps.values() for n in s.notes)
    assert "37 throttles in the last 14 days already" in notes


def test_an_idle_function_gets_the_targets_marked_unknown() -> None:
    idle = steady_metrics(
        invocations=0, errors=0, duration_p99_ms=None, duration_max_ms=None, concurrency_max=None
    )
    lines = ReportLines(source="no invocations in the window: nothing to read")
    plan = _plan(metrics=idle, lines=lines)
    decisions = _decisions(plan)
    assert {d.risk for d in decisions.values()} == {"unknown"}
    assert "no invocations in the last 14 days" in decisions["MemorySize"].why
    assert (_after(plan, "MemorySize"), _after(plan, "Timeout")) == (1024, 30)


def test_strict_skips_what_the_evidence_does_not_support() -> None:
    hungry = steady_report_lines(memory_max_mb=1400.0)
    plan = _plan(lines=hungry, mode="strict")
    decision = _decisions(plan)["MemorySize"]
    assert (decision.chosen, decision.risk) == (None, "skipped")
    assert "skipped (--guardrails strict)" in decision.why
    assert _after(plan, "MemorySize") is None
    assert _after(plan, "Timeout") == 30  # the timeout is safe at 3008 MB: still tightened
    unknown = ReportLines(source="metrics only: budget")
    assert _after(_plan(lines=unknown, mode="strict"), "MemorySize") is None


def test_off_applies_the_targets_and_warns() -> None:
    plan = _plan(lines=steady_report_lines(memory_max_mb=1400.0), mode="off")
    assert _after(plan, "MemorySize") == 1024
    assert _decisions(plan)["MemorySize"].risk == "at risk"
    notes = [n for fn in plan.functions for s in fn.steps.values() for n in s.notes]
    assert any(n.startswith("WARNING MemorySize: max memory used 1,400 MB") for n in notes)


def test_a_floor_at_or_above_the_current_value_keeps_it() -> None:
    huge = steady_report_lines(memory_max_mb=2900.0)  # needs 3648 MB > 3008 today
    decision = _decisions(_plan(lines=huge))["MemorySize"]
    assert (decision.chosen, decision.risk) == (None, "skipped")
    assert "not below the current 3008: kept" in decision.why


def test_a_function_in_use_whose_memory_was_not_read_keeps_it() -> None:
    lines = ReportLines(source="metrics only: a 80.0 GB scan would pass the run's budget")
    plan = _plan(lines=lines)
    decision = _decisions(plan)["MemorySize"]
    assert (decision.chosen, decision.risk) == (None, "skipped")
    assert "memory used unknown: metrics only: a 80.0 GB scan" in decision.why
    assert decision.why.endswith("for a function in use: kept")
    assert _after(plan, "MemorySize") is None
    assert _after(plan, "Timeout") == 30  # the metrics still decide the timeout
    off = _decisions(_plan(lines=lines, mode="off"))["MemorySize"]
    assert (off.chosen, off.risk) == (1024, "at risk")


def test_without_a_p99_the_maximum_stands_in_for_it() -> None:
    slow = steady_metrics(duration_p99_ms=None, duration_max_ms=60_000.0)
    decision = _decisions(_plan(metrics=slow))["Timeout"]
    assert decision.chosen == 156  # 60 s x 1.73 x 1.5: the maximum taken as the p99
    assert decision.why.startswith(
        "maximum 60.00 s x 1.5 (standing in for the p99: the metrics hold none), x 1.73 if"
    )
    unable = steady_metrics(
        duration_p99_ms=None,
        duration_max_ms=60_000.0,
        p99_unavailable="the endpoint computes no p99",
    )
    why = _decisions(_plan(metrics=unable))["Timeout"].why
    assert "(standing in for the p99: the endpoint computes no p99)" in why


def test_alarms_that_would_fire_at_once_are_said() -> None:
    breaching = steady_metrics(errors=60_000, duration_p99_ms=45_000.0)
    notes = [n for fn in _plan(metrics=breaching).functions for n in fn.steps["alarms"].notes]
    assert any("error-rate alarm will fire at once: 2.00 %" in n for n in notes)
    assert any("duration alarm will fire at once: p99 45,000 ms" in n for n in notes)
    assert [n for fn in _plan().functions for n in fn.steps["alarms"].notes] == []


def test_savings_are_a_range_unless_the_evidence_settles_it() -> None:
    env = baseline_environment("dev")
    fn = env.functions[0]
    ctx = PlanContext(env, Targets())
    step = FunctionConfiguration()
    changes = [c for c in step.plan(ctx, fn).changes if c.setting == "MemorySize"]
    (line,) = [m for m in step.money(ctx, fn, changes) if m.label == "compute"]
    # 3008 -> 1024 MB: I/O-bound frees 1984 MB; fully CPU-bound, 3008 - 1769 = 1239 MB.
    assert line.low_usd is not None
    assert line.low_usd / line.monthly_usd == pytest.approx(1239 / 1984)
    assert "14 days of CloudWatch usage" in (line.basis or "")
    settled = [replace(changes[0], after=2048)]  # above one vCPU: no slowdown
    (line,) = [m for m in step.money(ctx, fn, settled) if m.label == "compute"]
    assert line.low_usd is None


def test_once_applied_the_decisions_plan_nothing_more() -> None:
    """Verification re-plans with the function re-read and the evidence as it was read:
    a value chosen from evidence must not look like unfinished work."""
    slow = steady_metrics(duration_p99_ms=45_000.0, duration_max_ms=60_000.0, concurrency_max=120)
    hungry = steady_report_lines(memory_max_mb=1400.0)
    plan = _plan(metrics=slow, lines=hungry)
    env = baseline_environment("dev")
    fn = env.functions[0]
    state = replace(
        fn.state,
        memory_mb=_after(plan, "MemorySize"),
        timeout_s=_after(plan, "Timeout"),
        reserved_concurrency=_after(plan, "ReservedConcurrentExecutions"),
    )
    fn = with_part(with_part(replace(fn, state=state), METRICS, slow), REPORT_LINES, hungry)
    again = plan_environment(replace(env, functions=(fn,)), Targets(), tuple(REGISTRY))
    settings = {c.setting for c in again.changes if c.resource == FUNCTION}
    assert not settings & {"MemorySize", "Timeout", "ReservedConcurrentExecutions"}
