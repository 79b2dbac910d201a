"""Bake's judgement, pure: what counts as a function got worse since the change, measured
against its own pre-change evidence (`tests/integration/test_bake.py` bakes real runs)."""

from __future__ import annotations

from typing import Any

import pytest

from optimizer_async.execution.bake import BakeSettings, Seen, Watched, judge
from optimizer_async.steps.evidence import ReportLines, UsageMetrics

HOUR = 3600.0


def _watch(**changes: Any) -> Watched:
    before = UsageMetrics(14, 3_500_000, 7_000, 0, 900.0, 2_000.0, 0.0, 10.0, 0.0, 3008)
    lines = ReportLines("logs", memory_max_mb=300.0, billed_duration_max_ms=2_000.0)
    fields: dict[str, Any] = {
        "suffix": "dev",
        "function": "lambda-function-dev",
        "log_group": "/aws/lambda/lambda-function-dev",
        "before": before,
        "report_lines": lines,
        "memory_before": 3008,
        "memory_after": 512,
        "timeout_before": 30.0,
        "timeout_after": 10.0,
    }
    return Watched(**(fields | changes))


@pytest.mark.parametrize(
    ("seen", "watched", "reason"),
    [
        ({}, {}, None),
        ({"errors": 11}, {}, None),  # 1.1 %: within a point of its own 0.2 %
        ({"errors": 15}, {}, "error rate 1.50 % since the change, 0.20 % before"),
        ({"errors": 5, "invocations": 10}, {}, None),  # too few invocations to tell
        ({"throttles": 20}, {}, "throttled 1.96 % of invocations since the change"),
        ({"memory": 512.0}, {}, "out of memory since the change: an invocation used all 512 MB"),
        ({"memory": 512.0}, {"memory_before": 256}, None),  # 300 MB of 256: it ran out before
        ({"max_ms": 9_950.0}, {}, "timed out since the change: an invocation ran 9.9 s"),
        ({"max_ms": 9_950.0}, {"timeout_before": 2.0}, None),  # it timed out before too
        ({"alarm": True}, {}, "alarm error-rate-lambda-function-dev went to ALARM"),
        ({"alarm": True}, {"alarms_firing_at_once": True}, None),  # the plan said it would
    ],
)
def test_judging_against_the_functions_own_evidence(
    seen: dict[str, Any], watched: dict[str, Any], reason: str | None
) -> None:
    alarm = "error-rate-lambda-function-dev"
    metrics = UsageMetrics(
        0,
        seen.get("invocations", 1_000),
        seen.get("errors", 2),
        seen.get("throttles", 0),
        None,
        seen.get("max_ms", 1_500.0),
        0.0,
        None,
        0.0,
        512,
    )
    lines = ReportLines("logs", memory_max_mb=seen.get("memory", 200.0))
    verdict = judge(
        _watch(alarms=(alarm,), **watched),
        Seen(metrics, lines, (alarm,) if seen.get("alarm") else ()),
        BakeSettings(duration_s=HOUR),
    )
    if reason is None:
        assert verdict is None
    else:
        assert verdict is not None
        assert verdict.startswith(reason), verdict
