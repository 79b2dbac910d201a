"""The service keeps what it accepted: a run the API queued is recorded before its id is
given, survives a stop and a restart (run then, or cancelled with the reason, never a
404), and requests are read as HTTP and JSON have them (a key given twice is refused, header
values matched case-insensitively); a stopping service answers 503 with Retry-After."""

from __future__ import annotations

import dataclasses
import json
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from optimizer_async import cli
from optimizer_async.aws.gateway import AwsSettings
from optimizer_async.sandbox.clock import ManualClock
from optimizer_async.sandbox.server import EmbeddedSandbox
from optimizer_async.service.serve import Running, running
from tests.conftest import REGION
from tests.integration.test_leases import GatedClock
from tests.integration.test_service import TOKEN, _until, _updated

pytestmark = pytest.mark.sandbox_only("the service against the sandbox's clock")


@asynccontextmanager
async def _service(
    sandbox: EmbeddedSandbox, state: Path, suffix: str, clock: Any = None
) -> AsyncIterator[tuple[Running, httpx.AsyncClient]]:
    config = cli.parse_config(
        ["serve", "--suffix", suffix, "--interval", "1h", "--state-dir", str(state),
         "--log-level", "warning"],
        {"AWS_ENDPOINT_URL": sandbox.endpoint_url, "LAMBDA_OPTIMIZER_API_TOKEN": TOKEN},
    )  # fmt: skip
    assert config.serve is not None
    config = dataclasses.replace(config, serve=dataclasses.replace(config.serve, port=0))
    settings = AwsSettings(region=REGION, endpoint_url=sandbox.endpoint_url)
    async with running(config, settings, clock) as service:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(base_url=service.url, headers=headers) as http:
            yield service, http


def _records(state: Path) -> dict[str, dict[str, Any]]:
    found = (json.loads(path.read_text()) for path in state.glob("runs/*/run.json"))
    return {record["run_id"]: record for record in found}


async def test_queued_runs_survive_a_stop_and_a_restart(
    sandbox: EmbeddedSandbox, seed: Any, tmp_path: Path
) -> None:
    (dev,) = seed("queue-dev")
    state = tmp_path / "state"
    with sandbox.use_clock(ManualClock()) as time:
        gated = GatedClock(time)  # the first cycle holds at its first wait
        async with _service(sandbox, state, dev, clock=gated) as (service, http):
            await _until(lambda: _updated(sandbox))
            accepted = []
            for _ in range(3):
                answer = await http.post("/runs", json={"dry_run": True})
                assert answer.status_code == 202
                accepted.append(answer.json()["run_id"])
            for run_id in accepted:  # recorded before the answer: the store says queued
                asked = await http.get(f"/runs/{run_id}")
                assert (asked.status_code, asked.json()["status"]) == (202, "queued")
            service.reconciler.request_stop(signal.SIGTERM)
            refused = await http.post("/runs", json={})
            assert refused.status_code == 503
            assert int(refused.headers["Retry-After"]) > 0
            gated.gate.set()
    records = _records(state)
    assert {records[run_id]["status"] for run_id in accepted} == {"queued"}

    async with _service(sandbox, state, dev) as (_, http):
        for run_id in accepted:

            async def report(run_id: str = run_id) -> dict[str, Any] | None:
                answer = await http.get(f"/runs/{run_id}")
                assert answer.status_code != 404
                return answer.json() if answer.status_code == 200 else None

            done = await _until(report)
            assert (done["run_id"], done["dry_run"]) == (run_id, True)


async def test_a_queued_run_the_restarted_service_no_longer_admits_is_cancelled_and_said(
    sandbox: EmbeddedSandbox, seed: Any, tmp_path: Path
) -> None:
    first, second = seed("keep-a", "keep-b")
    state = tmp_path / "state"
    with sandbox.use_clock(ManualClock()) as time:
        gated = GatedClock(time)
        async with _service(sandbox, state, first, clock=gated) as (service, http):
            await _until(lambda: _updated(sandbox))
            answer = await http.post("/runs", json={"suffixes": [first]})
            run_id = answer.json()["run_id"]
            service.reconciler.request_stop(signal.SIGTERM)
            gated.gate.set()
    async with _service(sandbox, state, second) as (_, http):  # configured otherwise now
        answer = await http.get(f"/runs/{run_id}")
        assert answer.status_code == 200
        record = answer.json()
        assert record["status"] == "cancelled"
        assert f"{first} is not one of this service's environments" in record["reason"]


async def test_requests_are_read_as_json_and_http_have_them(
    sandbox: EmbeddedSandbox, seed: Any, tmp_path: Path
) -> None:
    (dev,) = seed("read-dev")
    with sandbox.use_clock(ManualClock()) as time:
        gated = GatedClock(time)  # nothing runs meanwhile: only the requests are read
        async with _service(sandbox, tmp_path / "state", dev, clock=gated) as (service, http):
            twice = b'{"dry_run": true, "dry_run": false}'
            answer = await http.post(
                "/runs", content=twice, headers={"Content-Type": "application/json"}
            )
            assert answer.status_code == 400
            assert "'dry_run' is given twice" in answer.json()["error"]
            upper = await http.post(
                "/runs", content=b"{}", headers={"Content-Type": "APPLICATION/JSON; charset=UTF-8"}
            )
            assert upper.status_code == 202
            service.reconciler.request_stop(signal.SIGTERM)
            gated.gate.set()
