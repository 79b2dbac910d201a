"""Plan files: a dry run's plan, reviewed (its Markdown report is what a pull request shows),
then applied exactly as reviewed by `lambda-optimizer apply PLAN`.

A plan file (schema 2) is JSON:
- `kind`, `schema_version`, `run_id`, `created_at`, `region`, `targets` (the targets and
  guardrails it was made with), and `sha256`: the SHA-256 of its canonical content (below);
- `environments`, by suffix: `suffix`, `account_id`, `region`, `steps`; `functions`, each
  `{name, role (ARN), log_group, basis}`; `revisions` (each function's RevisionId);
  `basis` (the environment steps'); `changes`, each `{step, function, resource, setting,
  before, after}`. A step's `basis` is what its planning rested on (`Step.basis`: the ARNs
  its changes name, the settings and evidence its guardrails used: memory used, durations,
  peak concurrency), by step name.
An organisation's plan (`--accounts`) holds `places` instead, each `{account, account_name,
region, plan}` with a plan as above (sealed too), and its own `sha256` over all of them.

Canonical content: the document without its `sha256` key, as JSON with keys sorted, no
whitespace (separators `,` and `:`), text as UTF-8 (not ASCII-escaped), numbers as Python's
`json.dumps` writes them, NaN and infinities as null. A reviewer pins that digest
(`apply --expect-sha256`); a file whose content no longer matches its own `sha256` was edited
after it was written and is refused.

`apply` replays it (`recorded.py`) once every change is verified by the step that owns it
(`plan_check.py`): a change whose setting still holds the value the plan saw is made; one
already as planned is done; any other value - or a function whose RevisionId moved - is
refused. Nothing the plan did not contain is added.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from optimizer_async.definitions.naming import REGION_RE, validate_suffix
from optimizer_async.definitions.targets import Targets, targets_from_json, targets_to_json
from optimizer_async.jsonio import strict_json
from optimizer_async.records import plan_check
from optimizer_async.steps.base import (
    Change,
    EnvironmentStep,
    FunctionStep,
    Json,
    PlanContext,
    Step,
)
from optimizer_async.steps.inventory import EnvironmentInventory
from optimizer_async.steps.plan import EnvironmentPlan, Plan

KIND: Final = "lambda-optimizer plan"
# `--accounts --dry-run --plan-out`: each account and region's plan, applied in its own place.
ORGANISATION_KIND: Final = "lambda-optimizer organisation plan"
SCHEMA_VERSION: Final = 2  # 2: sha256, each function's role, log group and steps' basis
DIGEST: Final = "sha256"
_ACCOUNT_RE: Final = re.compile(r"[0-9]{12}")
_SHA256_RE: Final = re.compile(r"[0-9a-f]{64}")


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
        planned = _planned(env)
        basis = _basis(PlanContext(inventory, targets), steps, planned)
        environments[env.suffix] = {
            "suffix": env.suffix,
            "account_id": inventory.account_id,
            "region": inventory.region,
            "steps": [step.name for step in steps],
            "functions": [
                {
                    "name": fn.name,
                    "role": fn.state.role_arn,
                    "log_group": fn.state.log_group,
                    "basis": basis.get(fn.name, {}),
                }
                for fn in inventory.functions
            ],
            "revisions": {fn.name: fn.state.revision_id for fn in inventory.functions},
            "basis": basis.get(None, {}),
            "changes": [{**change.to_json(), "function": function} for change, function in planned],
        }
    return sealed(
        {
            **_header(KIND, run_id),
            "region": region,
            "targets": targets_to_json(targets),
            "environments": environments,
        }
    )


def _basis(
    ctx: PlanContext, steps: tuple[Step, ...], planned: list[tuple[Change, str | None]]
) -> dict[str | None, dict[str, Json]]:
    """Each step's basis where it planned a change, by function (None: the environment's)."""
    found: dict[str | None, dict[str, Json]] = {}
    by_name = {step.name: step for step in steps}
    for change, function in planned:
        step, held = by_name.get(change.step), found.setdefault(function, {})
        if step is None or step.name in held:
            continue
        if isinstance(step, FunctionStep) and function is not None:
            value = step.basis(ctx, ctx.environment.function(function))
        elif isinstance(step, EnvironmentStep) and function is None:
            value = step.basis(ctx)
        else:
            continue
        if value is not None:
            held[step.name] = value
    return found


def canonical(document: Mapping[str, Any]) -> bytes:
    """The bytes a plan's digest is of: see the module's docstring."""
    body = _finite({key: value for key, value in document.items() if key != DIGEST})
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _finite(value: Any) -> Any:
    """NaN and infinities as null, as the file holds them once written (`json_text`)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def digest(document: Mapping[str, Any]) -> str:
    """The SHA-256 (hex) of a plan document's canonical content."""
    return hashlib.sha256(canonical(document)).hexdigest()


