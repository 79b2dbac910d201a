"""RunConfig -> report(s) -> exit code: sets up logging, the sandbox if asked, AWS, the engine."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TextIO, cast

import anyio
import structlog

from optimizer_async.aws import errors, price_list, pricing
from optimizer_async.aws.clock import Clock
from optimizer_async.aws.gateway import Aws, AwsSettings, Unavailable
from optimizer_async.commands.config import BakeSettings, OutputFormat, RunConfig, UsageError
from optimizer_async.definitions.targets import Targets, targets_from_json, targets_to_json
from optimizer_async.execution import bake, progress, signals
from optimizer_async.execution.engine import Engine, EngineSettings, FleetRun
from optimizer_async.execution.recorded import (
    RecordedEngine,
    RecordError,
    function_bases,
    recorded_steps,
)
from optimizer_async.execution.results import FAILING, EnvironmentOutcome, RecordStatus
from optimizer_async.execution.signals import StopRequest
from optimizer_async.fleet import finder
from optimizer_async.fleet.accounts import Account, Place
from optimizer_async.fleet.shards import Fingerprint
from optimizer_async.jsonio import json_text
from optimizer_async.money import bill, realised
from optimizer_async.money.costs import Money
from optimizer_async.organisations import merge
from optimizer_async.records import leases, plan_file
from optimizer_async.records.state import (
    LocalStateStore,
    S3StateStore,
    StateBucketError,
    StateStore,
    fingerprint_key,
    run_key,
    write_atomically,
)
from optimizer_async.reporting import logs
from optimizer_async.reporting.org_report import KIND as ORGANISATION
from optimizer_async.reporting.org_report import OrganisationReport
from optimizer_async.reporting.report import RunReport, Sharding, render_runs, render_savings
from optimizer_async.steps.base import Step
from optimizer_async.steps.inventory import FINGERPRINT_KEY
from optimizer_async.steps.registry import REGISTRY

log = structlog.get_logger("optimizer_async.runner")


def new_run_id() -> str:
    """Sortable and unique: UTC time to the second, then random hex."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


async def open_store(config: RunConfig, aws: Aws) -> StateStore:
    """The run's state store: the S3 bucket if named (checked first), else the local dir."""
    if config.state_bucket is None:
        return LocalStateStore(config.state_dir)
    store = S3StateStore(aws, config.state_bucket, config.state_prefix)
    await store.check()
    return store


async def price_book(config: RunConfig, aws: Aws) -> pricing.PriceBook:
    """The run's prices: the dated table for its region, or (`--prices live`) the Price List
    API's, read once per run."""
    if config.prices == "live":
        return await price_list.live_book(aws, config.region)
    return pricing.table(config.region)


async def load_images(store: StateStore, run_id: str) -> dict[str, dict[str, Any]]:
    """The before-images a run left, by suffix; RecordError if there are none."""
    keys = await store.keys(run_key(run_id, "before-images"))
    images: dict[str, dict[str, Any]] = {}
    for key in keys:
        image = await store.read(key)
        if image is not None:
            images[str(image["suffix"])] = image
    if not images:
        where = store.where(run_key(run_id))
        record = await store.read(run_key(run_id, "run.json")) or {}
        if record.get("kind") == ORGANISATION:
            raise RecordError(
                f"run {run_id} ran in {len(record.get('places', []))} account/region(s): "
                "give the --accounts file it ran with"
            )
        raise RecordError(
            f"run {run_id} left no before-images in {where}: nothing it changed to roll back"
        )
    return images


async def run_once(
    config: RunConfig,
    aws_settings: AwsSettings,
    clock: Clock | None = None,
    stop: StopRequest | None = None,
    signals_: bool = False,
    run_id: str | None = None,
    trigger: str | None = None,
) -> RunReport:
    """One discover-plan-(apply-verify[-bake]) pass over the configured environments; for
    `rollback` and `apply`, over those the record names. `clock`: the gateway's (tests);
    `stop`: asks the run to stop; `signals_`: SIGINT and SIGTERM ask it (the command line);
    `run_id`: the run's id, when its caller named it first (the service's API); `trigger`:
    what started it, when not the command line (the service's cycles and API)."""
    stop = stop or StopRequest()
    async with anyio.create_task_group() as watching:
        if signals_ and threading.current_thread() is threading.main_thread():
            await watching.start(signals.watch, stop)
        async with Aws.open(aws_settings, clock) as aws:
            calls = aws.counter.mark()  # the run's report counts the preflight too
            account = await aws.preflight()
            store = await open_store(config, aws)
            counts = progress.Counts()
            if config.progress:
                place = progress.Place(account, aws.region, counts, aws.busiest_queue)
                watching.start_soon(progress.watch, [place], progress.on_terminal())
            report = await run_recorded(
                aws,
                store,
                config,
                stop=stop,
                since=calls,
                counts=counts,
                run_id=run_id,
                trigger=trigger,
            )
        watching.cancel_scope.cancel()
    return report


