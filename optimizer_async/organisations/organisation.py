"""`--accounts FILE`: one run over many accounts and regions, side by side.

AWS's quotas are per account and region, so each place (account, region) gets a gateway of
its own (its own limiters, its role's credentials) and runs as a run of its own (run id,
record, before-images, report): the places do not wait on each other's quotas, and the
whole run takes about as long as its slowest place (`PLACES_AT_ONCE` at a time). The run's
own credentials say who the caller is, keep the state store and assume the roles (in the
caller's region: a place's may not be enabled for it), and act in an account listed
without a role. A place that cannot run (its role refused, its credentials another
account's) fails alone with its reason; the others go on.

The organisation's record (`runs/{id}/run.json`, kind `organisation`) and each place's own
record (`organisation_run`, from its start) say which runs it made, so `rollback --run-id ID
--accounts FILE` puts back every place's changes, each in its own account and region, even
after a run killed part way. The free tier belongs to an account once: with `--free-tier`
it is applied in the account's first region only.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

import anyio
import structlog

from optimizer_async.aws import errors
from optimizer_async.aws.assumed_role import RoleToAssume, session_name
from optimizer_async.aws.gateway import Aws, AwsSettings, Unavailable
from optimizer_async.execution import progress, signals
from optimizer_async.execution.recorded import RecordError
from optimizer_async.fleet.accounts import Account, Place, places
from optimizer_async.jsonio import json_text
from optimizer_async.records import plan_file
from optimizer_async.records.state import StateStore, run_key, write_atomically
from optimizer_async.reporting.org_report import KIND, OrganisationReport, PlaceResult
from optimizer_async.reporting.report import RunReport
from optimizer_async.runs.orchestration import (
    Controls,
    Followed,
    Request,
    replay_once,
    run_recorded,
)
from optimizer_async.runs.replays import BeforeImages, FreshPlan, PlanFile, Replay
from optimizer_async.runs.store import new_run_id, open_store

log = structlog.get_logger("optimizer_async.organisation")

# Places run at once: each holds its clients (some 3 MB) and their calls take the client's
# CPU; past a few dozen the client, not AWS's quotas, is what a place waits for.
PLACES_AT_ONCE: Final = 32
FREE_TIER_NOTE = "the free tier is the account's once: applied in each account's first region"


class WrongAccount(Exception):
    """A place's credentials answered as another account than the file says."""


def place_settings(settings: AwsSettings, place: Place, run_id: str) -> AwsSettings:
    """The place's gateway: its region, and its role assumed with the run's credentials."""
    account = place.account
    role = (
        None
        if account.role is None
        else RoleToAssume(
            account.role, session_name(run_id), account.external_id, sts_region=settings.region
        )
    )
    return replace(settings, region=place.region, role=role)


async def run_organisation(
    request: Request, settings: AwsSettings, controls: Controls | None = None
) -> OrganisationReport:
    """Every place of the request's `--accounts` run side by side (the module's docstring)."""
    controls, started = controls or Controls(), time.monotonic()
    async with anyio.create_task_group() as watching:
        if controls.signals and threading.current_thread() is threading.main_thread():
            await watching.start(signals.watch, controls.stop)
        async with Aws.open(settings, controls.clock) as home:
            caller = await home.preflight()
            store = await open_store(request.replay.config, home)
            run = _OrganisationRun(request, settings, controls, home, store, started)
            places = await run.places()
            if request.replay.config.progress:
                shown = [place.progress() for place in places]
                watching.start_soon(progress.watch, shown, progress.on_terminal())
            report = await run.execute(caller, places)
        watching.cancel_scope.cancel()
    return report


