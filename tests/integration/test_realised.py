"""`savings --run-id`: a backdated run (on the sandbox's virtual time), a week of traffic
since, and the realised figure equals the arithmetic of the two windows' usage."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from optimizer_async.aws import pricing
from optimizer_async.aws.gateway import AwsSettings
from optimizer_async.money.realised import TooSoonError
from optimizer_async.runs.configs import RunConfig, SavingsConfig
from optimizer_async.runs.orchestration import run_once
from optimizer_async.runs.replays import common
from optimizer_async.runs.savings import savings_document
from optimizer_async.sandbox.clock import ManualClock
from optimizer_async.sandbox.seeder import Seeder
from optimizer_async.sandbox.server import EmbeddedSandbox
from tests.conftest import REGION, ClientFactory
from tests.integration.conftest import LinkedClock

pytestmark = pytest.mark.sandbox_only("a week of the workload model's traffic on a virtual clock")
WEEK = 7 * 86_400


def _usage(client: ClientFactory, function: str, window: list[str]) -> tuple[float, float]:
    """(invocations, summed duration in ms) of a window, read with plain boto3."""
    start, end = (datetime.fromisoformat(moment) for moment in window)
    period = int((end - start).total_seconds())
    queries: list[Any] = [
        {
            "Id": f"m{index}",
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/Lambda",
                    "MetricName": metric,
                    "Dimensions": [{"Name": "FunctionName", "Value": function}],
                },
                "Period": period,
                "Stat": "Sum",
            },
        }
        for index, metric in enumerate(("Invocations", "Duration"))
    ]
    answer = client("cloudwatch").get_metric_data(
        MetricDataQueries=queries, StartTime=start, EndTime=end
    )
    found = {r["Id"]: sum(r["Values"]) for r in answer["MetricDataResults"]}
    return found["m0"], found["m1"]


async def test_realised_savings_are_the_arithmetic_of_the_two_windows(
    sandbox: EmbeddedSandbox, client: ClientFactory, tmp_path: Path
) -> None:
    (function,) = Seeder(sandbox.endpoint_url, profiles=("steady",)).seed(["real"])[0].functions
    settings = AwsSettings(region=REGION, endpoint_url=sandbox.endpoint_url)
    config = RunConfig(
        suffixes=("real",),
        region=REGION,
        endpoint_url=sandbox.endpoint_url,
        state_dir=tmp_path / "state",
    )
    with sandbox.use_clock(ManualClock()) as clock:
        linked = LinkedClock(clock, sandbox.model_now)
        report = await run_once(config, settings, linked)
        assert report.exit_code == 0
        measure = SavingsConfig(**common(config), run_id=report.run_id, days=7)
        with pytest.raises(TooSoonError, match="an hour of traffic since it is needed"):
            await savings_document(measure, settings, linked)
        clock.advance(WEEK)  # a week of traffic at the new settings
        document = await savings_document(measure, settings, linked)

    (fn,) = document["functions"]
    before_mb, after_mb = fn["memory_mb"]
    assert (before_mb, fn["name"]) == (3008, function)
    calls_before, ms_before = _usage(client, function, document["windows"]["before"])
    calls_after, ms_after = _usage(client, function, document["windows"]["after"])
    gb_second, request = 0.0000166667, 0.20 / 1e6
    per_call_before = ms_before / 1000 * before_mb / 1024 * gb_second / calls_before + request
    per_call_after = ms_after / 1000 * after_mb / 1024 * gb_second / calls_after + request
    start, end = (datetime.fromisoformat(m) for m in document["windows"]["after"])
    month = calls_after * pricing.SECONDS_PER_MONTH / (end - start).total_seconds()
    expected = (per_call_before - per_call_after) * month
    assert fn["realised_monthly_usd"] == pytest.approx(expected, abs=0.01)
    assert document["realised_monthly_usd"] == fn["realised_monthly_usd"]
    assert document["not_measured"] == {}

    # Same lengths, before the run and after it; a week at most.
    before = document["windows"]["before"]
    assert (end - start).total_seconds() <= WEEK
    assert (end - start).total_seconds() % 3600 == 0  # whole hours: CloudWatch's old-data periods
    assert datetime.fromisoformat(before[1]) - datetime.fromisoformat(before[0]) == end - start
    assert datetime.fromisoformat(before[1]) <= report.started_at <= start
    # steady's work is partly CPU-bound: what it saved lies inside the estimated range.
    low, high = fn["estimated_monthly_usd"]
    assert low - 0.01 <= fn["realised_monthly_usd"] <= high + 0.01