async def run_recorded(
    aws: Aws, store: StateStore, config: RunConfig, *args: Any, **kwargs: Any
) -> RunReport:
    """`_run_recorded` (see there), the leases it takes given back once it is over."""
    async with contextlib.AsyncExitStack() as leased:
        return await _run_recorded(leased, aws, store, config, *args, **kwargs)


def lease_store(store: StateStore) -> leases.LeaseStore:
    """Leases where the run records are: beside the local state, or in the state bucket."""
    if isinstance(store, S3StateStore):
        return leases.S3Leases(store)
    assert isinstance(store, LocalStateStore)
    return leases.LocalLeases(store.root)


async def _run_recorded(
    leased: contextlib.AsyncExitStack,
    aws: Aws,
    store: StateStore,
    config: RunConfig,
    records: dict[str, dict[str, Any]] | None = None,
    trigger: str | None = None,
    stop: StopRequest | None = None,
    since: tuple[Counter[tuple[str, str, str]], Counter[tuple[str, str]]] | None = None,
    counts: progress.Counts | None = None,
    place: Place | None = None,
    organisation_run: str | None = None,
    plan: dict[str, Any] | None = None,
    lease: bool = True,
    run_id: str | None = None,
) -> RunReport:
    """A run with its record. `records`: a rollback's before-images when the caller has them
    already (the bake's); `trigger`: what started it, when not the command line; `counts`:
    where its progress is counted for whoever watches; `place`, `organisation_run`: the
    account (its filters) and the organisation's run this run is part of (`--accounts`);
    `plan`: `apply`'s plan document when not the plan file itself (a place's, of an
    organisation's plan). With `place`, a dry run's plan document is kept on the report
    (`RunReport.plan`) for the organisation's plan file. A run that may write holds a lease
    per environment (`leases.py`) until it is over (`lease`: False for the bake's rollbacks,
    inside a run that holds them); an environment another run holds is reported as held."""
    run_id, stop = run_id or new_run_id(), stop or StopRequest()
    # UTC from the run's clock: the sandbox's model time in tests, so a run can be backdated.
    started_at, started = aws.clock.utcnow(), time.monotonic()
    calls = since or aws.counter.mark()
    rollback, applying = config.command == "rollback", config.command == "apply"
    applied: dict[str, Any] | None = None  # apply: the plan document it applies
    targets = config.targets
    if rollback and records is None:
        assert config.run_id is not None
        records = await load_images(store, config.run_id)
    elif applying:
        assert config.plan_file is not None
        # Loaded and verified again: still the file the CLI checked, or refused (exit 2).
        applied = plan if plan is not None else plan_file.load(config.plan_file, config.plan_sha256)
        records, targets = applied["environments"], targets_from_json(applied["targets"])
    if records is not None:
        steps = recorded_steps(records, {step.name: step for step in REGISTRY})
        suffixes, bases = tuple(records), function_bases(records)
    else:
        steps = REGISTRY.select(config.only, config.skip)
        suffixes, bases = config.suffixes, config.function_bases
    found, sharding, shard = None, None, config.shard if records is None else None
    account = await aws.account_id()
    if records is not None:
        _same_place(records, account, aws.region, config.run_id or str(config.plan_file))
    elif place is not None and not config.find_all:  # the account's filters, on the suffixes
        left_out = [s for s in suffixes if place.account.refusal(s) is not None]
        suffixes = tuple(s for s in suffixes if s not in left_out)
        if left_out:
            log.info("environments.left_out", account=account, suffixes=left_out,
                     reason=f"account {place.account.name}'s match/exclude")  # fmt: skip

    named: set[str] = set()  # every suffix the run was offered, before a shard's share

    def mine(suffix: str) -> bool:
        named.add(suffix)
        return shard is None or shard.takes(account, aws.region, suffix)

    candidates: list[str]  # what the whole run judges (a shard's fingerprint says it)
    if config.find_all and records is None:  # a shard judges only its own candidates
        filters = finder.Filters(config.match, config.exclude, place.account if place else None)
        with structlog.contextvars.bound_contextvars(run_id=run_id):
            found = await finder.find(aws, bases, filters, mine)
        suffixes = found.suffixes
        candidates = sorted(s for s in named if filters.refusal(s) is None)
    else:
        candidates = sorted(set(suffixes))
    every = suffixes
    if shard is not None:
        suffixes = tuple(s for s in suffixes if mine(s))
    held: dict[str, leases.Holder] = {}
    if lease and not config.dry_run and suffixes:
        taken = await leased.enter_async_context(
            leases.holding(lease_store(store), account, aws.region, suffixes, run_id, aws.clock)
        )
        held = taken.refused
        if records is not None:
            records = {suffix: records[suffix] for suffix in taken.taken}
    in_order, suffixes = suffixes, tuple(s for s in suffixes if s not in held)
    counts = counts or progress.Counts()
    counts.run_id, counts.environments = run_id, len(suffixes)
    # Prices before the record: a Price List failure leaves no run stuck at "running".
    book = await price_book(config, aws) if records is None else None
    if shard is not None and book is not None:  # a shard is a run's, never a replay's
        values = _fingerprinted(config, account, aws.region, steps, targets, book, candidates)
        sharding = Sharding(shard, tuple(every), config.free_tier, Fingerprint.of(values))
    record = {
        "run_id": run_id,
        "command": config.command,
        "rollback_of": config.run_id if rollback else None,
        "plan_file": str(config.plan_file) if applying else None,
        "plan_sha256": None if applied is None else applied.get(plan_file.DIGEST),
        "trigger": trigger,
        "started_at": started_at.isoformat(),
        "dry_run": config.dry_run,
        "account": account,
        "region": config.region,
        "organisation_run": organisation_run,
        "suffixes": list(suffixes),
        "shard": None if config.shard is None else str(config.shard),
        "steps": [step.name for step in steps],
        "status": "running",
        # Who runs it, and the leases it holds: `runs` tells a dead holder's record apart.
        "holder": {"host": socket.gethostname(), "pid": os.getpid(), "processes": leases.PROCESSES},
        "leased": list(suffixes) if lease and not config.dry_run else [],
    }
    FINGERPRINT_KEY.set(await fingerprint_key(store))  # this task's context, and its children's
    with structlog.contextvars.bound_contextvars(run_id=run_id):
        log.info(
            "run.started",
            command=config.command,
            suffixes=list(suffixes),
            dry_run=config.dry_run,
            steps=[step.name for step in steps],
            state=store.location,
            trigger=trigger,
        )
        await store.write(run_key(run_id, "run.json"), record)
        settings = EngineSettings(
            targets=targets,
            steps=steps,
            function_bases=bases,
            concurrency=config.concurrency,
            dry_run=config.dry_run,
            store=store,
            run_id=run_id,
            prices=book,
            stop=stop,
            known_functions=found.reads if found is not None else {},
            refused_functions=found.refused if found is not None else frozenset(),
            progress=counts,
        )
        engine = (
            RecordedEngine(aws, settings, records, "apply" if applying else "undo", config.force)
            if records is not None
            else Engine(aws, settings)
        )
        with stop.guard() as running:
            fleet = await engine.run(suffixes)
        if running.cancelled_caught:  # abandoned after a stop: report what it got to
            fleet = engine.partial()
            log.warning("run.abandoned", signal=stop.name)
        if held:  # in the run's order, each with who holds it
            done = {env.suffix: env for env in fleet.environments}
            fleet.environments = [
                done.get(suffix) or EnvironmentOutcome(suffix, held_by=held[suffix].describe())
                for suffix in in_order
                if suffix in done or suffix in held
            ]
        written, planned = None, None
        if config.plan_out is not None and not stop.requested:  # never a plan cut short
            planned = plan_file.plan_document(
                run_id, config.region, fleet.plan, fleet.inventories, steps, targets
            )
            if place is None:  # else the organisation writes every place's in one file
                payload = "".join(json_text.chunks(planned, sort_keys=True))
                written = await anyio.to_thread.run_sync(write_atomically, config.plan_out, payload)
        baked = None
        if config.bake is not None and not (config.dry_run or records or stop.requested):
            try:
                with stop.guard():
                    baked = await _bake(aws, store, config, run_id, fleet, steps, config.bake, stop)
            except Exception as error:  # the changes stand; the report must still be written
                reason = errors.describe(error)
                log.error("bake.failed", error=reason)
                baked = {"duration_s": config.bake.duration_s, "error": reason, "rolled_back": {}}
        report = RunReport(
            run_id=run_id,
            dry_run=config.dry_run,
            region=config.region,
            started_at=started_at,
            elapsed_s=time.monotonic() - started,
            environments=fleet.environments,
            api_calls=aws.counter.snapshot(since=calls),  # a bake's rollbacks included
            steps=tuple(step.name for step in steps),
            selected=bool(config.only or config.skip),
            rollback_of=config.run_id if rollback else None,
            applied_plan=str(config.plan_file) if applying else None,
            plan_out=written,
            bake=baked,
            account_money=Money()
            if book is None
            else bill.account_lines(
                (line for env in fleet.environments for line in env.total_money.lines),
                book,
                config.free_tier,
            ),
            prices=book.origin if book else "",
            stopped_by=stop.signum,
            found=found,
            account=account,
            sharding=sharding,
            plan=planned if applied is None else applied,
            record=store.where(run_key(run_id, "report.json")),
        )
        await store.write(run_key(run_id, "report.json"), report.document())
        await store.write(
            run_key(run_id, "run.json"),
            {**record, "status": report.status, "finished_at": aws.clock.utcnow().isoformat()},
        )
        log.info(
            "run.finished",
            status=report.status,
            elapsed_ms=round(report.elapsed_s * 1000, 1),
            aws_calls=report.api_calls["total"],
            # In the report's words (`costs.money_text`); a rollback's money is not its own.
            **(
                {}
                if rollback
                else {"savings": report.savings.net_text("would" if config.dry_run else "does")}
            ),
        )
    return report


