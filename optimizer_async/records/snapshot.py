"""Before-images: the state of every resource of an environment, saved before any write.

They are the rollback material: enough to put each setting back exactly. Each part gives
its own fragment (`Part.image`), under the part's name: the core function part for each
function, then the function's other parts, then the environment's. With it, the changes
the run planned for the environment: rollback compares each with what is live now (set by
us, still as before, or changed by someone else since). Environment variable values are
not stored - the optimizer never changes existing ones, so undoing its work means removing
the names it added; a hash of the values shows whether anyone else changed them since.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from optimizer_async.steps.base import Change, Part
from optimizer_async.steps.core import FUNCTION
from optimizer_async.steps.inventory import EnvironmentInventory

SCHEMA_VERSION = 2  # 2: with the planned changes and the steps that planned them


def before_image(
    inventory: EnvironmentInventory,
    parts: Sequence[Part[Any]],
    changes: Sequence[Change] = (),
    steps: Sequence[str] = (),
    functions: Mapping[tuple[str, str, str], str] | None = None,
) -> dict[str, Any]:
    """The environment's before-image from the given parts (those its steps read), with the
    changes the run planned for it, each with the function it belongs to (`functions`: change
    key -> function name; none for the environment's own)."""
    owners = functions or {}
    kept = [part for part in parts if part.in_before_image and part is not FUNCTION]
    images = [
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
        "functions": images,
        "steps": list(steps),
        "changes": [{**change.to_json(), "function": owners.get(change.key)} for change in changes],
        **{
            part.name: part.image(inventory.parts[part.name])
            for part in kept
            if part.name in inventory.parts
        },
    }
