"""A run, orchestrated: one short sequence of named steps, the same for every kind of run
(what it replays - a fresh plan, a plan file, before-images - answers the questions that
differ: `replays.py`).

    scope      what the run covers, read in its account and region
    leases     an environment another run holds is left alone, reported held
    prices     before the record: a Price List failure leaves no run stuck "running"
    record     run.json, before anything is written
    engine     discover, plan, [apply, wait, verify]; stopped: what it got to
    plan out   a dry run's plan file, for review
    bake       watch what changed, roll back what got worse
    report     report.json, and the record's final status
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import anyio
import structlog

from optimizer_async.aws import errors
from optimizer_async.aws.clock import Clock
from optimizer_async.aws.gateway import Aws, AwsSettings
from optimizer_async.aws.pricing import PriceBook
from optimizer_async.execution import progress, signals
from optimizer_async.execution.engine import EngineSettings, FleetRun
from optimizer_async.execution.results import EnvironmentOutcome
from optimizer_async.execution.signals import StopRequest
from optimizer_async.fleet.accounts import Place
from optimizer_async.jsonio import json_text
from optimizer_async.money import bill
from optimizer_async.money.costs import Money
from optimizer_async.records import leases, plan_file
from optimizer_async.records.state import StateStore, fingerprint_key, run_key, write_atomically
from optimizer_async.reporting.report import RunReport
from optimizer_async.runs import baking
from optimizer_async.runs.configs import RunConfig
from optimizer_async.runs.replays import BeforeImages, FreshPlan, Replay, Scope
from optimizer_async.runs.store import lease_store, new_run_id, open_store
from optimizer_async.steps.inventory import FINGERPRINT_KEY

log = structlog.get_logger("optimizer_async.runner")
Calls = tuple[Counter[tuple[str, str, str]], Counter[tuple[str, str]]]


@dataclass(frozen=True)
class Request:
    """One run as the orchestration takes it: what it replays, and where it stands. `place`,
    `organisation_run`: the account (its filters) and the organisation's run it is part of
    (`--accounts`); `lease`: False for the bake's rollbacks, inside a run that holds them."""

    replay: Replay
    trigger: str | None = None  # what started it, when not the command line
    run_id: str | None = None  # its id, when its caller named it first (the service's API)
    place: Place | None = None
    organisation_run: str | None = None
    lease: bool = True


@dataclass(frozen=True)
class Controls:
    """How a run is driven from outside: `clock`, its gateway's (tests: the sandbox's model
    time); `stop` asks it to stop; `signals`: SIGINT and SIGTERM ask it (the command line)."""

    clock: Clock | None = None
    stop: StopRequest = field(default_factory=StopRequest)
    signals: bool = False


@dataclass(frozen=True)
class Followed:
    """How a run is followed from inside a larger one (an organisation's place, a bake's
    rollback): `stop` asks it to stop, `counts` is its progress for whoever shows it,
    `since` the calls its report counts from (None: from its own start)."""

    stop: StopRequest = field(default_factory=StopRequest)
    counts: progress.Counts = field(default_factory=progress.Counts)
    since: Calls | None = None


@dataclass(frozen=True)
class _Started:
    at: datetime  # UTC from the run's clock: the sandbox's model time in tests
    monotonic: float
    calls: Calls


@dataclass(frozen=True)
class _Done:
    """What the engine, the plan out and the bake made of a run, for its report."""

    fleet: FleetRun
    planned: dict[str, Any] | None  # a dry run's plan document
    written: str | None  # where its plan file was written
    bake: dict[str, Any] | None


async def run_once(
    config: RunConfig, aws_settings: AwsSettings, clock: Clock | None = None
) -> RunReport:
    """One discover-plan-(apply-verify[-bake]) pass over the configured environments."""
    return await replay_once(Request(FreshPlan(config)), aws_settings, Controls(clock))


async def replay_once(
    request: Request, aws_settings: AwsSettings, controls: Controls | None = None
) -> RunReport:
    """One run of its own gateway and state store."""
    controls = controls or Controls()
    config = request.replay.config
    async with anyio.create_task_group() as watching:
        if controls.signals and threading.current_thread() is threading.main_thread():
            await watching.start(signals.watch, controls.stop)
        async with Aws.open(aws_settings, controls.clock) as aws:
            calls = aws.counter.mark()  # the run's report counts the preflight too
            account = await aws.preflight()
            store = await open_store(config, aws)
            followed = Followed(controls.stop, progress.Counts(), calls)
            if config.progress:
                place = progress.Place(account, aws.region, followed.counts, aws.busiest_queue)
                watching.start_soon(progress.watch, [place], progress.on_terminal())
            report = await run_recorded(aws, store, request, followed)
        watching.cancel_scope.cancel()
    return report