def _fingerprinted(
    config: RunConfig,
    account: str,
    region: str,
    steps: Sequence[Step],
    targets: Targets,
    book: pricing.PriceBook,
    candidates: Sequence[str],
) -> dict[str, Any]:
    """What a shard's fingerprint is made of (`shards.FINGERPRINT_PARTS`): everything that
    decides what the run does, and the environments it judged before it was split."""
    target_values = targets_to_json(targets)
    guardrails = target_values.pop("guardrails")
    return {
        "command": {"command": config.command, "dry_run": config.dry_run},
        "selection": {
            "account": account,
            "region": region,
            "all": config.find_all,
            "suffixes": [] if config.find_all else sorted(config.suffixes),
            "match": sorted(config.match),
            "exclude": sorted(config.exclude),
            "function_bases": list(config.function_bases),
            "accounts": [_account_filters(a) for a in config.accounts],
        },
        "steps": [step.name for step in steps],
        "targets": target_values,
        "guardrails": guardrails,
        "prices": {"source": config.prices, "book": book.origin, "free_tier": config.free_tier},
        "shards": None if config.shard is None else config.shard.count,
        "candidates": list(candidates),
    }


def _account_filters(account: Account) -> dict[str, Any]:
    """An --accounts entry as it selects environments (its role and external id do not)."""
    return {
        "account": account.account_id,
        "regions": list(account.regions),
        "match": sorted(account.match),
        "exclude": sorted(account.exclude),
    }