class _OrganisationRun:
    """An organisation's run, in order (`execute`): its record, every place's run, the
    plan file, its report and final status."""

    def __init__(
        self,
        request: Request,
        settings: AwsSettings,
        controls: Controls,
        home: Aws,
        store: StateStore,
        started: float,  # monotonic, before the caller's preflight: its elapsed time counts it
    ) -> None:
        self.replay, self.settings, self.controls = request.replay, settings, controls
        self.home, self.store = home, store
        self.run_id = request.run_id or new_run_id()
        self.started, self.started_at = started, home.clock.utcnow()

    async def places(self) -> list[_PlaceRun]:
        return [
            _PlaceRun(PlaceResult(place), own)
            for place, own in await _places_of(self.replay, self.store)
        ]

    async def execute(self, caller: str, places: list[_PlaceRun]) -> OrganisationReport:
        record = self._record(caller, places)
        await self.store.write(run_key(self.run_id, "run.json"), record)
        log.info("organisation.started", run_id=self.run_id, places=len(places),
                 command=self.replay.command, dry_run=self.replay.dry_run)  # fmt: skip
        await self._run_places(places)
        plan_out = None
        if self.replay.plan_out is not None and not self.controls.stop.requested:
            plan_out = await _write_plan(self.replay.plan_out, self.run_id, places)
        report = self._report(places, plan_out)
        await self._finish(record, report)
        return report

    def _record(self, caller: str, places: list[_PlaceRun]) -> dict[str, Any]:
        """The organisation's run.json, before any place runs."""
        replay, shard = self.replay, self.replay.shard
        return {
            "run_id": self.run_id,
            "kind": KIND,
            "command": replay.command,
            "rollback_of": replay.rollback_of,
            "caller_account": caller,
            "started_at": self.started_at.isoformat(),
            "dry_run": replay.dry_run,
            "shard": None if shard is None else str(shard),
            "places": [_place_json(run.result) for run in places],
            "status": "running",
        }

    async def _run_places(self, places: list[_PlaceRun]) -> None:
        """Every place's run, `PLACES_AT_ONCE` at a time."""
        at_once = anyio.Semaphore(PLACES_AT_ONCE)

        async def run(place: _PlaceRun) -> None:
            async with at_once:
                await place.run(self)

        async with anyio.create_task_group() as group:
            for place in places:
                group.start_soon(run, place)

    def _report(self, places: list[_PlaceRun], plan_out: str | None) -> OrganisationReport:
        replay, shard = self.replay, self.replay.shard
        return OrganisationReport(
            run_id=self.run_id,
            dry_run=replay.dry_run,
            command=replay.command,
            started_at=self.started_at,
            elapsed_s=time.monotonic() - self.started,
            places=[run.result for run in places],
            own_calls=self.home.counter.snapshot(),
            stopped_by=self.controls.stop.signum,
            rollback_of=replay.rollback_of,
            shard=None if shard is None else {"index": shard.index, "count": shard.count},
            notes=[FREE_TIER_NOTE] if replay.free_tier else [],
            plan_out=plan_out,
            applied_plan=replay.applied_plan,
        )

    async def _finish(self, record: dict[str, Any], report: OrganisationReport) -> None:
        """report.json, and the record's final status with every place's run."""
        await self.store.write(run_key(self.run_id, "report.json"), report.document())
        finished = self.home.clock.utcnow().isoformat()
        await self.store.write(
            run_key(self.run_id, "run.json"),
            {
                **record,
                "places": [_place_json(place) for place in report.places],
                "status": report.status,
                "finished_at": finished,
            },
        )
        log.info("organisation.finished", run_id=self.run_id, status=report.status)


async def _write_plan(path: Path, run_id: str, places: Sequence[_PlaceRun]) -> str:
    """The organisation's plan file: every place's plan that was made (a place that could
    not run has none: the report says why)."""
    planned = [
        {
            "account": run.result.place.account.account_id,
            "account_name": run.result.place.account.name,
            "region": run.result.place.region,
            "plan": run.result.report.plan,
        }
        for run in places
        if run.result.report is not None and run.result.report.plan is not None
    ]
    document = plan_file.organisation_document(run_id, planned)
    payload = "".join(json_text.chunks(document, sort_keys=True))
    return await anyio.to_thread.run_sync(write_atomically, path, payload)


class _PlaceRun:
    """One place's run inside the organisation's: what it replays there, its gateway, its
    counts, its result."""

    def __init__(self, result: PlaceResult, replay: Replay) -> None:
        self.result, self.replay = result, replay
        self.counts = progress.Counts()
        self.aws: Aws | None = None  # once open

    def progress(self) -> progress.Place:
        account = self.result.place.account
        return progress.Place(
            f"{account.name} ({account.account_id})",
            self.result.place.region,
            self.counts,
            lambda: None if self.aws is None else self.aws.busiest_queue(),
        )

    async def run(self, organisation: _OrganisationRun) -> None:
        """The place's run; any failure of its own is its result's error, never raised:
        the other places go on."""
        place, result = self.result.place, self.result
        run_id = organisation.run_id
        own = place_settings(organisation.settings, place, run_id)
        request = Request(self.replay, place=place, organisation_run=run_id)
        try:
            async with Aws.open(own, organisation.controls.clock) as aws:
                self.aws, calls = aws, aws.counter.mark()
                try:
                    got = await aws.preflight()
                    if got != place.account.account_id:
                        raise WrongAccount(
                            f"the credentials for account {place.account.name} are "
                            f"account {got}'s, not {place.account.account_id}'s"
                        )
                    followed = Followed(organisation.controls.stop, self.counts, calls)
                    result.report = await run_recorded(aws, organisation.store, request, followed)
                finally:
                    if result.report is None:  # what it called before it failed
                        result.calls = aws.counter.snapshot(since=calls)
        except (Unavailable, WrongAccount, RecordError) as error:
            result.error = str(error)
        except Exception as error:
            result.error = errors.describe(error)
        if result.error is not None:
            log.error("place.failed", account=place.account.account_id,
                      region=place.region, error=result.error)  # fmt: skip


