"""The service's Prometheus metrics, made from what every run reports.

Each run's report already counts its AWS calls (by service, operation and outcome), its
changes (by step and outcome) and its money; the service adds them to counters once the
run is over, so `/metrics` says exactly what the reports say. The service's own calls
outside runs (readiness, the API's reads of the state store) are added the same way, from
their gateway's counter. One registry per service, not the process-wide default: tests run
several services in one process.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from optimizer_async.aws.errors import THROTTLE_CODES


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.runs = Counter(
            "lambda_optimizer_runs", "Runs finished, by what started them, command and status "
            "(the report's: planned, planned_with_failures, converged, partly_applied, failed, "
            "stopped, rolled_back, held, nothing_to_do; error: no report)",
            ["trigger", "command", "status"], registry=self.registry,
        )  # fmt: skip
        self.changes = Counter(
            "lambda_optimizer_changes", "Changes by step and outcome (planned, applied, "
            "verified, failed, blocked)", ["step", "outcome"], registry=self.registry,
        )  # fmt: skip
        self.aws_calls = Counter(
            "lambda_optimizer_aws_calls", "AWS calls by service, operation and outcome",
            ["service", "operation", "outcome"], registry=self.registry,
        )  # fmt: skip
        self.throttles = Counter(
            "lambda_optimizer_throttles", "AWS calls that stayed throttled after retries",
            ["service", "operation"], registry=self.registry,
        )  # fmt: skip
        self.savings = Gauge(
            "lambda_optimizer_savings_monthly_usd", "Monthly savings: estimated by the last "
            "cycle's report (its plan, with a change budget); realised as CloudWatch measures "
            "it (`savings`) for the service's recent runs that changed something, once each "
            "is an hour old",
            ["kind"], registry=self.registry,
        )  # fmt: skip
        # The estimate is a range (CPU-bound to I/O-bound): both ends, so that a dashboard
        # shows the range, not only its top (which `savings{kind="estimated"}` is).
        self.estimated = Gauge(
            "lambda_optimizer_savings_estimated_monthly_usd", "Monthly savings the last "
            "cycle's report estimated, by end of its range: low (CPU-bound: runs longer on less "
            "memory), high (duration unchanged)",
            ["bound"], registry=self.registry,
        )  # fmt: skip
        self.cycle_seconds = Histogram(
            "lambda_optimizer_cycle_duration_seconds", "Reconcile cycles, start to report",
            buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600), registry=self.registry,
        )  # fmt: skip
        self.held = Counter(
            "lambda_optimizer_environments_held", "Environments another run held (leases)",
            registry=self.registry,
        )  # fmt: skip

    def text(self) -> bytes:
        return generate_latest(self.registry)

    def observe_report(self, report: Mapping[str, Any], trigger: str, estimate: bool) -> None:
        """Count a finished run from its JSON report (an organisation's: every place);
        `estimate`: its savings are the service's estimate (a cycle's, not a request's)."""
        self.runs.labels(trigger, report["command"], report["status"]).inc()
        self.observe_calls(report["api_calls"])
        places = report.get("places")
        runs = [p["report"] for p in places if p.get("report")] if places else [report]
        for run in runs:
            for env in run["environments"]:
                self.held.inc(env["status"] == "held")
                for change in _changes(env):
                    self.changes.labels(change["step"], _outcome(change)).inc()
        if estimate:
            savings = report["savings"]
            self.savings.labels("estimated").set(savings["monthly_usd"])
            self.estimated.labels("high").set(savings["monthly_usd"])
            self.estimated.labels("low").set(savings.get("monthly_usd_low", savings["monthly_usd"]))

    def observe_calls(self, calls: Mapping[str, Any]) -> None:
        """A gateway's counts (`CallCounter.snapshot`): ok is what did not fail."""
        failed: dict[tuple[str, str], int] = {}
        for key, count in calls["failed"].items():
            call, _, outcome = key.partition(":")
            service, _, operation = call.partition(".")
            self.aws_calls.labels(service, operation, outcome).inc(count)
            failed[service, operation] = failed.get((service, operation), 0) + count
            if outcome.removeprefix("error:") in THROTTLE_CODES:
                self.throttles.labels(service, operation).inc(count)
        for service, operations in calls["by_operation"].items():
            for operation, count in operations.items():
                ok = count - failed.get((service, operation), 0)
                if ok:
                    self.aws_calls.labels(service, operation, "ok").inc(ok)


def _changes(env: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    yield from env["changes"]
    for function in env["functions"]:
        yield from function["changes"]


def _outcome(change: Mapping[str, Any]) -> str:
    if change["status"] == "applied":
        return "verified" if change.get("verified") else "applied"
    return str(change["status"])
