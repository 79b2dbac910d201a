"""--bake: after the run, each changed function is watched against its own evidence and the
ones that got worse are rolled back at once.

The run happens on virtual time (a ManualClock the optimizer's sleeps move), so a two-hour
bake takes as long as its 24 polls, and the latent heavy path of the sandbox's workload model
starts exactly an hour after seeding: after the evidence was read and the change applied.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from optimizer_async.aws.gateway import AwsSettings
from optimizer_async.execution.bake import BakeSettings
from optimizer_async.records.state import LocalStateStore
from optimizer_async.runs.configs import RunConfig
from optimizer_async.runs.orchestration import run_once
from optimizer_async.sandbox.clock import ManualClock
from optimizer_async.sandbox.seeder import Seeder
from optimizer_async.sandbox.server import EmbeddedSandbox
from optimizer_async.sandbox.workload.profiles import NAMED
from tests.conftest import REGION, ClientFactory
from tests.integration.conftest import LinkedClock

pytestmark = pytest.mark.sandbox_only("hours of the workload model's traffic on a virtual clock")
HOUR = 3600.0


async def _baked(
    sandbox: EmbeddedSandbox, tmp_path: Path, profiles: tuple[str, ...], bake_s: float
) -> tuple[list[str], Any, ManualClock]:
    functions = list(
        Seeder(sandbox.endpoint_url, functions_per_env=len(profiles), profiles=profiles)
        .seed(["bake"])[0]
        .functions
    )
    with sandbox.use_clock(ManualClock()) as clock:
        config = RunConfig(
            suffixes=("bake",),
            region=REGION,
            endpoint_url=sandbox.endpoint_url,
            state_dir=tmp_path / "state",
            function_bases=tuple(name.removesuffix("-bake") for name in functions),
            bake=BakeSettings(duration_s=bake_s),
        )
        settings = AwsSettings(region=REGION, endpoint_url=sandbox.endpoint_url)
        report = await run_once(config, settings, LinkedClock(clock, sandbox.model_now))
    return functions, report, clock


async def test_a_function_that_gets_worse_is_rolled_back_and_named(
    sandbox: EmbeddedSandbox, client: ClientFactory, tmp_path: Path
) -> None:
    (steady, latent), report, clock = await _baked(
        sandbox, tmp_path, ("steady", "latent-heavy"), 2 * HOUR
    )
    lam = client("lambda")
    memory = {
        name: lam.get_function_configuration(FunctionName=name)["MemorySize"]
        for name in (steady, latent)
    }
    assert memory[latent] == 3008  # back to its before-image
    assert memory[steady] < 3008  # still optimised

    (env,) = report.environments
    outcomes = {fn.name: fn for fn in env.functions}
    reason = outcomes[latent].rolled_back
    assert reason is not None
    # Its REPORT lines show it first: an invocation used all the memory it now has.
    assert reason.startswith("out of memory since the change: an invocation used all"), reason
    assert outcomes[latent].status == "failed"
    assert outcomes[latent].money.net_usd == 0  # nothing saved by what was undone
    assert outcomes[steady].rolled_back is None
    assert outcomes[steady].status == "changed"
    assert outcomes[steady].money.net_usd > 0
    assert report.exit_code == 1

    # Noticed within the window: the heavy path starts an hour after seeding; the first
    # poll that covers it (every 5 minutes) rolls back, then the rest bake on.
    latent_after = NAMED["latent-heavy"].latent_after_s
    assert report.bake is not None
    assert report.bake["rolled_back"] == {latent: reason}
    assert latent_after / 300 <= report.bake["polls"] <= 2 * HOUR / 300 + 1
    assert clock.now() >= 2 * HOUR  # the healthy one baked to the end

    # The automatic rollback is a run of its own, recorded, so it can be undone too.
    store = LocalStateStore(tmp_path / "state")
    runs = [await store.read(key) for key in await store.keys("runs") if key.endswith("run.json")]
    (undo,) = [run for run in runs if run and run.get("rollback_of") == report.run_id]
    assert undo["trigger"] == "bake"
    assert undo["status"] == "rolled_back"
    assert undo["suffixes"] == ["bake"]
    undone = await store.read(f"runs/{undo['run_id']}/report.json")
    assert undone is not None
    (functions,) = [env["functions"] for env in undone["environments"]]
    assert [fn["name"] for fn in functions if fn["changes"]] == [latent]  # only the worse one
    calls = undone["api_calls"]["by_operation"]
    assert "GetMetricData" not in calls.get("cloudwatch", {})  # its own calls: no evidence


async def test_healthy_functions_bake_to_the_end_and_keep_their_changes(
    sandbox: EmbeddedSandbox, client: ClientFactory, tmp_path: Path
) -> None:
    (steady,), report, _ = await _baked(sandbox, tmp_path, ("steady",), HOUR)
    assert report.exit_code == 0
    assert report.bake == {"duration_s": HOUR, "polls": 12, "rolled_back": {}, "stopped": False}
    assert client("lambda").get_function_configuration(FunctionName=steady)["MemorySize"] < 3008
