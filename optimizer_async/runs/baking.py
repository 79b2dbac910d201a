"""A run's bake: watch what it changed; roll back at once each function that got worse, by a
rollback run of its own (`execution/bake.py` judges; this wires it to the run's record)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from optimizer_async.aws.gateway import Aws
from optimizer_async.execution import bake
from optimizer_async.execution.engine import FleetRun
from optimizer_async.execution.signals import StopRequest
from optimizer_async.money.costs import Money
from optimizer_async.records.state import StateStore, run_key
from optimizer_async.reporting.report import RunReport
from optimizer_async.runs.configs import RollbackConfig
from optimizer_async.runs.replays import BeforeImages, FreshPlan, common
from optimizer_async.steps.base import Step

RollBack = Callable[[BeforeImages], Awaitable[RunReport]]


async def baked(
    aws: Aws,
    store: StateStore,
    run: FreshPlan,
    run_id: str,
    fleet: FleetRun,
    steps: Sequence[Step],
    stop: StopRequest,
    roll_back_run: RollBack,
) -> dict[str, Any]:
    """Watch what the run changed; `roll_back_run` runs each rollback. Marks the functions
    rolled back in `fleet`; the bake's summary for the report."""
    settings = run.config.bake
    assert settings is not None

    async def roll_back(worse: Sequence[bake.Watched]) -> dict[str, str | None]:
        records, missing = await _recorded(store, run_id, worse)
        if not records:
            return missing
        undo = RollbackConfig(**common(run.config), run_id=run_id)
        report = await roll_back_run(BeforeImages(undo, records))
        failures = {
            fn.name: next(
                (c.error for c in fn.changes if not c.ok and c.error), env.error or fn.status
            )
            for env in report.environments
            for fn in env.functions
            if fn.status == "failed" or env.error
        }
        return {w.function: missing.get(w.function) or failures.get(w.function) for w in worse}

    watched = bake.watched(fleet, {step.name: step for step in steps}, run.config.targets)
    result = await bake.watch(aws, watched, settings, roll_back, stop)
    _mark(fleet, result)
    return {
        "duration_s": settings.duration_s,
        "polls": result.polls,
        "stopped": result.stopped,
        "rolled_back": {
            fn.name: fn.rolled_back
            for env in fleet.environments
            for fn in env.functions
            if fn.rolled_back
        },
    }


async def _recorded(
    store: StateStore, run_id: str, worse: Sequence[bake.Watched]
) -> tuple[dict[str, dict[str, Any]], dict[str, str | None]]:
    """The recorded changes of the functions that got worse, by suffix; and those with none."""
    records: dict[str, dict[str, Any]] = {}
    missing: dict[str, str | None] = {}
    for suffix in sorted({w.suffix for w in worse}):
        image = await store.read(run_key(run_id, "before-images", f"{suffix}.json"))
        names = {w.function for w in worse if w.suffix == suffix}
        changes = [c for c in (image or {}).get("changes", []) if c.get("function") in names]
        for name in names - {str(c.get("function")) for c in changes}:
            missing[name] = f"no recorded change of {name} in {store.where(run_key(run_id))}"
        if image is not None and changes:
            records[suffix] = {**image, "changes": changes}
    return records, missing


def _mark(fleet: FleetRun, result: bake.BakeResult) -> None:
    for env in fleet.environments:
        for fn in env.functions:
            if fn.name in result.worse:
                failure = result.rollback_errors.get(fn.name)
                fn.rolled_back = result.worse[fn.name] + (
                    f"; rolling it back failed: {failure}" if failure else ""
                )
                if failure is None:
                    fn.money = Money()  # undone: it saves nothing