def _same_place(records: dict[str, dict[str, Any]], account: str, region: str, of: str) -> None:
    """A recorded change is put back only where it was made: RecordError if a record is of
    another account or region than these credentials' (exit 2, before any write)."""
    for suffix, record in records.items():
        where = (str(record.get("account_id")), str(record.get("region")))
        if where != (account, region):
            raise RecordError(
                f"{of} recorded environment {suffix} in account {where[0]} {where[1]}; these "
                f"credentials are account {account} in {region}: use that account and region "
                "(with --accounts, the file that ran it)"
            )


async def _bake(
    aws: Aws,
    store: StateStore,
    config: RunConfig,
    run_id: str,
    fleet: FleetRun,
    steps: Sequence[Step],
    settings: BakeSettings,
    stop: StopRequest,
) -> dict[str, Any]:
    """Watch what the run changed; roll back at once, by a rollback run of its own, each
    function that got worse. Marks those functions' outcomes; the bake's summary."""

    async def roll_back(worse: Sequence[bake.Watched]) -> dict[str, str | None]:
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
        if not records:
            return missing
        undo = replace(
            config, command="rollback", run_id=run_id, force=False, bake=None, plan_out=None
        )
        report = await run_recorded(aws, store, undo, records, trigger="bake", lease=False)
        failures = {
            fn.name: next(
                (c.error for c in fn.changes if not c.ok and c.error), env.error or fn.status
            )
            for env in report.environments
            for fn in env.functions
            if fn.status == "failed" or env.error
        }
        return {w.function: missing.get(w.function) or failures.get(w.function) for w in worse}

    result = await bake.watch(
        aws,
        bake.watched(fleet, {step.name: step for step in steps}, config.targets),
        settings,
        roll_back,
        stop,
    )
    for env in fleet.environments:
        for fn in env.functions:
            if fn.name in result.worse:
                failure = result.rollback_errors.get(fn.name)
                fn.rolled_back = result.worse[fn.name] + (
                    f"; rolling it back failed: {failure}" if failure else ""
                )
                if failure is None:
                    fn.money = Money()  # undone: it saves nothing
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


