"""Money in a real report: each line equals the arithmetic from the seeded usage and the price
table, functions without usage say `assumed`, and net = removed - added at every level."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest

from optimizer_async.aws import pricing
from optimizer_async.definitions import baseline
from optimizer_async.definitions.naming import EnvironmentNames
from optimizer_async.sandbox.server import EmbeddedSandbox
from optimizer_async.sandbox.workload.profiles import NAMED
from tests.conftest import ClientFactory
from tests.integration.conftest import Optimize

pytestmark = pytest.mark.sandbox_only("the workload model's usage, priced exactly")
Seed = Callable[..., list[str]]
PRICES = pricing.table("us-east-1")
CENT = 0.01


def _mean_ms(p50: float, p99: float, maximum: float) -> float:
    """The mean of the workload model's duration distribution (linear between p0 = p50/3,
    p50, p99, max), by hand."""
    return 0.5 * (p50 / 3 + p50) / 2 + 0.49 * (p50 + p99) / 2 + 0.01 * (p99 + maximum) / 2


def _lines(fn: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {line["label"]: line for line in fn["savings"]["lines"]}


def _net(lines: Iterable[dict[str, Any]]) -> float:
    signs = {"saves": 1.0, "adds": -1.0, "shown": 0.0}
    return sum(signs[line["effect"]] * float(line["monthly_usd"]) for line in lines)


def _rounding(lines: Iterable[dict[str, Any]]) -> float:
    """How far lines rounded to the cent one by one can sum from their rounded total."""
    return 0.005 * (len(list(lines)) + 1)


def test_each_line_is_the_arithmetic_of_the_seeded_usage(
    seed: Seed, optimize: Optimize, client: ClientFactory
) -> None:
    (dev,) = seed("dev", functions_per_env=2, profiles=("steady", "idle"))
    bases = [arg for base in baseline.function_bases(2) for arg in ("--function-base", base)]
    code, report = optimize("--suffix", dev, "--dry-run", *bases)
    assert code == 0, report
    (env,) = report["environments"]
    steady, idle = env["functions"]
    profile = NAMED["steady"]

    per_month = profile.invocations_per_day * pricing.DAYS_PER_MONTH
    mean_ms = _mean_ms(profile.duration_p50_ms, profile.duration_p99_ms, profile.duration_max_ms)
    seconds = per_month * mean_ms / 1000
    lines = _lines(steady)
    after = lines["compute"]["inputs"]["memory_mb_after"]
    x86 = PRICES.duration("x86_64").usd
    assert lines["compute"]["monthly_usd"] == pytest.approx(
        seconds * (3008 - after) / 1024 * x86, abs=CENT
    )
    assert lines["requests (unchanged)"]["monthly_usd"] == pytest.approx(
        per_month * 0.20 / 1e6, abs=CENT
    )
    sampled = min(per_month, pricing.SECONDS_PER_MONTH)
    traces = sampled + 0.05 * (per_month - sampled)
    assert lines["tracing"]["monthly_usd"] == pytest.approx(traces * 5.00 / 1e6, abs=CENT)
    errors = per_month * profile.error_rate
    assert lines["dead-letter queue"]["monthly_usd"] == pytest.approx(errors * 0.40 / 1e6, abs=CENT)
    calls = profile.peak_concurrency * 2 * pricing.SECONDS_PER_MONTH / 300  # 2 secrets, 5 min
    assert lines["secret reads"]["monthly_usd"] == pytest.approx(calls * 0.05 / 1e4, abs=CENT)
    group = EnvironmentNames(dev).function_log_group()
    stored = client("logs").describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]
    steady_state = profile.invocations_per_day * profile.log_bytes_per_invocation * 7
    assert lines["log storage"]["monthly_usd"] == pytest.approx(
        (stored["storedBytes"] - steady_state) / 1e9 * 0.03, abs=CENT
    )
    assert lines["alarms"]["monthly_usd"] == pytest.approx(3 * 0.10)  # error rate is 2 metrics
    assert all(line["source"] for line in lines.values())
    assert not any(line["assumed"] for line in lines.values())

    # No usage: every line that depends on usage says so.
    idle_lines = _lines(idle)
    usage_lines = ("compute", "requests (unchanged)", "tracing", "dead-letter queue")
    for label in usage_lines:
        assert idle_lines[label]["assumed"] is True, label
        assert idle_lines[label]["basis"].startswith("assumed: no invocations in the window")

    # net = removed - added, on every level (each line rounded to the cent on its own).
    for fn in (steady, idle):
        found = _lines(fn).values()
        assert fn["savings"]["monthly_usd"] == pytest.approx(_net(found), abs=_rounding(found))
    every = [line for fn in env["functions"] for line in fn["savings"]["lines"]]
    every += report["savings"]["account_lines"]
    assert report["savings"]["monthly_usd"] == pytest.approx(_net(every), abs=_rounding(every))
    assert report["savings"]["prices"] == f"table {pricing.PRICES_AS_OF}"


@pytest.mark.aws_behaviour("price-list-api")
def test_live_prices_come_from_the_price_list_api(
    seed: Seed, optimize: Optimize, sandbox: EmbeddedSandbox
) -> None:
    (dev,) = seed("dev")
    sandbox.reset_stats()
    code, report = optimize("--suffix", dev, "--dry-run", "--prices", "live", "--free-tier")
    assert code == 0, report
    assert report["savings"]["prices"].startswith("Price List API for Lambda")
    (fn,) = report["environments"][0]["functions"]
    lines = _lines(fn)
    assert lines["compute"]["source"].startswith("AWS Price List API (GetProducts AWSLambda")
    assert lines["tracing"]["source"].startswith("https://aws.amazon.com/xray/pricing/")
    calls = {(row["service"], row["operation"]) for row in sandbox.stats()["calls"]}
    assert ("pricing", "GetProducts") in calls
    # The free tier, once for the account: it takes 100,000 traces off the tracing line.
    (tracing,) = [
        line for line in report["savings"]["account_lines"] if line["label"].startswith("tracing")
    ]
    assert tracing["effect"] == "saves"
    assert tracing["monthly_usd"] == pytest.approx(100_000 * 5.00 / 1e6, abs=CENT)
