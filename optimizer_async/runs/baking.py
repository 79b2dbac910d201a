"""A run's bake: watch what it changed; roll back at once each function that got worse, by a
rollback run of its own (`execution/bake.py` judges; this wires it to the run's record)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Bake:
    """The bake of one run: its config (the bake's settings, the targets), where its changes
    are recorded, and how a rollback of some of them runs (`roll_back_run`)."""

    run: FreshPlan
    run_id: str
    store: StateStore
    roll_back_run: RollBack

    async def baked(
        self, aws: Aws, fleet: FleetRun, steps: Sequence[Step], stop: StopRequest
    ) -> dict[str, Any]:
        """Watch what the run changed, rolling back what got worse. Marks the functions
        rolled back in `fleet`; the bake's summary for the report."""
        settings, targets = self.run.config.bake, self.run.config.targets
        assert settings is not None
        watched = bake.watched(fleet, {step.name: step for step in steps}, targets)
        result = await bake.watch(aws, watched, settings, self._roll_back, stop)
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

    async def _roll_back(self, worse: Sequence[bake.Watched]) -> dict[str, str | None]:
        """Each worse function's recorded changes put back; per function, why not (None:
        rolled back)."""
        records, missing = await _recorded(self.store, self.run_id, worse)
        if not records:
            return missing
        undo = RollbackConfig(**common(self.run.config), run_id=self.run_id)
        report = await self.roll_back_run(BeforeImages(undo, records))
        failures = {
            fn.name: next(
                (c.error for c in fn.changes if not c.ok and c.error), env.error or fn.status
            )
            for env in report.environments
            for fn in env.functions
            if fn.status == "failed" or env.error
        }
        return {w.function: missing.get(w.function) or failures.get(w.function) for w in worse}


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