async def _list(config: RunConfig, aws_settings: AwsSettings) -> str:
    async with Aws.open(aws_settings) as aws:
        store = await open_store(config, aws)
        return render_runs(await list_runs(store), config.output, store.location)


async def savings_document(
    config: RunConfig, aws_settings: AwsSettings, clock: Clock | None = None
) -> dict[str, Any]:
    """What a recorded run really saved (`savings --run-id`)."""
    assert config.run_id is not None
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


async def _savings(config: RunConfig, aws_settings: AwsSettings) -> str:
    return render_savings(await savings_document(config, aws_settings), config.output)


async def list_runs(store: StateStore, now: datetime | None = None) -> list[dict[str, Any]]:
    """Every recorded run, newest first, with how many environments it can roll back.

    A record still `running` whose holder is gone (its process dead, its leases lapsed: a
    SIGKILL, a lost node) is `interrupted`; a run a later rollback put back is
    `rolled_back`. Either way its record as written stays under `recorded_status`."""
    keys = await store.keys("runs")
    runs: list[dict[str, Any]] = []
    for key in keys:
        if key.endswith("/run.json"):
            record = await store.read(key)
            if record is not None:
                ids = [record["run_id"]]  # an organisation's: its places' runs
                ids += [str(p["run_id"]) for p in record.get("places", ()) if p.get("run_id")]
                images = [k for k in keys for i in ids if k.startswith(run_key(i, "before-images"))]
                runs.append({**record, "environments_recorded": len(images)})
    now = now or datetime.now(UTC)
    for run in runs:
        if run.get("status") == "running" and await _holder_gone(store, run, now):
            _shown_as(run, "interrupted")
    for run in runs:  # an organisation's: interrupted once its places' runs are
        if run.get("kind") == ORGANISATION and run.get("status") == "running":
            places = {
                str(r.get("status")) for r in runs if r.get("organisation_run") == run["run_id"]
            }
            if "interrupted" in places and "running" not in places:
                _shown_as(run, "interrupted")
    undone = _undone(runs)
    for run in runs:
        by = undone.get(str(run["run_id"]))
        if by is not None and run.get("status") != "running":
            _shown_as(run, "rolled_back")
            run["rolled_back_by"] = by
    return sorted(runs, key=lambda run: str(run["run_id"]), reverse=True)


def _shown_as(run: dict[str, Any], status: RecordStatus) -> None:
    run.setdefault("recorded_status", run.get("status"))
    run["status"] = status


# A rollback after which the run it undid is as its before-images recorded it (converged:
# as a rollback recorded it before it said rolled back, and as an organisation's says it).
_PUT_BACK: Final = frozenset({"rolled_back", "nothing_to_do", "converged"})


def _undone(runs: Sequence[dict[str, Any]]) -> dict[str, str]:
    """Run id -> the newest rollback that put all of it back (not the bake's, which puts
    back only the functions that got worse; not one itself rolled back since)."""
    by: dict[str, str] = {}
    for run in sorted(runs, key=lambda run: str(run["run_id"])):
        if (
            run.get("command") == "rollback"
            and run.get("rollback_of")
            and not run.get("dry_run")
            and run.get("trigger") != "bake"
            and run.get("status") in _PUT_BACK
        ):
            by[str(run["rollback_of"])] = str(run["run_id"])
    return {target: rollback for target, rollback in by.items() if rollback not in by}


