"""`serve`: the optimizer as a service on the sandbox. Cycles optimise what is there, then
what appears, then what drifted back; an unchanged fleet costs no write. The API: runs
asked for and their reports, the token, bad bodies, metrics that match the sandbox's own
counts. A service and a CLI run on one environment: one applies, the other reports it
held. SIGTERM mid-cycle: exit 0, the report written, the leases given back.

Waits are bounded loops on what the service reports (its runs), never sleeps that assume
a machine's speed."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from optimizer_async import cli
from optimizer_async.aws.gateway import AwsSettings
from optimizer_async.sandbox.clock import ManualClock
from optimizer_async.sandbox.server import EmbeddedSandbox
from optimizer_async.service.serve import Running, running
from tests.conftest import REGION, ClientFactory
from tests.integration.conftest import LinkedClock
from tests.integration.test_leases import GatedClock

pytestmark = pytest.mark.sandbox_only("the service against the sandbox's clock and call counts")
TOKEN = "t0k3n-for-the-service-tests"  # a test's token, not a secret
WAIT_S = 120.0  # every wait below ends long before this on any machine, or fails


@asynccontextmanager
async def _service(
    sandbox: EmbeddedSandbox, tmp_path: Path, *args: str, clock: Any = None
) -> AsyncIterator[tuple[Running, httpx.AsyncClient]]:
    config = cli.parse_config(
        ["serve", *args, "--state-dir", str(tmp_path / "state"), "--log-level", "warning"],
        {"AWS_ENDPOINT_URL": sandbox.endpoint_url, "LAMBDA_OPTIMIZER_API_TOKEN": TOKEN},
    )
    assert config.serve is not None
    config = dataclasses.replace(config, serve=dataclasses.replace(config.serve, port=0))
    settings = AwsSettings(region=REGION, endpoint_url=sandbox.endpoint_url)
    async with running(config, settings, clock) as service:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(base_url=service.url, headers=headers) as http:
            yield service, http


async def _until(check: Callable[[], Any]) -> Any:
    """`check()`'s first truthy answer, polled; fails after WAIT_S."""
    with anyio.fail_after(WAIT_S):
        while True:
            found = await check()
            if found:
                return found
            await anyio.sleep(0.05)


