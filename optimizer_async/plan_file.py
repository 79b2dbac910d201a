"""Plan files: a dry run's plan, reviewed (its Markdown report is what a pull request shows),
then applied exactly as reviewed by `lambda-optimizer apply PLAN`.

A plan file holds, per environment, every change the dry run planned (step, function,
resource, setting, the value it saw, the value it will set), the RevisionId of every
function it read, and the targets it was made with. `apply` replays it
(`recorded.py`): a change whose setting still holds the value the plan saw is made; one
already as planned is done; any other value - or a function whose RevisionId moved - is
refused. Nothing the plan did not contain is added.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from optimizer_async.inventory import EnvironmentInventory
from optimizer_async.naming import REGION_RE
from optimizer_async.plan import EnvironmentPlan, Plan
from optimizer_async.steps.base import Change, Step
from optimizer_async.targets import Targets, targets_from_json, targets_to_json

KIND: Final = "lambda-optimizer plan"
# `--accounts --dry-run --plan-out`: each account and region's plan, applied in its own place.
ORGANISATION_KIND: Final = "lambda-optimizer organisation plan"
SCHEMA_VERSION: Final = 1
_ACCOUNT_RE: Final = re.compile(r"[0-9]{12}")


class PlanFileError(ValueError):
    """Not a plan file this version can apply; the message says why."""


def plan_document(
    run_id: str,
    region: str,
    plan: Plan,
    inventories: Mapping[str, EnvironmentInventory],
    steps: tuple[Step, ...],
    targets: Targets,
) -> dict[str, Any]:
    """The plan file of a dry run: every environment that has something to do."""
    environments: dict[str, Any] = {}
    for env in plan.environments:
        inventory = inventories.get(env.suffix)
        if inventory is None or env.error or env.is_empty:
            continue
        environments[env.suffix] = {
            "suffix": env.suffix,
            "account_id": inventory.account_id,
            "region": inventory.region,
            "steps": [step.name for step in steps],
            "functions": [{"name": fn.name} for fn in inventory.functions],
            "revisions": {fn.name: fn.state.revision_id for fn in inventory.functions},
            "changes": [
                {**change.to_json(), "function": function} for change, function in _planned(env)
            ],
        }
    return {
        **_header(KIND, run_id),
        "region": region,
        "targets": targets_to_json(targets),
        "environments": environments,
    }


def _header(kind: str, run_id: str) -> dict[str, Any]:
    """What a plan file of either kind begins with."""
    return {
        "kind": kind,
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "created_at": datetime.now(UTC).isoformat(),
    }


def organisation_document(run_id: str, places: list[dict[str, Any]]) -> dict[str, Any]:
    """An organisation's plan file: `places`, each {account, account_name, region, plan}
    (the place's own plan document, as `plan_document` makes it)."""
    return {**_header(ORGANISATION_KIND, run_id), "places": places}


def _planned(env: EnvironmentPlan) -> list[tuple[Change, str | None]]:
    """Changes a run would attempt (blocked ones are not in the plan), with their function."""
    found: list[tuple[Change, str | None]] = [
        (c, None) for step in env.steps.values() if not step.blocked for c in step.changes
    ]
    for fn in env.functions:
        found += [(c, fn.name) for s in fn.steps.values() if not s.blocked for c in s.changes]
    return found


def load(path: Path) -> dict[str, Any]:
    """A plan file, checked enough to be applied; PlanFileError (one line) otherwise."""
    try:
        document = json.loads(path.read_text())
    except OSError as error:
        raise PlanFileError(f"plan file {path}: {error.strerror or error}") from None
    except json.JSONDecodeError as error:
        raise PlanFileError(f"plan file {path}: not JSON ({error.msg})") from None
    except UnicodeDecodeError:
        raise PlanFileError(f"plan file {path}: not UTF-8 text") from None
    kinds = (KIND, ORGANISATION_KIND)
    if not isinstance(document, dict) or document.get("kind") not in kinds:
        raise PlanFileError(f"plan file {path}: not a {KIND} (written by --plan-out)")
    if document.get("schema_version") != SCHEMA_VERSION:
        raise PlanFileError(
            f"plan file {path}: schema {document.get('schema_version')}, this version applies "
            f"{SCHEMA_VERSION}"
        )
    try:
        if document["kind"] == KIND:
            _check(document)
        else:
            _check_places(document["places"])
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise PlanFileError(f"plan file {path}: malformed ({error})") from None
    return document


def is_organisation(document: Mapping[str, Any]) -> bool:
    return document.get("kind") == ORGANISATION_KIND


def _check_places(places: list[dict[str, Any]]) -> None:
    """An organisation's plan: each place once, named as AWS names them, its plan its own."""
    seen: set[tuple[str, str]] = set()
    for place in places:
        where = (place["account"], place["region"])
        if not (isinstance(where[0], str) and _ACCOUNT_RE.fullmatch(where[0])):
            raise ValueError(f"account {where[0]!r} is not a 12-digit account id")
        if not (isinstance(where[1], str) and REGION_RE.fullmatch(where[1])):
            raise ValueError(f"region {where[1]!r} is not an AWS region name")
        if where in seen:
            raise ValueError(f"{where[0]} {where[1]} is planned twice")
        seen.add(where)
        _check(place["plan"])
        held = {(e["account_id"], e["region"]) for e in place["plan"]["environments"].values()}
        if held - {where} or place["plan"]["region"] != where[1]:
            raise ValueError(f"the plan of {where[0]} {where[1]} holds another place's")


def _check(document: Mapping[str, Any]) -> None:
    targets_from_json(document["targets"])
    for suffix, env in document["environments"].items():
        for change in env["changes"]:
            Change(**{k: change[k] for k in ("step", "resource", "setting", "before", "after")})
        if env["suffix"] != suffix:
            raise ValueError(f"environment {suffix} names itself {env['suffix']}")
