"""Where a run keeps what it did: its id, its state store and leases, the before-images it
left for a rollback."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from optimizer_async.aws.gateway import Aws
from optimizer_async.execution.recorded import RecordError
from optimizer_async.records import leases
from optimizer_async.records.state import (
    LocalStateStore,
    S3StateStore,
    StateStore,
    UnreadableRecord,
    run_key,
)
from optimizer_async.reporting.org_report import KIND as ORGANISATION
from optimizer_async.runs.configs import CommonConfig


def new_run_id() -> str:
    """Sortable and unique: UTC time to the second, then random hex."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


async def open_store(config: CommonConfig, aws: Aws) -> StateStore:
    """The run's state store: the S3 bucket if named (checked first), else the local dir."""
    if config.state_bucket is None:
        return LocalStateStore(config.state_dir)
    store = S3StateStore(aws, config.state_bucket, config.state_prefix)
    await store.check()
    return store


def lease_store(store: StateStore) -> leases.LeaseStore:
    """Leases where the run records are: beside the local state, or in the state bucket."""
    if isinstance(store, S3StateStore):
        return leases.S3Leases(store)
    assert isinstance(store, LocalStateStore)
    return leases.LocalLeases(store.root)


async def load_images(store: StateStore, run_id: str) -> dict[str, dict[str, Any]]:
    """The before-images a run left, by suffix; RecordError if there are none."""
    keys = await store.keys(run_key(run_id, "before-images"))
    images: dict[str, dict[str, Any]] = {}
    for key in keys:
        image = await store.read(key)
        if image is not None:
            images[_suffix_of(image, key, store.where(key))] = image
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


def _suffix_of(image: dict[str, Any], key: str, where: str) -> str:
    """The environment a before-image is of: the one its file is named after, and its
    changes a list (UnreadableRecord, naming the file, otherwise)."""
    suffix = image.get("suffix")
    if suffix != key.rsplit("/", 1)[-1].removesuffix(".json") or not isinstance(
        image.get("changes"), list
    ):
        raise UnreadableRecord(
            f"{where} is not a before-image of its environment (suffix {suffix!r}, its "
            "changes a list)"
        )
    return str(suffix)