def _place_json(result: PlaceResult) -> dict[str, Any]:
    return {
        "account": result.place.account.account_id,
        "account_name": result.place.account.name,
        "region": result.place.region,
        "run_id": None if result.report is None else result.report.run_id,
        "status": "running" if result.report is None and result.error is None else result.status,
        "error": result.error,
    }


@functools.singledispatch
async def _places_of(replay: Replay, store: StateStore) -> list[tuple[Place, Replay]]:
    """The places to run, each with what it replays there."""
    raise TypeError(f"no places for a {type(replay).__name__}")


@_places_of.register
async def _every_place(replay: FreshPlan, store: StateStore) -> list[tuple[Place, Replay]]:
    """A run: its targets, in every place of the accounts file."""
    config = replay.config
    found: list[tuple[Place, Replay]] = []
    for place in places(config.accounts):
        first = place.region == place.account.regions[0]  # the account's free tier: once
        own = replace(config, region=place.region, free_tier=config.free_tier and first)
        found.append((place, FreshPlan(own)))
    return found


@_places_of.register
async def _planned_places(replay: PlanFile, store: StateStore) -> list[tuple[Place, Replay]]:
    """`apply` of an organisation's plan: the places its plan holds, each with its plan."""
    config = replay.config
    document = replay.document or plan_file.load(config.plan_file, config.plan_sha256)
    return [
        (
            place := _place(replay, entry, str(config.plan_file)),
            PlanFile(replace(config, region=place.region), document=entry["plan"]),
        )
        for entry in document["places"]
    ]


@_places_of.register
async def _recorded_places(replay: BeforeImages, store: StateStore) -> list[tuple[Place, Replay]]:
    """A rollback: the places the recorded run covered (an organisation's, or one place's
    own run), each putting back its own run; a place whose run changed nothing has nothing
    to put back and is left out."""
    rollback_of = replay.config.run_id
    record = await store.read(run_key(rollback_of, "run.json"))
    if record is None:
        raise RecordError(f"run {rollback_of} has no record in {store.location}")
    recorded: Sequence[dict[str, Any]] = (
        await _places_run(store, rollback_of)
        if record.get("kind") == KIND
        else [{"account": record.get("account"), "region": record["region"], "run_id": rollback_of}]
    )
    found: list[tuple[Place, Replay]] = []
    for entry in recorded:
        run = entry.get("run_id")
        if run and await store.keys(run_key(str(run), "before-images")):
            place = _place(replay, entry, f"run {rollback_of}")
            own = replace(replay.config, region=place.region, run_id=str(run))
            found.append((place, BeforeImages(own)))
    if not found:
        raise RecordError(
            f"run {rollback_of} left no before-images in {store.where(run_key(rollback_of))}: "
            "nothing it changed to roll back"
        )
    return found


async def _places_run(store: StateStore, organisation_run: str) -> list[dict[str, Any]]:
    """The places' runs of an organisation's run, from their own records (each names its
    organisation's run from its start): the organisation's record lists them only once it
    is over, and a run killed before that still leaves what its places changed."""
    found = []
    for key in await store.keys("runs"):
        if key.endswith("/run.json"):
            record = await store.read(key)
            if record is not None and record.get("organisation_run") == organisation_run:
                found.append(record)
    return sorted(found, key=lambda record: str(record["run_id"]))


def _place(replay: Replay, entry: dict[str, Any], what: str) -> Place:
    """The place a record names, its account as the accounts file has it."""
    by_id = {account.account_id: account for account in replay.accounts}
    account: Account | None = by_id.get(str(entry.get("account")))
    if account is None:
        raise RecordError(
            f"{what} is for account {entry.get('account')}, which the --accounts file does "
            "not list: give the file it was made with"
        )
    return Place(account, str(entry["region"]))


async def run_anywhere(
    request: Request, settings: AwsSettings, controls: Controls | None = None
) -> RunReport | OrganisationReport:
    """A run in its account and region, or (`--accounts`) in every place its file lists."""
    if request.replay.accounts:
        return await run_organisation(request, settings, controls)
    return await replay_once(request, settings, controls)
