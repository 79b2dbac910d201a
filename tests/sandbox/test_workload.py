"""The workload model over HTTP: seeded evidence reads back exactly, and a configuration change
has the consequences the function's profile says it would, from when it takes effect.

Every test runs on a ManualClock, so model time moves only when the test advances it; the
windows are whole hours, so invocation counts are whole numbers.
"""

from __future__ import annotations

import urllib.error
from datetime import timedelta

import pytest
from botocore.exceptions import ClientError

from optimizer_async.sandbox.clock import ManualClock
from optimizer_async.sandbox.config import SandboxConfig
from optimizer_async.sandbox.seeder import Seeder
from optimizer_async.sandbox.server import EmbeddedSandbox
from optimizer_async.sandbox.workload.profiles import NAMED, profile_for
from optimizer_async.sandbox.workload.traffic import traffic
from optimizer_async.steps.lambda_reports import REPORT_QUERY
from tests.conftest import ClientFactory
from tests.sandbox.helpers import control, evidence, model_now, outcomes, whole_hour

pytestmark = pytest.mark.usefixtures("clock")

DAY = timedelta(days=1)
FORTNIGHT = timedelta(days=14)
EVERY_PROFILE = ["steady", "memory-hungry", "slow", "bursty", "idle", "default"]


def _seed(sandbox: EmbeddedSandbox, mix: list[str]) -> list[str]:
    """One environment with a function per profile of `mix`, in order."""
    seeder = Seeder(sandbox.endpoint_url, functions_per_env=len(mix), profiles=mix)
    return list(seeder.seed(["dev"])[0].functions)


def _mean(p50: float, p99: float, maximum: float) -> float:
    """The mean of the profile's duration distribution (linear between p0 = p50/3, p50, p99,
    max), worked out by hand."""
    return 0.5 * (p50 / 3 + p50) / 2 + 0.49 * (p50 + p99) / 2 + 0.01 * (p99 + maximum) / 2


def test_seeded_profiles_read_back_exactly(client: ClientFactory, sandbox: EmbeddedSandbox) -> None:
    functions = _seed(sandbox, EVERY_PROFILE)
    assigned = control(sandbox, "GET", "workload?region=us-east-1")
    assert assigned == dict(zip(functions, EVERY_PROFILE, strict=True))

    end = whole_hour(model_now(sandbox))
    found = evidence(client("cloudwatch"), functions, end - FORTNIGHT, end)
    for function, name in zip(functions, EVERY_PROFILE, strict=True):
        profile, got = profile_for(name, function), found[function]
        if name == "idle":  # Lambda publishes nothing for a function nobody calls
            assert got == {key: [] for key in got}
            continue
        calls = 14 * profile.invocations_per_day  # 14 days: two whole weeks of traffic
        assert got["invocations"] == [calls]
        assert got["errors"] == [pytest.approx(calls * profile.error_rate, rel=1e-12)]
        assert got["throttles"] == [0.0]
        assert got["p99"] == [profile.duration_p99_ms]
        assert got["max"] == [profile.duration_max_ms]
        mean = _mean(profile.duration_p50_ms, profile.duration_p99_ms, profile.duration_max_ms)
        assert got["sum"] == [pytest.approx(calls * mean, rel=1e-12)]
        assert got["concurrency"] == [profile.peak_concurrency]
        assert got["bytes"] == [calls * profile.log_bytes_per_invocation]

    steady = found[functions[0]]  # the named figures, spelled out once
    assert (steady["invocations"], steady["errors"]) == ([3_500_000.0], [7_000.0])
    assert (steady["p99"], steady["max"], steady["concurrency"]) == ([900.0], [2000.0], [10.0])
    assert steady["bytes"] == [3_150_000_000.0]
    bursty = found[functions[3]]
    assert bursty["concurrency"] == [120.0]
    slow = found[functions[2]]
    assert (slow["invocations"], slow["p99"], slow["max"]) == ([28_000.0], [45_000.0], [60_000.0])


