"""Before-images: the state of every resource of an environment, saved before any write.

They are the rollback material (the rollback command is its own issue): enough to put each
setting back exactly. Environment variable values are not stored — the optimizer never
changes existing ones, so undoing its work means removing the names it added; a hash of
the values shows whether anyone else changed them since. Files are written atomically,
readable by the owner only.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from optimizer_async.inventory import EnvironmentInventory, FunctionInventory

SCHEMA_VERSION = 1


def _function_image(function: FunctionInventory) -> dict[str, Any]:
    state = function.state
    return {
        "name": state.name,
        "arn": state.arn,
        "revision_id": state.revision_id,
        "memory_mb": state.memory_mb,
        "timeout_s": state.timeout_s,
        "tracing_mode": state.tracing_mode,
        "dead_letter_target": state.dead_letter_target,
        "environment_variable_names": sorted(state.environment),
        "environment_fingerprint": state.environment.fingerprint(),
        "reserved_concurrency": state.reserved_concurrency,
        "log_group": None if function.log_group is None else asdict(function.log_group),
        "alarms": dict(function.alarms),
    }


def before_image(inventory: EnvironmentInventory) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "taken_at": datetime.now(UTC).isoformat(),
        "suffix": inventory.suffix,
        "account_id": inventory.account_id,
        "region": inventory.region,
        "functions": [_function_image(fn) for fn in inventory.functions],
        "queue": None
        if inventory.queue is None
        else {"name": inventory.queue.name, "attributes": dict(inventory.queue.attributes)},
        "role_policies": [asdict(policy) for policy in inventory.role_policies],
        "bucket": asdict(inventory.bucket),
    }


def save_before_image(directory: Path, inventory: EnvironmentInventory) -> Path:
    """Write `{directory}/{suffix}.json` atomically (0600) and return its path."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = directory / f"{inventory.suffix}.json"
    payload = json.dumps(before_image(inventory), indent=2, sort_keys=True, default=str)
    descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=f".{inventory.suffix}.")
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target
