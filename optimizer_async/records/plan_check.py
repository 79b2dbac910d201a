"""Apply's check of a plan file: every change in it must be one its step would plan.

A plan file is data, never authority. Between review and apply it sits in CI artifacts and
on disks, and apply is the moment the tool holds write permissions. So, before any AWS
call, each change goes to the step that owns it (by registry name), which checks it against
the environment's names, the plan's targets and what the plan recorded for it
(`Step.verify`, with its `Step.basis`). This module is the one place that calls them; it
also checks what no single step owns: the step exists, a function step's change names a
recorded function, the recorded functions are the environment's. Any refusal refuses the
whole plan (exit 2, one line each): a plan is reviewed whole, so it is applied whole or
not at all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from optimizer_async.definitions.naming import InvalidNameError, validate_function_base
from optimizer_async.definitions.targets import Targets, targets_from_json
from optimizer_async.steps.base import Change, Step, VerifyContext
from optimizer_async.steps.inventory import EnvironmentInventory
from optimizer_async.steps.registry import REGISTRY, Registry
from optimizer_async.steps.verifying import parse_arn

_ACCOUNT_RE: Final = re.compile(r"[0-9]{12}")


def refusals(document: Mapping[str, Any], registry: Registry = REGISTRY) -> list[str]:
    """Every reason to refuse one account and region's plan document, one line each, its
    environment first; [] when every change is one its step would plan."""
    targets = targets_from_json(document["targets"])
    found: list[str] = []
    for suffix, environment in document["environments"].items():
        found += [f"{suffix}: {line}" for line in _environment(environment, targets, registry)]
    return found


def _environment(env: Mapping[str, Any], targets: Targets, registry: Registry) -> list[str]:
    suffix, account = str(env["suffix"]), env["account_id"]
    if not (isinstance(account, str) and _ACCOUNT_RE.fullmatch(account)):
        return [f"account {account!r} is not a 12-digit account id"]
    functions: dict[str, Mapping[str, Any]] = {}
    found: list[str] = []
    for entry in env["functions"]:
        problem = _function_problem(entry, suffix, account)
        if problem is not None:
            found.append(problem)
        elif entry["name"] in functions:
            found.append(f"function {entry['name']} is recorded twice")
        else:
            functions[entry["name"]] = entry
    revisions = env.get("revisions") or {}
    found += [f"{name} has no recorded RevisionId" for name in functions if name not in revisions]
    found += [f"unknown step {name!r} ({_steps(registry)})" for name in env["steps"]
              if name not in registry]  # fmt: skip
    seen: set[tuple[Any, ...]] = set()
    for entry in env["changes"]:
        change = Change(*(entry[k] for k in ("step", "resource", "setting", "before", "after")))
        function = entry.get("function")
        reason = _change_problem(change, function, seen, registry, functions)
        if reason is None:
            step = registry[change.step]
            reason = _verified(step, change, _context(env, targets, functions, step, function))
        if reason is not None:
            where = " ".join(str(part) for part in (change.step, change.resource, change.setting))
            found.append(f"{where}: {reason}")
    return found


def _change_problem(
    change: Change,
    function: Any,
    seen: set[tuple[Any, ...]],
    registry: Registry,
    functions: Mapping[str, Mapping[str, Any]],
) -> str | None:
    """What no single step owns: names as text, each change once, a registered step, a
    function step's change of a recorded function (an environment step's of none)."""
    named = (change.step, change.resource, change.setting, function)
    if not all(isinstance(text, str) for text in named[:3]) or not isinstance(
        function, (str, type(None))
    ):
        return "step, resource, setting and function must be text"
    if named in seen:
        return "planned twice"
    seen.add(named)
    step = registry.get(change.step)
    if step is None:
        return f"unknown step {change.step!r} ({_steps(registry)})"
    if step.scope == "function" and function not in functions:
        return f"{step.name} changes a function; {function!r} is no function the plan recorded"
    if step.scope != "function" and function is not None:
        return f"{step.name} changes the environment, not a function ({function})"
    return None


def _steps(registry: Registry) -> str:
    return f"steps: {', '.join(registry.names)}"


def _function_problem(entry: Mapping[str, Any], suffix: str, account: str) -> str | None:
    """Why a recorded function is not one of this environment's (None: it is): named
    `{base}-{suffix}`, its role an IAM role of the environment's account."""
    name = entry.get("name")
    if not (isinstance(name, str) and name.endswith(f"-{suffix}")):
        return f"function {name!r} is not named {{base}}-{suffix}"
    try:
        validate_function_base(name[: -len(suffix) - 1])
    except InvalidNameError as error:
        return f"function {name!r}: {error}"
    role = parse_arn(entry.get("role"))
    if role is None or role.service != "iam" or not role.resource.startswith("role/"):
        return f"function {name}: its role {entry.get('role')!r} is not an IAM role's ARN"
    if role.account != account:
        return f"function {name}: its role is a resource of account {role.account}, not {account}"
    return None


def _context(
    env: Mapping[str, Any],
    targets: Targets,
    functions: Mapping[str, Mapping[str, Any]],
    step: Step,
    function: str | None,
) -> VerifyContext:
    """What the step may consult: the environment, and the basis recorded for the step
    (beside the function's entry for a function step, the environment's otherwise)."""
    holder = functions[function] if function is not None else env
    return VerifyContext(
        suffix=str(env["suffix"]),
        account_id=str(env["account_id"]),
        region=str(env["region"]),
        targets=targets,
        functions=functions,
        function=function,
        basis=(holder.get("basis") or {}).get(step.name),
    )


def _verified(step: Step, change: Change, ctx: VerifyContext) -> str | None:
    """The step's verdict; a basis the step cannot read (edited, or missing) is a refusal."""
    try:
        return step.verify(ctx, change)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:
        return (
            f"cannot be verified: its recorded basis is malformed ({type(error).__name__}: {error})"
        )


def moved_since(record: Mapping[str, Any], inventory: EnvironmentInventory) -> str | None:
    """Why the live environment is not the one the plan's changes were checked against (None:
    it is): a recorded function's role or log group has changed. Changes name these (the
    inline policy's role, the retention's log group) and were verified against the record,
    so the record must still be true when apply writes."""
    live = {fn.name: fn.state for fn in inventory.functions}
    for entry in record.get("functions", []):
        state = live.get(entry.get("name"))
        if state is None:  # gone: plan_recorded says so
            continue
        for what, now, then in (
            ("role", state.role_arn, entry.get("role")),
            ("log group", state.log_group, entry.get("log_group")),
        ):
            if now != then:
                return (
                    f"{state.name}'s {what} is {now} now, the plan recorded {then}: the plan's "
                    "changes no longer apply to it (plan again)"
                )
    return None