def test_periods_split_the_window_and_sum_to_it(
    client: ClientFactory, sandbox: EmbeddedSandbox
) -> None:
    (steady,) = _seed(sandbox, ["steady"])
    cloudwatch = client("cloudwatch")
    end = whole_hour(model_now(sandbox))
    daily = evidence(cloudwatch, [steady], end - FORTNIGHT, end, period=86_400)[steady]
    assert len(daily["invocations"]) == 14
    assert sum(daily["invocations"]) == 3_500_000
    assert min(daily["invocations"]) < 250_000 < max(daily["invocations"])  # weekends quieter
    assert max(daily["concurrency"]) == 10.0
    assert max(daily["max"]) == 2000.0

    hourly = evidence(cloudwatch, [steady], end - DAY, end, period=3_600)[steady]
    assert len(hourly["invocations"]) == 24
    assert all(value == int(value) for value in hourly["invocations"])  # whole invocations
    assert (
        sum(hourly["invocations"])
        == evidence(cloudwatch, [steady], end - DAY, end)[steady]["invocations"][0]
    )

    statistics = cloudwatch.get_metric_statistics(
        Namespace="AWS/Lambda",
        MetricName="Duration",
        Dimensions=[{"Name": "FunctionName", "Value": steady}],
        StartTime=end - FORTNIGHT,
        EndTime=end,
        Period=14 * 86_400,
        Statistics=["Maximum", "SampleCount"],
        ExtendedStatistics=["p99", "p50"],
    )
    (point,) = statistics["Datapoints"]
    assert (point["Maximum"], point["SampleCount"]) == (2000.0, 3_500_000.0)
    assert point["ExtendedStatistics"] == {"p99": 900.0, "p50": 180.0}
    assert point["Unit"] == "Milliseconds"


def test_changes_have_the_profiles_consequences(
    client: ClientFactory, sandbox: EmbeddedSandbox, clock: ManualClock
) -> None:
    functions = _seed(sandbox, ["memory-hungry", "slow", "bursty", "steady"])
    hungry, slow, bursty, steady = functions
    lam, cloudwatch = client("lambda"), client("cloudwatch")
    before_end = whole_hour(model_now(sandbox))
    before = evidence(cloudwatch, functions, before_end - FORTNIGHT, before_end)

    with sandbox.configured(update_s=0.0):
        lam.update_function_configuration(FunctionName=hungry, MemorySize=1024)
        lam.update_function_configuration(FunctionName=slow, Timeout=30)
        lam.put_function_concurrency(FunctionName=bursty, ReservedConcurrentExecutions=20)
        lam.update_function_configuration(FunctionName=steady, MemorySize=512)
    changed = model_now(sandbox)
    clock.advance(15 * 86_400)
    end = whole_hour(model_now(sandbox))
    assert end - FORTNIGHT > changed

    assert evidence(cloudwatch, functions, before_end - FORTNIGHT, before_end) == before
    after = evidence(cloudwatch, functions, end - FORTNIGHT, end)
    calls = 3_500_000

    # memory-hungry at 1,024 MB: invocations needing more fail out of memory, and run
    # slower on less CPU
    out_of_memory = 1 - (0.5 + 0.49 * (1024 - 900) / (1350 - 900))
    slower = 1 + 0.6 * (1769 / 1024 - 1)
    assert after[hungry]["invocations"] == [calls]
    errors = calls * (out_of_memory + (1 - out_of_memory) * 0.002)
    assert after[hungry]["errors"] == [pytest.approx(errors, rel=1e-12)]
    assert after[hungry]["p99"] == [pytest.approx(900 * slower, rel=1e-12)]

    # slow with a 30 s timeout: longer invocations time out, at exactly the timeout
    timed_out = 1 - (0.5 + 0.49 * (30_000 - 8_000) / (45_000 - 8_000))
    errors = 28_000 * (timed_out + (1 - timed_out) * 0.01)
    assert after[slow]["errors"] == [pytest.approx(errors, rel=1e-12)]
    assert (after[slow]["p99"], after[slow]["max"]) == ([30_000.0], [30_000.0])

    # bursty held to 20: five sixths of each burst hour's calls are throttled
    per_hour = traffic(NAMED["bursty"]).invocations.per_hour
    bursts = sum(count for hour, count in enumerate(per_hour) if hour % 24 in (9, 13, 18))
    assert after[bursty]["throttles"] == [pytest.approx(2 * bursts * 5 / 6, rel=1e-12)]
    assert after[bursty]["invocations"][0] + after[bursty]["throttles"][0] == pytest.approx(
        calls, rel=1e-12
    )
    assert after[bursty]["concurrency"] == [20.0]

    # steady at 512 MB: nothing fails, everything takes longer
    slower = 1 + 0.6 * (1769 / 512 - 1)
    assert after[steady]["errors"] == [7_000.0]
    assert after[steady]["p99"] == [pytest.approx(900 * slower, rel=1e-12)]
    assert after[steady]["max"] == [pytest.approx(2000 * slower, rel=1e-12)]
    assert after[steady]["concurrency"] == [pytest.approx(10 * slower, rel=1e-12)]

    # the next 24 hours: which functions the changes broke, and the metrics agree (a whole-hour
    # window: CloudWatch reads whole seconds, and the model's time follows the real date, so a
    # window cut mid-second can straddle a weekend's edge on one side and not the other)
    now = whole_hour(model_now(sandbox))
    found = outcomes(sandbox, now, now + DAY)
    broken = {
        name for name, o in found.items() if o["outOfMemory"] or o["timeouts"] or o["throttles"]
    }
    assert broken == {hungry, slow, bursty}
    settings = {
        name: (o["memoryMb"], o["timeoutS"], o["reservedConcurrency"]) for name, o in found.items()
    }
    assert settings == {
        hungry: (1024, 300, None),
        slow: (3008, 30, None),
        bursty: (3008, 300, 20),
        steady: (512, 300, None),
    }
    same = evidence(cloudwatch, functions, now, now + DAY)
    for name in functions:
        assert found[name]["invocations"] == pytest.approx(same[name]["invocations"][0])
        assert found[name]["errors"] == pytest.approx(same[name]["errors"][0])
        assert found[name]["throttles"] == pytest.approx(same[name]["throttles"][0])
    assert found[hungry]["outOfMemory"] == pytest.approx(
        found[hungry]["invocations"] * out_of_memory, rel=1e-12
    )
    assert found[slow]["timeouts"] == pytest.approx(
        found[slow]["invocations"] * timed_out, rel=1e-12
    )