def sealed(document: dict[str, Any]) -> dict[str, Any]:
    """The document with its digest: what ties a review (plan.md shows it) to the file."""
    return {**document, DIGEST: digest(document)}


def check_sha256(text: str) -> str:
    """A SHA-256 as `--expect-sha256` takes it (64 hex digits, either case), lower case;
    ValueError otherwise."""
    if not _SHA256_RE.fullmatch(text.lower()):
        raise ValueError(f"--expect-sha256 {text!r} is not a SHA-256 (64 hex digits)")
    return text.lower()


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
    return sealed({**_header(ORGANISATION_KIND, run_id), "places": places})


def _planned(env: EnvironmentPlan) -> list[tuple[Change, str | None]]:
    """Changes a run would attempt (blocked ones are not in the plan), with their function."""
    found: list[tuple[Change, str | None]] = [
        (c, None) for step in env.steps.values() if not step.blocked for c in step.changes
    ]
    for fn in env.functions:
        found += [(c, fn.name) for s in fn.steps.values() if not s.blocked for c in s.changes]
    return found


def load(path: Path, expect: str | None = None) -> dict[str, Any]:
    """A plan file that may be applied: well formed, its content as its `sha256` says (and
    as `expect` pins, if given), every change one its step would plan (`plan_check`).
    PlanFileError otherwise: one line, or a line per refused change."""
    try:
        document = strict_json.loads(path.read_bytes().decode("utf-8"))
    except OSError as error:
        raise PlanFileError(f"plan file {path}: {error.strerror or error}") from None
    except strict_json.DuplicateKey as error:
        raise PlanFileError(f"plan file {path}: {error}") from None
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
    plans: list[Mapping[str, Any]] = []
    try:
        if document["kind"] == KIND:
            _check(document)
            plans.append(document)
        else:
            _check_places(document["places"])
            plans += [place["plan"] for place in document["places"]]
        found = digest(document)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise PlanFileError(f"plan file {path}: malformed ({error})") from None
    if document.get(DIGEST) != found:
        raise PlanFileError(
            f"plan file {path}: its content does not match its sha256: it was edited after "
            "it was written (plan again, and review what you apply)"
        )
    if expect is not None and found != expect:
        raise PlanFileError(
            f"plan file {path}: its sha256 is {found}, not the {expect} --expect-sha256 pins: "
            "it is not the plan that was reviewed"
        )
    try:
        problems = _refusals(document, plans)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise PlanFileError(f"plan file {path}: malformed ({error})") from None
    if problems:
        raise PlanFileError(
            f"plan file {path}: refused whole, nothing applied: {len(problems)} refusal(s), "
            "each a change or record no step would have planned:\n" + "\n".join(problems)
        )
    return document


def _refusals(document: Mapping[str, Any], plans: list[Mapping[str, Any]]) -> list[str]:
    """`plan_check.refusals` of every plan the file holds, each line naming its place in an
    organisation's."""
    if document["kind"] == KIND:
        return plan_check.refusals(document)
    found: list[str] = []
    for place, plan in zip(document["places"], plans, strict=True):
        where = f"{place['account']} {place['region']}"
        found += [f"{where} {line}" for line in plan_check.refusals(plan)]
    return found


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
        if place["plan"].get(DIGEST) != digest(place["plan"]):
            raise ValueError(f"the plan of {where[0]} {where[1]} does not match its sha256")
        held = {(e["account_id"], e["region"]) for e in place["plan"]["environments"].values()}
        if held - {where} or place["plan"]["region"] != where[1]:
            raise ValueError(f"the plan of {where[0]} {where[1]} holds another place's")


def _check(document: Mapping[str, Any]) -> None:
    """The shape `plan_check` and `recorded.py` read (what the values mean is theirs)."""
    targets_from_json(document["targets"])
    for suffix, env in document["environments"].items():
        validate_suffix(suffix)
        if env["suffix"] != suffix:
            raise ValueError(f"environment {suffix} names itself {env['suffix']}")
        shaped = (
            _every(env["functions"], dict)
            and _every(env["changes"], dict)
            and _every(env["steps"], str)
            and isinstance(env["revisions"], dict)
            and isinstance(env.get("basis", {}), dict)
            and all("name" in function for function in env["functions"])
        )
        if not shaped:
            raise ValueError(f"environment {suffix} is not shaped as --plan-out writes it")
        for change in env["changes"]:
            Change(**{k: change[k] for k in ("step", "resource", "setting", "before", "after")})


def _every(items: Any, kind: type) -> bool:
    return isinstance(items, list) and all(isinstance(item, kind) for item in items)
