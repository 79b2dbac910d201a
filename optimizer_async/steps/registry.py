"""The registry: the one list of optimisations, in the order they are planned and reported.

Adding an optimisation is adding a module in `steps/` and a line in `default_registry()`;
no other product module names a step. `--only` / `--skip` choose from it by name, and its
`lint` checks what each step declares, in the spirit of Cloud Custodian's policy lint.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final

from optimizer_async.aws.operations import iam_action
from optimizer_async.steps.alarms import Alarms
from optimizer_async.steps.base import ApiCall, Part, Step
from optimizer_async.steps.core import CORE_PERMISSIONS, CORE_READS, FUNCTION
from optimizer_async.steps.dead_letter_queue import DeadLetterQueue
from optimizer_async.steps.deployment_bucket import DeploymentBucket
from optimizer_async.steps.function_configuration import FunctionConfiguration
from optimizer_async.steps.log_retention import LogRetention
from optimizer_async.steps.reserved_concurrency import ReservedConcurrency
from optimizer_async.steps.role_policy import RolePolicy


class SelectionError(ValueError):
    """`--only` / `--skip` name an unknown step, or leave out a step another one needs."""


class Registry:
    def __init__(self, steps: Iterable[Step] = ()) -> None:
        self._steps: dict[str, Step] = {}
        for step in steps:
            self.register(step)

    def register(self, step: Step) -> Step:
        if step.name in self._steps:
            raise ValueError(f"a step named {step.name!r} is already registered")
        self._steps[step.name] = step
        return step

    def unregister(self, name: str) -> None:
        del self._steps[name]

    @contextmanager
    def registered(self, *steps: Step) -> Iterator[None]:
        """Register steps for the duration of a block (tests, plug-ins)."""
        for step in steps:
            self.register(step)
        try:
            yield
        finally:
            for step in steps:
                self._steps.pop(step.name, None)

    def __iter__(self) -> Iterator[Step]:
        return iter(tuple(self._steps.values()))

    def __len__(self) -> int:
        return len(self._steps)

    def __contains__(self, name: object) -> bool:
        return name in self._steps

    def __getitem__(self, name: str) -> Step:
        return self._steps[name]

    def get(self, name: str) -> Step | None:
        return self._steps.get(name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._steps)

    def select(self, only: Sequence[str] = (), skip: Sequence[str] = ()) -> tuple[Step, ...]:
        """The steps a run makes, in registry order; every step a chosen one runs `after`
        must be chosen too (a function's DLQ setting needs its queue and permission)."""
        for flag, names in (("--only", only), ("--skip", skip)):
            unknown = [name for name in names if name not in self._steps]
            if unknown:
                raise SelectionError(
                    f"unknown step(s) in {flag}: {', '.join(unknown)} "
                    f"(steps: {', '.join(self.names)})"
                )
        chosen = [
            step
            for step in self._steps.values()
            if (not only or step.name in only) and step.name not in skip
        ]
        if not chosen:
            raise SelectionError("--only / --skip leave no step to run")
        chosen_names = {step.name for step in chosen}
        for step in chosen:
            missing = [name for name in step.after if name not in chosen_names]
            if missing:
                raise SelectionError(
                    f"step {step.name} needs {', '.join(missing)}, which the selection leaves "
                    f"out: choose {'them' if len(missing) > 1 else 'it'} too, "
                    f"or leave {step.name} out"
                )
        return tuple(chosen)

    def lint(self) -> list[str]:
        """What is wrong with the registered steps' declarations (empty when nothing is)."""
        problems: list[str] = []
        parts: dict[str, Part[Any]] = {FUNCTION.name: FUNCTION}
        for step in self._steps.values():
            problems += _lint_step(step, self._steps)
            for part in step.parts:
                seen = parts.setdefault(part.name, part)
                if seen is not part:
                    problems.append(f"two different parts are called {part.name!r}")
        problems += _cycles(self._steps)
        problems += _core_permissions()
        return problems


def _lint_step(step: Step, steps: dict[str, Step]) -> list[str]:
    problems = [
        f"{step.name}: `after` names {name!r}, which is not a registered step"
        for name in step.after
        if name not in steps
    ]
    for name in step.after_if_run:
        other = steps.get(name)
        if other is None or other.scope != "function" or step.scope != "function":
            problems.append(
                f"{step.name}: `after_if_run` names {name!r}, which is not a function step "
                "like itself"
            )
    if step.part.scope != step.scope:
        problems.append(
            f"{step.name}: its part {step.part.name} is {step.part.scope}-scoped but the step is "
            f"{step.scope}-scoped (verification re-reads the part where the step changed it)"
        )
    actions = {permission.action for permission in step.declared_permissions()}
    for call in sorted(step.declared_calls(), key=lambda c: (c.service, c.operation)):
        action = iam_action(call.service, call.operation)
        if action is not None and action not in actions:
            problems.append(
                f"{step.name}: {call.service}.{call.operation} is declared "
                f"but its IAM permission {action} is not"
            )
    return problems


def _cycles(steps: dict[str, Step]) -> list[str]:
    """Steps whose `after` (or `after_if_run`) chain leads back to themselves (they would
    wait forever)."""
    problems: list[str] = []
    for start in steps:
        stack, seen = [*steps[start].after, *steps[start].after_if_run], set()
        while stack:
            name = stack.pop()
            if name == start:
                problems.append(f"{start}: its `after` chain leads back to itself")
                break
            if name in seen or name not in steps:
                continue
            seen.add(name)
            stack.extend([*steps[name].after, *steps[name].after_if_run])
    return problems


def declared_calls(steps: Iterable[Step]) -> frozenset[ApiCall]:
    """Every call a run of these steps may make, the core's included."""
    calls = set(CORE_READS)
    for step in steps:
        calls.update(step.declared_calls())
    return frozenset(calls)


def undeclared_calls(made: Iterable[tuple[str, str]], steps: Iterable[Step]) -> list[str]:
    """The (service, operation) calls in `made` that neither the core nor a step declares."""
    declared = {(call.service, call.operation) for call in declared_calls(steps)}
    return sorted(f"{service}.{operation}" for service, operation in set(made) - declared)


def _core_permissions() -> list[str]:
    actions = {permission.action for permission in CORE_PERMISSIONS}
    return [
        f"core: {call.service}.{call.operation} is declared but its IAM permission is not"
        for call in CORE_READS
        if (action := iam_action(call.service, call.operation)) and action not in actions
    ]


def default_registry() -> Registry:
    return Registry(
        (
            DeadLetterQueue(),
            RolePolicy(),
            DeploymentBucket(),
            FunctionConfiguration(),
            ReservedConcurrency(),
            LogRetention(),
            Alarms(),
        )
    )


REGISTRY: Final = default_registry()
