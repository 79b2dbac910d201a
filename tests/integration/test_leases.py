"""Leases: two runs on one environment at once, and exactly one changes it; the other says
who holds it. A holder killed with SIGKILL stops renewing, its lease lapses, the next run
goes on. Local leases (flock) and the state bucket's (S3 conditional writes) alike."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

from optimizer_async.aws.gateway import Aws, AwsSettings
from optimizer_async.records import leases
from optimizer_async.records.leases import LEASE_S, Holder, LocalLeases, S3Leases, lease_key
from optimizer_async.records.state import S3StateStore
from optimizer_async.runs.configs import RunConfig
from optimizer_async.runs.orchestration import run_once
from optimizer_async.sandbox.clock import ManualClock
from optimizer_async.sandbox.server import EmbeddedSandbox
from tests.conftest import REGION, ClientFactory
from tests.integration.conftest import LinkedClock, Optimize
from tests.integration.test_state_bucket import safe_bucket

pytestmark = pytest.mark.sandbox_only("the sandbox's clock and S3 made atomic")
ACCOUNT = "123456789012"


class GatedClock(LinkedClock):
    """A run's clock whose sleeps wait until the test opens the gate: the run stops, holding
    its leases, at its first wait (the update waiter's, after its first write)."""

    def __init__(self, sandbox_clock: ManualClock) -> None:
        super().__init__(sandbox_clock)
        self.gate = anyio.Event()

    async def sleep(self, seconds: float) -> None:
        await self.gate.wait()
        await super().sleep(seconds)


async def test_of_two_runs_at_once_one_applies_and_the_other_reports_it_held(
    sandbox: EmbeddedSandbox, seed: object, client: ClientFactory, tmp_path: Path
) -> None:
    (dev,) = seed("dev")  # type: ignore[operator]
    config = RunConfig(
        suffixes=(dev,), region=REGION, endpoint_url=sandbox.endpoint_url,
        state_dir=tmp_path / "state", progress=False,
    )  # fmt: skip
    settings = AwsSettings(region=REGION, endpoint_url=sandbox.endpoint_url)
    with sandbox.use_clock(ManualClock()) as time:
        first = GatedClock(time)
        reports = {}

        async def run(name: str, clock: LinkedClock) -> None:
            reports[name] = await run_once(config, settings, clock)

        async with anyio.create_task_group() as group:
            group.start_soon(run, "first", first)
            with anyio.fail_after(120):  # until the first run has written, and waits
                while True:
                    calls = sandbox.stats()["calls"]
                    if any(row["operation"] == "UpdateFunctionConfiguration" for row in calls):
                        break
                    await anyio.sleep(0.005)
            writes = sandbox.stats()["writes"]
            await run("second", LinkedClock(time))
            assert sandbox.stats()["writes"] == writes  # the second changed nothing
            first.gate.set()
    first_env, second_env = reports["first"].environments[0], reports["second"].environments[0]
    assert first_env.status == "changed"
    assert second_env.status == "held"
    assert reports["second"].status == "held"
    assert reports["second"].exit_code == 1  # every environment held: nothing asked was done
    assert second_env.held_by is not None
    assert second_env.held_by.startswith(f"run {reports['first'].run_id} on ")
    assert not (tmp_path / "state" / lease_key(ACCOUNT, REGION, dev)).exists()  # given back


def test_a_killed_holders_lease_lapses_and_the_next_run_proceeds(
    sandbox: EmbeddedSandbox, seed: object, optimize: Optimize, tmp_path: Path
) -> None:
    (dev,) = seed("dev")  # type: ignore[operator]
    state = tmp_path / "state"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import pathlib
            import anyio
            from optimizer_async.records import leases
            from optimizer_async.aws.clock import EventLoopClock
            async def hold():
                store = leases.LocalLeases(pathlib.Path({str(state)!r}))
                async with leases.holding(store, {ACCOUNT!r}, {REGION!r}, [{dev!r}],
                                          "20261129T000000Z-dead00", EventLoopClock()):
                    print("held", flush=True)
                    await anyio.sleep_forever()
            anyio.run(hold)
        """)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    path = state / lease_key(ACCOUNT, REGION, dev)
    assert "20261129T000000Z-dead00" in path.read_text()  # never given back

    code, report = optimize("--suffix", dev)  # the holder was this host's: gone, so lapsed

    assert code == 0
    assert report["environments"][0]["status"] == "changed"
    assert not path.exists()


def test_another_hosts_lease_holds_until_it_lapses(
    sandbox: EmbeddedSandbox, seed: object, optimize: Optimize, tmp_path: Path
) -> None:
    (dev,) = seed("dev")  # type: ignore[operator]
    state = tmp_path / "state"
    until = datetime.now(UTC) + timedelta(seconds=LEASE_S)
    elsewhere = Holder("20261129T000000Z-beef00", "build-7", 4242, until.isoformat())
    path = state / lease_key(ACCOUNT, REGION, dev)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(elsewhere.__dict__))

    code, held = optimize("--suffix", dev)
    assert code == 1  # every environment held: nothing asked was done
    assert held["status"] == "held"
    assert held["environments"][0]["held_by"] == elsewhere.describe()

    later = until + timedelta(seconds=1)  # it was not renewed: its holder is gone
    with sandbox.use_clock(ManualClock()) as time:
        config = RunConfig(
            suffixes=(dev,), region=REGION, endpoint_url=sandbox.endpoint_url,
            state_dir=state, progress=False,
        )  # fmt: skip
        settings = AwsSettings(region=REGION, endpoint_url=sandbox.endpoint_url)
        report = await_run(config, settings, LinkedClock(time, lambda: later))
    assert report.environments[0].status == "changed"
    assert not path.exists()


def await_run(config: RunConfig, settings: AwsSettings, clock: LinkedClock) -> Any:
    return anyio.run(run_once, config, settings, clock)


@pytest.mark.parametrize("where", ["local", "bucket"])
async def test_a_lease_is_taken_once_renewed_by_its_holder_and_taken_over_when_lapsed(
    sandbox: EmbeddedSandbox, client: ClientFactory, tmp_path: Path, where: str
) -> None:
    now = datetime(2026, 11, 29, tzinfo=UTC)

    def holder(run: str, at: datetime) -> Holder:
        return Holder(run, "host", 1, (at + timedelta(seconds=LEASE_S)).isoformat())

    async with Aws.open(AwsSettings(region=REGION, endpoint_url=sandbox.endpoint_url)) as aws:
        store: leases.LeaseStore
        if where == "local":
            store = LocalLeases(tmp_path)
        else:
            bucket = safe_bucket(client, "leases")
            store = S3Leases(S3StateStore(aws, bucket, "state/"))
        key = lease_key(ACCOUNT, REGION, "dev")
        a, b = holder("run-a", now), holder("run-b", now)
        # Two takers at once: exactly one wins, whatever the order.
        results = {}

        async def take(who: Holder) -> None:
            results[who.run_id] = await store.take(key, who, now)

        async with anyio.create_task_group() as group:
            group.start_soon(take, a)
            group.start_soon(take, b)
        assert sorted(r is None for r in results.values()) == [False, True]
        winner = a if results["run-a"] is None else b
        loser = b if winner is a else a
        assert results[loser.run_id] == winner
        renewed = holder(winner.run_id, now + timedelta(seconds=60))
        assert await store.take(key, renewed, now + timedelta(seconds=60)) is None
        later = now + timedelta(seconds=LEASE_S + 30)  # past the first expiry, not the renewal
        assert await store.take(key, holder(loser.run_id, later), later) == renewed
        await store.release(key, loser)  # not the loser's to give back
        lapsed = now + timedelta(seconds=60 + LEASE_S + 1)
        assert await store.take(key, holder(loser.run_id, lapsed), lapsed) is None
        await store.release(key, winner)  # it lost it: the lease stays the new holder's
        third = holder("run-c", lapsed)
        assert await store.take(key, third, lapsed) == holder(loser.run_id, lapsed)
        await store.release(key, loser)
        assert await store.take(key, third, lapsed) is None
