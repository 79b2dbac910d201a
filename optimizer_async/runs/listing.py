"""`runs`: every recorded run, with what it is now - a `running` record whose holder is gone
is `interrupted`, a run a later rollback put back is `rolled_back` - and how many
environments it can roll back."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final

from optimizer_async.execution.results import RecordStatus
from optimizer_async.records import leases
from optimizer_async.records.state import StateStore, UnreadableRecord, run_key
from optimizer_async.reporting.org_report import KIND as ORGANISATION


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
                _check_record(record, key, store.where(key))
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


def _check_record(record: dict[str, Any], key: str, where: str) -> None:
    """A run's record is the run its directory names, its places (an organisation's) a
    list of objects: else UnreadableRecord, naming the file."""
    places = record.get("places", [])
    if record.get("run_id") != key.split("/")[1] or not (
        isinstance(places, list) and all(isinstance(place, dict) for place in places)
    ):
        raise UnreadableRecord(
            f"{where} is not the record of run {key.split('/')[1]} (its run_id "
            f"{record.get('run_id')!r}, its places a list of objects)"
        )