def test_a_change_takes_effect_when_its_update_settles(
    client: ClientFactory, sandbox: EmbeddedSandbox, clock: ManualClock
) -> None:
    (steady,) = _seed(sandbox, ["steady"])
    lam = client("lambda")
    with sandbox.configured(update_s=60.0):
        asked = model_now(sandbox)
        answer = lam.update_function_configuration(FunctionName=steady, MemorySize=512)
        assert answer["LastUpdateStatus"] == "InProgress"
    settles = asked + timedelta(seconds=60)
    assert outcomes(sandbox, asked, settles)[steady]["memoryMb"] == 3008
    assert outcomes(sandbox, settles, settles + DAY)[steady]["memoryMb"] == 512

    lam.put_function_concurrency(FunctionName=steady, ReservedConcurrentExecutions=5)
    clock.advance(3_600)
    lam.delete_function_concurrency(FunctionName=steady)
    now = model_now(sandbox)
    assert outcomes(sandbox, now - timedelta(minutes=30), now)[steady]["reservedConcurrency"] == 5
    assert outcomes(sandbox, now, now + DAY)[steady]["reservedConcurrency"] is None
    assert outcomes(sandbox, now - timedelta(minutes=30), now)[steady]["throttles"] > 0


def test_failed_or_refused_changes_change_nothing(
    client: ClientFactory, sandbox: EmbeddedSandbox, clock: ManualClock
) -> None:
    (steady,) = _seed(sandbox, ["steady"])
    lam = client("lambda", attempts=1)
    with sandbox.configured(update_s=0.5, update_failure_rate=1.0):
        lam.update_function_configuration(FunctionName=steady, MemorySize=512, Timeout=1)
        clock.advance(0.5)
        assert lam.get_function(FunctionName=steady)["Configuration"]["LastUpdateStatus"] == (
            "Failed"
        )
    with pytest.raises(ClientError, match="PreconditionFailed"):
        lam.update_function_configuration(FunctionName=steady, MemorySize=256, RevisionId="old")
    with pytest.raises(ClientError, match="UnreservedConcurrentExecution"):
        lam.put_function_concurrency(FunctionName=steady, ReservedConcurrentExecutions=950)

    now = model_now(sandbox)
    found = outcomes(sandbox, now - DAY, now + DAY)[steady]
    assert (found["memoryMb"], found["timeoutS"], found["reservedConcurrency"]) == (3008, 300, None)
    assert (found["outOfMemory"], found["timeouts"], found["throttles"]) == (0.0, 0.0, 0.0)
    later = evidence(client("cloudwatch"), [steady], now, now + DAY)[steady]
    assert (later["p99"], later["max"]) == ([900.0], [2000.0])