async def run_recorded(
    aws: Aws, store: StateStore, request: Request, followed: Followed | None = None
) -> RunReport:
    """A run with its record (see the module's docstring); the leases it takes are given
    back once it is over."""
    followed = followed or Followed()
    async with contextlib.AsyncExitStack() as leased:
        run = _Run(aws, store, request, followed.stop, followed.counts)
        return await run.execute(leased, followed.since or aws.counter.mark())


class _Run:
    """One run's steps, in order (`execute`)."""

    def __init__(
        self,
        aws: Aws,
        store: StateStore,
        request: Request,
        stop: StopRequest,
        counts: progress.Counts,
    ) -> None:
        self.aws, self.store, self.request = aws, store, request
        self.stop, self.counts = stop, counts
        self.replay = request.replay
        self.run_id = request.run_id or new_run_id()

    async def execute(self, leased: contextlib.AsyncExitStack, calls: Calls) -> RunReport:
        started = _Started(self.aws.clock.utcnow(), time.monotonic(), calls)
        scope = await self.replay.scope(self.aws, self.store, self.request.place, self.run_id)
        in_order = scope.suffixes
        scope, held = await self._leases(leased, scope)
        self.counts.run_id, self.counts.environments = self.run_id, len(scope.suffixes)
        book = await self.replay.prices(self.aws)
        record = await self._record(started, scope)
        with structlog.contextvars.bound_contextvars(run_id=self.run_id):
            await self.store.write(run_key(self.run_id, "run.json"), record)
            fleet = await self._engine(scope, book)
            fleet.environments = _with_held(fleet, held, in_order)
            planned, written = await self._plan_out(fleet, scope)
            done = _Done(fleet, planned, written, await self._bake(fleet, scope))
            report = await self._report(started, scope, book, done)
            await self._finish(record, report)
        return report

    async def _leases(
        self, leased: contextlib.AsyncExitStack, scope: Scope
    ) -> tuple[Scope, dict[str, leases.Holder]]:
        """A run that may write holds a lease per environment until it is over; those
        another run holds are left out (reported held)."""
        if not (self.request.lease and not self.replay.dry_run and scope.suffixes):
            return scope, {}
        account = await self.aws.account_id()
        holding = leases.holding(
            lease_store(self.store), account, self.aws.region, scope.suffixes, self.run_id,
            self.aws.clock,
        )  # fmt: skip
        taken = await leased.enter_async_context(holding)
        records = scope.records
        if records is not None:
            records = {suffix: records[suffix] for suffix in taken.taken}
        kept = tuple(s for s in scope.suffixes if s not in taken.refused)
        return replace(scope, suffixes=kept, records=records), dict(taken.refused)

    async def _record(self, started: _Started, scope: Scope) -> dict[str, Any]:
        """run.json: what the run is, who runs it and the leases it holds (`runs` tells a
        dead holder's record apart); the fingerprint key for its before-images."""
        request, replay = self.request, self.replay
        FINGERPRINT_KEY.set(await fingerprint_key(self.store))  # its context and children's
        plan = scope.plan
        log.info("run.started", run_id=self.run_id, command=replay.command,
                 suffixes=list(scope.suffixes), dry_run=replay.dry_run,
                 steps=[step.name for step in scope.steps], state=self.store.location,
                 trigger=request.trigger)  # fmt: skip
        leased = request.lease and not replay.dry_run
        return {
            "run_id": self.run_id,
            "command": replay.command,
            "rollback_of": replay.rollback_of,
            "plan_file": replay.applied_plan,
            "plan_sha256": None if plan is None else plan.get(plan_file.DIGEST),
            "trigger": request.trigger,
            "started_at": started.at.isoformat(),
            "dry_run": replay.dry_run,
            "account": await self.aws.account_id(),
            "region": self.aws.region,
            "organisation_run": request.organisation_run,
            "suffixes": list(scope.suffixes),
            "shard": None if replay.shard is None else str(replay.shard),
            "steps": [step.name for step in scope.steps],
            "status": "running",
            "holder": {
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "processes": leases.PROCESSES,
            },
            "leased": list(scope.suffixes) if leased else [],
        }

    async def _engine(self, scope: Scope, book: PriceBook | None) -> FleetRun:
        """Discover, plan, [apply, wait, verify]; abandoned after a stop: what it got to."""
        config, found = self.replay.config, scope.found
        settings = EngineSettings(
            targets=scope.targets,
            steps=scope.steps,
            function_bases=scope.bases,
            concurrency=config.concurrency,
            dry_run=self.replay.dry_run,
            store=self.store,
            run_id=self.run_id,
            prices=book,
            stop=self.stop,
            known_functions=found.reads if found is not None else {},
            refused_functions=found.refused if found is not None else frozenset(),
            progress=self.counts,
        )
        engine = self.replay.engine(self.aws, settings, scope)
        with self.stop.guard() as running:
            fleet = await engine.run(scope.suffixes)
        if running.cancelled_caught:
            log.warning("run.abandoned", signal=self.stop.name)
            return engine.partial()
        return fleet

    async def _plan_out(
        self, fleet: FleetRun, scope: Scope
    ) -> tuple[dict[str, Any] | None, str | None]:
        """A dry run's plan document (never one cut short) and, unless the run is one place
        of an organisation's (which writes every place's in one file), its file."""
        path = self.replay.plan_out
        if path is None or self.stop.requested:
            return None, None
        region, targets = self.replay.config.region, scope.targets
        planned = plan_file.plan_document(
            self.run_id, region, fleet.plan, fleet.inventories, scope.steps, targets
        )
        if self.request.place is not None:
            return planned, None
        payload = "".join(json_text.chunks(planned, sort_keys=True))
        return planned, await anyio.to_thread.run_sync(write_atomically, path, payload)

    async def _bake(self, fleet: FleetRun, scope: Scope) -> dict[str, Any] | None:
        """A bake fails alone: the changes stand, the report must still be written."""
        replay = self.replay
        if not isinstance(replay, FreshPlan) or replay.bake is None:
            return None
        if replay.dry_run or self.stop.requested:
            return None

        async def roll_back(undo: BeforeImages) -> RunReport:
            request = Request(undo, trigger="bake", lease=False)
            return await run_recorded(self.aws, self.store, request)

        bake = baking.Bake(replay, self.run_id, self.store, roll_back)
        try:
            with self.stop.guard():
                return await bake.baked(self.aws, fleet, scope.steps, self.stop)
        except Exception as error:
            reason = errors.describe(error)
            log.error("bake.failed", error=reason)
            return {"duration_s": replay.bake.duration_s, "error": reason, "rolled_back": {}}

    async def _report(
        self, started: _Started, scope: Scope, book: PriceBook | None, done: _Done
    ) -> RunReport:
        replay, aws, fleet = self.replay, self.aws, done.fleet
        lines = (line for env in fleet.environments for line in env.total_money.lines)
        money = Money() if book is None else bill.account_lines(lines, book, replay.free_tier)
        account = await aws.account_id()
        return RunReport(
            run_id=self.run_id,
            dry_run=replay.dry_run,
            region=replay.config.region,
            started_at=started.at,
            elapsed_s=time.monotonic() - started.monotonic,
            environments=fleet.environments,
            api_calls=aws.counter.snapshot(since=started.calls),  # a bake's rollbacks too
            steps=tuple(step.name for step in scope.steps),
            selected=replay.selected,
            rollback_of=replay.rollback_of,
            applied_plan=replay.applied_plan,
            plan_out=done.written,
            bake=done.bake,
            account_money=money,
            prices=book.origin if book else "",
            stopped_by=self.stop.signum,
            found=scope.found,
            account=account,
            sharding=replay.sharding(account, aws.region, scope, book),
            plan=done.planned if scope.plan is None else scope.plan,
            record=self.store.where(run_key(self.run_id, "report.json")),
        )

    async def _finish(self, record: dict[str, Any], report: RunReport) -> None:
        """report.json, and the record's final status."""
        store, replay = self.store, self.replay
        await store.write(run_key(self.run_id, "report.json"), report.document())
        finished = self.aws.clock.utcnow().isoformat()
        await store.write(run_key(self.run_id, "run.json"),
                          {**record, "status": report.status, "finished_at": finished})  # fmt: skip
        # In the report's words (`costs.money_text`); a rollback's money is not its own.
        said = (
            {}
            if replay.rollback_of is not None
            else {"savings": report.savings.net_text("would" if replay.dry_run else "does")}
        )
        log.info("run.finished", status=report.status,
                 elapsed_ms=round(report.elapsed_s * 1000, 1),
                 aws_calls=report.api_calls["total"], **said)  # fmt: skip


def _with_held(
    fleet: FleetRun, held: dict[str, leases.Holder], in_order: tuple[str, ...]
) -> list[EnvironmentOutcome]:
    """The run's environments in its order, each another run holds with who holds it."""
    if not held:
        return fleet.environments
    done = {env.suffix: env for env in fleet.environments}
    return [
        done.get(suffix) or EnvironmentOutcome(suffix, held_by=held[suffix].describe())
        for suffix in in_order
        if suffix in done or suffix in held
    ]