async def _cycles(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    """The service's finished cycle runs, oldest first."""
    runs = (await http.get("/runs")).json()["runs"]
    done = [r for r in runs if r.get("trigger") == "service-cycle" and r["status"] != "running"]
    return sorted(done, key=lambda run: str(run["run_id"]))


async def test_cycles_optimise_the_fleet_then_what_appears_then_what_drifts_back(
    sandbox: EmbeddedSandbox, seed: Any, client: ClientFactory, tmp_path: Path
) -> None:
    dev, staging = "svc-dev", "svc-staging"
    seed(dev)
    lam = client("lambda")

    def memory(suffix: str) -> int:
        return int(
            lam.get_function(FunctionName=f"lambda-function-{suffix}")["Configuration"][
                "MemorySize"
            ]
        )

    async with _service(sandbox, tmp_path, "--all", "--match", "svc-*", "--interval", "1s") as (
        _,
        http,
    ):
        first = (await _until(lambda: _cycles(http)))[0]
        assert (first["suffixes"], first["status"]) == ([dev], "converged")
        assert memory(dev) < 3008

        await anyio.to_thread.run_sync(lambda: seed(staging))  # a new environment appears
        later = await _until(lambda: _after(http, first, staging))
        assert later["status"] == "converged"
        assert memory(staging) < 3008

        lam.update_function_configuration(FunctionName=f"lambda-function-{dev}", MemorySize=3008)
        restored = await _until(lambda: _after(http, later, dev, "converged"))
        assert restored["suffixes"] == [dev, staging]
        assert memory(dev) < 3008

        sandbox.reset_stats()
        quiet = await _until(lambda: _nth_after(http, restored, 2))
        assert all(run["status"] == "nothing_to_do" for run in quiet)
    assert sandbox.stats()["writes"] == 0  # two cycles over an optimised fleet: reads only


async def _after(
    http: httpx.AsyncClient, run: dict[str, Any], suffix: str, status: str | None = None
) -> dict[str, Any] | None:
    """The first cycle after `run` that covered `suffix` (with `status`, if given)."""
    for later in await _cycles(http):
        covered = later["run_id"] > run["run_id"] and suffix in later["suffixes"]
        if covered and (status is None or later["status"] == status):
            return later
    return None


async def _nth_after(http: httpx.AsyncClient, run: dict[str, Any], n: int) -> list[dict[str, Any]]:
    later = [r for r in await _cycles(http) if r["run_id"] > run["run_id"]]
    return later[:n] if len(later) >= n else []


async def test_the_api_runs_what_it_is_asked_and_counts_what_the_sandbox_counts(
    sandbox: EmbeddedSandbox, seed: Any, tmp_path: Path
) -> None:
    seed("api-dev")
    sandbox.reset_stats()
    async with _service(sandbox, tmp_path, "--suffix", "api-dev", "--interval", "1h") as (
        service,
        http,
    ):
        bare = httpx.AsyncClient(base_url=service.url)
        async with bare:
            assert (await bare.get("/healthz")).status_code == 200  # probes need no token
            assert (await bare.get("/readyz")).status_code == 200
            for path in ("/metrics", "/runs"):
                assert (await bare.get(path)).status_code == 401
            wrong = {"Authorization": "Bearer not-the-token"}
            assert (await bare.post("/runs", json={}, headers=wrong)).status_code == 401
        for body, says in (
            (b"{not json", "the body is not JSON"),
            (b'["dev"]', "the body must be a JSON object"),
            (b'{"suffixes": ["Dev_1"]}', "environment suffix 'Dev_1'"),
            (b'{"suffixes": "dev"}', "suffixes must be a list of strings"),
            (b'{"only": ["no_such_step"]}', "no_such_step"),
            (b'{"dry_run": "yes"}', "dry_run must be true or false"),
            (b'{"suffix": ["dev"]}', "unknown field(s) suffix"),
            (b'{"suffixes": ["prod"]}', "prod is not one of this service's environments"),
            (b"[" * 60_000, "nests too deep"),
            (b"{}" + b" " * 70_000, "the body is over 65536 bytes"),
        ):
            answer = await http.post(
                "/runs", content=body, headers={"Content-Type": "application/json"}
            )
            assert answer.status_code == 400, body
            assert says in answer.json()["error"]
        form = await http.post("/runs", content=b"{}", headers={"Content-Type": "text/plain"})
        assert form.status_code == 400  # what a web page's form could send: refused
        await _until(lambda: _cycles(http))  # the first cycle: optimised
        twice = {"suffixes": ["api-dev", "api-dev"], "dry_run": True}  # each once, all the same
        asked = await http.post("/runs", json=twice)
        assert asked.status_code == 202
        run_id = asked.json()["run_id"]

        async def report() -> dict[str, Any] | None:
            answer = await http.get(f"/runs/{run_id}")
            return answer.json() if answer.status_code == 200 else None

        done = await _until(report)
        assert (done["run_id"], done["dry_run"], done["status"]) == (run_id, True, "nothing_to_do")
        assert [env["suffix"] for env in done["environments"]] == ["api-dev"]
        listed = {run["run_id"]: run for run in (await http.get("/runs")).json()["runs"]}
        assert listed[run_id]["trigger"] == "service-api"
        assert (await http.get("/runs/20990101T000000Z-000000")).status_code == 404
        assert (await http.get("/runs/..%2f..%2fetc")).status_code in (400, 404)

        text = (await http.get("/metrics")).text
        families = {family.name: family for family in text_string_to_metric_families(text)}
        calls = sum(
            sample.value
            for sample in families["lambda_optimizer_aws_calls"].samples
            if sample.name.endswith("_total")
        )
        assert calls == sandbox.stats()["total"]  # every call the sandbox served, counted
        runs = {
            (s.labels["trigger"], s.labels["status"]): s.value
            for s in families["lambda_optimizer_runs"].samples
            if s.name.endswith("_total")
        }
        assert runs == {("cycle", "converged"): 1.0, ("api", "nothing_to_do"): 1.0}
        changes = families["lambda_optimizer_changes"].samples
        assert sum(s.value for s in changes if s.labels.get("outcome") == "verified") > 0


async def test_a_cli_run_during_a_cycle_reports_the_environment_held(
    sandbox: EmbeddedSandbox, seed: Any, tmp_path: Path
) -> None:
    (dev,) = seed("held-dev")
    with sandbox.use_clock(ManualClock()) as time:
        gated = GatedClock(time)  # the cycle stops at its first wait, leases held
        async with _service(
            sandbox, tmp_path, "--suffix", dev, "--interval", "1h", clock=gated
        ) as (_, http):
            await _until(lambda: _updated(sandbox))
            cli_run = await anyio.run_process(  # as people run it: a process of its own
                [sys.executable, "-m", "optimizer_async", "--suffix", dev, "--output", "json",
                 "--state-dir", str(tmp_path / "state"), "--log-level", "warning"],
                env={**os.environ, "AWS_ENDPOINT_URL": sandbox.endpoint_url}, check=False,
            )  # fmt: skip
            assert cli_run.returncode == 1, cli_run.stderr  # all held: nothing done
            report = json.loads(cli_run.stdout)
            assert report["environments"][0]["status"] == "held"
            gated.gate.set()
            (cycle,) = await _until(lambda: _cycles(http))
    assert cycle["status"] == "converged"
    assert report["environments"][0]["held_by"].startswith(f"run {cycle['run_id']} on ")


async def _updated(sandbox: EmbeddedSandbox) -> bool:
    return any(
        row["operation"] == "UpdateFunctionConfiguration" for row in sandbox.stats()["calls"]
    )


def test_sigterm_mid_cycle_exits_0_with_the_report_written_and_the_leases_given_back(
    sandbox: EmbeddedSandbox, seed: Any, tmp_path: Path
) -> None:
    (dev,) = seed("term-dev")
    with socket.socket() as probe:  # a free port for the service's process
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    state = tmp_path / "state"
    environ = {**os.environ, "AWS_ENDPOINT_URL": sandbox.endpoint_url}
    with sandbox.configured(update_s=60.0):  # the cycle is still waiting when SIGTERM comes
        service = subprocess.Popen(
            [sys.executable, "-m", "optimizer_async", "serve", "--suffix", dev, "--port", str(port),
             "--interval", "1h", "--state-dir", str(state), "--log-format", "json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environ,
        )  # fmt: skip
        try:
            assert service.stderr is not None
            for line in service.stderr:  # once the cycle has changed something
                if json.loads(line).get("event") == "step.applied":
                    break
            assert list(state.glob("leases/*/*/*.json"))  # held while it runs
            service.send_signal(signal.SIGTERM)
            service.communicate(timeout=60)  # the grace (10 s), the report: well within
        finally:
            service.kill()
    assert service.returncode == 0
    (run,) = [json.loads(p.read_text()) for p in state.glob("runs/*/run.json")]
    assert run["status"] == "stopped"
    report = json.loads((state / "runs" / run["run_id"] / "report.json").read_text())
    assert report["stopped_by"] == "SIGTERM"
    assert not list(state.glob("leases/*/*/*.json"))  # given back


async def test_a_change_budget_applies_whole_environments_in_order_cycle_by_cycle(
    sandbox: EmbeddedSandbox, seed: Any, tmp_path: Path
) -> None:
    first, second = seed("bud-a", "bud-b")
    args = ("--suffix", f"{first},{second}", "--interval", "1s")
    async with _service(sandbox, tmp_path, *args, "--dry-run") as (_, http):
        (plan,) = (await _until(lambda: _cycles(http)))[:1]
        report = (await http.get(f"/runs/{plan['run_id']}")).json()
    per_environment = {
        env["suffix"]: len(list(_planned_changes(env))) for env in report["environments"]
    }
    assert per_environment[first] == per_environment[second] > 1
    budget = per_environment[first]  # one environment a cycle, whole

    async with _service(sandbox, tmp_path, *args, "--max-changes-per-cycle", str(budget)) as (
        _,
        http,
    ):
        applied = await _until(lambda: _applying(http, 2))
    assert [run["suffixes"] for run in applied] == [[first], [second]]
    assert all(run["status"] == "converged" for run in applied)


def _planned_changes(env: dict[str, Any]) -> list[dict[str, Any]]:
    changes = env["changes"] + [c for fn in env["functions"] for c in fn["changes"]]
    return [change for change in changes if change["status"] == "planned"]


async def _applying(http: httpx.AsyncClient, n: int) -> list[dict[str, Any]]:
    """The first `n` cycle runs that applied (not the plans before them), oldest first."""
    applied = [run for run in await _cycles(http) if not run["dry_run"]]
    return applied[:n] if len(applied) >= n else []


async def test_the_realised_savings_of_its_runs_are_measured_once_they_are_old_enough(
    sandbox: EmbeddedSandbox, seed: Any, tmp_path: Path
) -> None:
    seed("real-dev")
    with sandbox.use_clock(ManualClock()) as time:
        linked = LinkedClock(time, sandbox.model_now)
        args = ("--suffix", "real-dev", "--interval", "1s")
        async with _service(sandbox, tmp_path, *args, clock=linked) as (_, http):
            (changed,) = (await _until(lambda: _cycles(http)))[:1]
            assert changed["status"] == "converged"
            assert "realised" not in await _savings(http)  # too soon: no hour since the run
            time.advance(6 * 3600.0)  # six hours of traffic at the new settings
            savings = await _until(lambda: _savings(http, "realised"))
    assert savings["realised"] > 0  # memory came down: each invocation costs less


async def _savings(http: httpx.AsyncClient, kind: str | None = None) -> dict[str, float]:
    text = (await http.get("/metrics")).text
    (family,) = [
        f for f in text_string_to_metric_families(text) if f.name.endswith("savings_monthly_usd")
    ]
    found = {sample.labels["kind"]: sample.value for sample in family.samples}
    return found if kind is None or kind in found else {}


async def test_without_a_token_only_this_machines_own_clients_are_served(
    sandbox: EmbeddedSandbox, tmp_path: Path
) -> None:
    config = cli.parse_config(
        ["serve", "--suffix", "none", "--interval", "1h", "--state-dir", str(tmp_path / "s")],
        {"AWS_ENDPOINT_URL": sandbox.endpoint_url},
    )
    assert config.serve is not None
    assert config.serve.token is None
    config = dataclasses.replace(config, serve=dataclasses.replace(config.serve, port=0))
    settings = AwsSettings(region=REGION, endpoint_url=sandbox.endpoint_url)
    async with (
        running(config, settings) as service,
        httpx.AsyncClient(base_url=service.url) as http,
    ):
        assert (await http.get("/runs")).status_code == 200  # this machine: no token needed
        shouted = await http.get("/runs", headers={"Host": "LOCALHOST"})  # names ignore case
        assert shouted.status_code == 200
        rebound = await http.get("/runs", headers={"Host": "attacker.example"})
        page = await http.post("/runs", json={}, headers={"Origin": "http://attacker.example"})
    assert (rebound.status_code, page.status_code) == (403, 403)