def test_control_api_and_in_process_equivalents(sandbox: EmbeddedSandbox) -> None:
    (steady,) = _seed(sandbox, ["steady"])
    for bad in (
        {"region": "us-east-1", "functionName": steady, "profile": "no-such-profile"},
        {"region": "us-east-1", "functionName": "no-such-function", "profile": "steady"},
    ):
        with pytest.raises(urllib.error.HTTPError) as refused:
            control(sandbox, "PUT", "workload", bad)
        assert refused.value.code == 400

    assert control(sandbox, "GET", "config")["insights_query_s"] == 0.0
    assert SandboxConfig.for_profile("aws").insights_query_s == 1.5
    with pytest.raises(ValueError, match="insights query s must not be negative"):
        SandboxConfig(insights_query_s=-1.0)

    sandbox.attach_workload("us-east-1", steady, "slow")  # another profile, same history
    assert control(sandbox, "GET", "workload?region=us-east-1") == {steady: "slow"}
    now = sandbox.model_now()
    assert now == model_now(sandbox)
    found = sandbox.workload_outcomes("us-east-1", now - FORTNIGHT, now)[steady]
    assert found.invocations == pytest.approx(28_000, abs=1)  # not hour-aligned: ~whole

    control(sandbox, "POST", "reset")
    assert control(sandbox, "GET", "workload?region=us-east-1") == {}


def test_a_latent_heavy_path_shows_only_after_its_delay(
    client: ClientFactory, sandbox: EmbeddedSandbox, clock: ManualClock
) -> None:
    """What evidence cannot show: an hour after seeding, 5 % of invocations need 1,500 MB."""
    seeded = model_now(sandbox)
    (latent,) = _seed(sandbox, ["latent-heavy"])
    profile = NAMED["latent-heavy"]
    starts = seeded + timedelta(seconds=profile.latent_after_s)
    window = whole_hour(seeded)
    history = evidence(client("cloudwatch"), [latent], window - FORTNIGHT, window)[latent]
    assert history["errors"] == [14 * profile.invocations_per_day * profile.error_rate]

    clock.advance(2 * profile.latent_after_s)
    assert outcomes(sandbox, seeded, starts)[latent]["outOfMemory"] == 0
    assert outcomes(sandbox, starts, model_now(sandbox))[latent]["outOfMemory"] == 0  # 3,008 MB

    with sandbox.configured(update_s=0.0):
        client("lambda").update_function_configuration(FunctionName=latent, MemorySize=1024)
    changed = model_now(sandbox)
    clock.advance(86_400)
    after = outcomes(sandbox, changed, changed + DAY)[latent]
    assert after["invocations"] > 0
    assert after["outOfMemory"] == pytest.approx(after["invocations"] * profile.latent_share)

    logs = client("logs")  # the REPORT lines show it too: an invocation used all 1,024 MB
    since = int(changed.timestamp()) + 1  # whole seconds after the change, at 1,024 MB only
    bounds = {"startTime": since, "endTime": since + 86_400}
    query = logs.start_query(
        logGroupNames=[f"/aws/lambda/{latent}"], queryString=REPORT_QUERY, **bounds
    )
    (row,) = logs.get_query_results(queryId=query["queryId"])["results"]
    cells = {cell["field"]: cell["value"] for cell in row}
    assert float(cells["maxMemoryUsedMB"]) == 1024