async def _holder_gone(store: StateStore, record: dict[str, Any], now: datetime) -> bool:
    """Whether a `running` record's run is dead (see `leases.Holder.expired`): a process of
    this machine's process space that no longer exists, or, elsewhere, a run none of whose
    leases is still its own and live. A run elsewhere that holds no lease (a dry run) cannot
    be told dead: it stays running."""
    holder = record.get("holder") or {}
    processes = str(holder.get("processes") or "")
    if processes and processes == leases.PROCESSES:
        alive_until = datetime.max.replace(tzinfo=UTC).isoformat()  # the process decides
        mine = leases.Holder(str(record["run_id"]), "", int(holder["pid"]), alive_until, processes)
        return mine.expired(now)
    leased = record.get("leased")
    if leased is None and not holder and not record.get("dry_run"):  # recorded before both
        leased = record.get("suffixes") if record.get("trigger") != "bake" else None
    if not leased or not record.get("account"):
        return False
    account, region = str(record["account"]), str(record.get("region"))
    for suffix in leased:
        found = await store.read(leases.lease_key(account, region, str(suffix)))
        try:
            lease = None if found is None else leases.Holder(**found)
        except (TypeError, ValueError):  # not a lease this version wrote: not the run's
            lease = None
        if lease is not None and lease.run_id == record["run_id"] and not lease.expired(now):
            return False
    return True


def _say_stopped(report: RunReport | OrganisationReport) -> None:
    if report.stopped_by is not None:
        name = signal.Signals(report.stopped_by).name
        print(f"lambda-optimizer: interrupted by {name}: the report says what was done and "
              "what was not", file=sys.stderr)  # fmt: skip


def _emit(
    report: RunReport | OrganisationReport, config: RunConfig, heading: str | None = None
) -> None:
    details = config.details
    if heading and config.output != "json":
        print(f"\n=== {heading} ===")
    if config.report_file is None:
        report.write(config.output, sys.stdout, details=details)
        sys.stdout.flush()
        return
    suffix = config.report_file.suffix.lower()
    output: OutputFormat = (
        "json" if suffix == ".json" else "markdown" if suffix == ".md" else config.output
    )
    try:
        config.report_file.parent.mkdir(parents=True, exist_ok=True)
        stream = config.report_file.open("w")
    except OSError:  # stdout still gets the report
        report.write(config.output, sys.stdout, details=details)
        sys.stdout.flush()
        raise
    with stream:
        if output == config.output:  # one report made once, written to both
            report.write(output, sys.stdout, stream, details=details)
        else:
            report.write(config.output, sys.stdout, details=details)
            report.write(output, stream, details=details)
    sys.stdout.flush()


class _Stderr:
    """stderr as it is at each write, not as it was when logging was configured: the live
    progress display redirects it, so log lines print above the display, not through it."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


@contextlib.contextmanager
def _log_stream(path: Path | None) -> Iterator[TextIO]:
    """The run's log stream; afterwards logging goes back to structlog's defaults, so that
    nothing logs into a closed file once the run is over (callers embedding `main`)."""
    try:
        if path is None:
            yield cast(TextIO, _Stderr())  # write and flush: all that logging uses of it
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as stream:
            yield stream
    finally:
        structlog.reset_defaults()


def run(config: RunConfig) -> int:
    """The command: its exit code; AWS or the environment failing is one line and exit 1
    (the traceback only at --log-level debug)."""
    with _log_stream(config.log_file) as stream:
        logs.configure(config.log_format, config.log_level, stream)
        try:
            return _command(config)
        except BaseException as raised:
            stopped = signals.stopped_in(raised)  # also from inside a task group
            if stopped is not None:
                raise stopped from None
            if not isinstance(raised, (Exception, BaseExceptionGroup)):
                raise  # SystemExit and the like
            error = _cause(raised)
            if isinstance(error, (UsageError, *_FOUND_BEFORE_ANY_WRITE)):
                raise UsageError(str(error)) from None
            log.debug("run.failed", exc_info=raised)
            text = str(error) if isinstance(error, Unavailable) else errors.describe(error)
            print(f"lambda-optimizer: {text}", file=sys.stderr)
            return 1


# Refusals a run makes before its first write: bad input, reported as such (exit 2).
_FOUND_BEFORE_ANY_WRITE: Final = (
    RecordError,
    StateBucketError,
    realised.TooSoonError,
    plan_file.PlanFileError,
)


def _cause(error: BaseException) -> BaseException:
    """The first real error inside task groups' exception groups."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


