"""Before-images: the state of every resource of an environment, saved before any write.

They are the rollback material (the rollback command is its own issue): enough to put each
setting back exactly. Each part gives its own fragment (`Part.image`), under the part's
name: the core function part for each function, then the function's other parts, then the
environment's. Environment variable values are not stored - the optimizer never changes
existing ones, so undoing its work means removing the names it added; a hash of the values
shows whether anyone else changed them since. Files are written atomically, readable by the
owner only.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from optimizer_async.core import FUNCTION
from optimizer_async.inventory import EnvironmentInventory
from optimizer_async.steps.base import Part

SCHEMA_VERSION = 1


def before_image(inventory: EnvironmentInventory, parts: Sequence[Part[Any]]) -> dict[str, Any]:
    """The environment's before-image from the given parts (those its steps read)."""
    kept = [part for part in parts if part.in_before_image and part is not FUNCTION]
    functions = [
        {
            **FUNCTION.image(fn.state),
            **{
                part.name: part.image(fn.parts[part.name]) for part in kept if part.name in fn.parts
            },
        }
        for fn in inventory.functions
    ]
    return {
        "schema_version": SCHEMA_VERSION,
        "taken_at": datetime.now(UTC).isoformat(),
        "suffix": inventory.suffix,
        "account_id": inventory.account_id,
        "region": inventory.region,
        "functions": functions,
        **{
            part.name: part.image(inventory.parts[part.name])
            for part in kept
            if part.name in inventory.parts
        },
    }


def save_before_image(
    directory: Path, inventory: EnvironmentInventory, parts: Sequence[Part[Any]]
) -> Path:
    """Write `{directory}/{suffix}.json` atomically (0600) and return its path."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = directory / f"{inventory.suffix}.json"
    image = before_image(inventory, parts)
    payload = json.dumps(image, indent=2, sort_keys=True, default=str)
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
