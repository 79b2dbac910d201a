"""`savings --run-id`: what a recorded run really saved, measured from the bills' usage
before and since it (`money/realised.py`)."""

from __future__ import annotations

from typing import Any

from optimizer_async.aws.clock import Clock
from optimizer_async.aws.gateway import Aws, AwsSettings
from optimizer_async.execution.recorded import RecordError
from optimizer_async.money import realised
from optimizer_async.records.state import run_key
from optimizer_async.reporting.org_report import KIND as ORGANISATION
from optimizer_async.runs.configs import SavingsConfig
from optimizer_async.runs.store import open_store


async def savings_document(
    config: SavingsConfig, aws_settings: AwsSettings, clock: Clock | None = None
) -> dict[str, Any]:
    """The run's realised savings; RecordError (exit 2) for a run that changed nothing."""
    async with Aws.open(aws_settings, clock) as aws:
        store = await open_store(config, aws)
        run = await store.read(run_key(config.run_id, "run.json"))
        report = await store.read(run_key(config.run_id, "report.json"))
        if run is None or report is None:
            raise RecordError(f"run {config.run_id} has no record in {store.location}")
        if run.get("kind") == ORGANISATION:
            raise RecordError(
                f"run {config.run_id} ran in several accounts and regions: ask each one's "
                f"run id (its report's places[].run_id, or `runs`)"
            )
        if run.get("command") not in ("run", "apply") or run.get("dry_run"):
            raise RecordError(f"run {config.run_id} changed nothing: nothing was saved")
        return await realised.measure(aws, run, report, config.days)