def _command(config: RunConfig) -> int:
    settings = AwsSettings(
        region=config.region,
        endpoint_url=config.endpoint_url,
        profile=config.profile,
        time_scale=config.time_scale,
        quotas=config.quotas,
        max_connections=max(16, config.concurrency * 2),
        # N shards run side by side on one account's quotas: each paces at 1/N of them.
        quota_share=1.0 / config.shard.count if config.shard is not None else 1.0,
    )
    if config.sandbox is not None:
        return _run_in_sandbox(config, settings)
    if config.command == "merge":
        return _merge(config)
    if config.command == "serve":
        from optimizer_async.service.serve import serve  # the service builds on this module

        return serve(config, settings)
    try:
        if config.command == "runs":
            sys.stdout.write(anyio.run(_list, config, settings))
            return 0
        if config.command == "savings":
            sys.stdout.write(anyio.run(_savings, config, settings))
            return 0
        report: RunReport | OrganisationReport
        if config.accounts:
            from optimizer_async.organisations.organisation import (
                run_organisation,  # it builds on this module
            )

            report = anyio.run(run_organisation, config, settings, None, None, True)
        else:
            report = anyio.run(run_once, config, settings, None, None, True)
    finally:
        signals.install()  # the event loop restored the defaults: ours again
    _emit(report, config)
    _say_stopped(report)
    return report.exit_code


def _merge(config: RunConfig) -> int:
    """`report merge`: the shards' reports joined (merge.py); bad reports are bad input."""
    try:
        merged = merge.merge(merge.load(config.merge), new_run_id())
    except merge.MergeError as error:
        raise UsageError(str(error)) from None
    text = "".join(json_text.chunks(merged)) + "\n"
    if config.report_file is not None:
        write_atomically(config.report_file, text)
    sys.stdout.write(text)
    failed = merged["status"] in FAILING or merged["status"] == "stopped"  # exit 1, not 143:
    return 1 if failed or (merged.get("bake") or {}).get("error") else 0  # no signal to name


def _run_in_sandbox(config: RunConfig, settings: AwsSettings) -> int:
    from optimizer_async.sandbox.config import SandboxConfig
    from optimizer_async.sandbox.seeder import Seeder
    from optimizer_async.sandbox.server import ACCESS_KEY_ID, SECRET_ACCESS_KEY, EmbeddedSandbox

    request = config.sandbox
    assert request is not None
    credentials = (ACCESS_KEY_ID, SECRET_ACCESS_KEY)
    with EmbeddedSandbox(SandboxConfig()) as sandbox:
        if request.seed:
            Seeder(
                sandbox.endpoint_url,
                config.region,
                functions_per_env=request.functions_per_env,
                credentials=credentials,
                profiles=request.profile_mix,
            ).seed(request.seed)
            log.info("sandbox.seeded", suffixes=list(request.seed))
        sandbox.configure(SandboxConfig.for_profile(request.profile, time_scale=config.time_scale))
        sandbox.reset_stats()
        settings = replace(settings, endpoint_url=sandbox.endpoint_url, credentials=credentials)
        if not config.demo:
            try:
                report = anyio.run(run_once, config, settings, None, None, True)
            finally:
                signals.install()
            _emit(report, config)
            _say_stopped(report)
            return report.exit_code
        phases = (
            ("1/3 dry run: what would change, and what it would save", True),
            ("2/3 the run: apply, wait, verify", False),
            ("3/3 re-run: nothing left to do", False),
        )
        exit_code = 0
        for heading, dry_run in phases:
            try:
                phase = replace(config, dry_run=dry_run)
                report = anyio.run(run_once, phase, settings, None, None, True)
            finally:
                signals.install()
            _emit(report, config, heading)
            if report.stopped_by is not None:
                _say_stopped(report)
                return report.exit_code
            exit_code = max(exit_code, report.exit_code)
        return exit_code
