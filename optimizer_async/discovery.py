"""Read-only discovery: the core of each environment, then every part its steps need.

Phase one, per environment and concurrently: the core (`core.py`) - the account, each
function by its exact name with GetFunction, the suffix-tag lock. Phase two, for all
environments at once: every part the run's steps declare, each read by its own reader
(`steps/`); function parts go through the run's batch loaders, which coalesce requests from
all environments into few DescribeLogGroups / DescribeAlarms / GetMetricData calls.
Account parts are read once per run. This module knows no particular step or part.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

import anyio
import structlog

from optimizer_async.aws.gateway import Aws
from optimizer_async.core import FUNCTION, belongs_elsewhere, find_function
from optimizer_async.inventory import EnvironmentInventory, FunctionInventory, FunctionState
from optimizer_async.naming import DEFAULT_FUNCTION_BASE, EnvironmentNames
from optimizer_async.steps.base import (
    AccountPart,
    EnvironmentPart,
    FunctionPart,
    Part,
    ReadContext,
    Step,
)
from optimizer_async.targets import Targets

log = structlog.get_logger("optimizer_async.discovery")


def parts_of(steps: Iterable[Step], targets: Targets) -> tuple[Part[Any], ...]:
    """The parts a run of these steps reads, in the steps' order, each once."""
    parts: dict[str, Part[Any]] = {}
    for step in steps:
        for part in step.parts:
            if part is not FUNCTION and part.needed(targets):
                parts.setdefault(part.name, part)
    return tuple(parts.values())


class Discovery:
    """Discovers environments through one `Aws` gateway; share one per run (batching)."""

    def __init__(
        self,
        aws: Aws,
        function_bases: Sequence[str] = (DEFAULT_FUNCTION_BASE,),
        parts: Sequence[Part[Any]] = (),
        targets: Targets | None = None,
    ) -> None:
        self.aws = aws
        self.function_bases = tuple(function_bases)
        self.context = ReadContext(aws, targets or Targets())
        self._account = [p for p in parts if isinstance(p, AccountPart)]
        self._environment = [p for p in parts if isinstance(p, EnvironmentPart)]
        self._function = [p for p in parts if isinstance(p, FunctionPart)]

    async def account(self) -> dict[str, Any]:
        """The account-scoped parts, read once per run."""
        found: dict[str, Any] = {}

        async def one(part: AccountPart[Any]) -> None:
            found[part.name] = await part.read(self.context)

        async with anyio.create_task_group() as group:
            for part in self._account:
                group.start_soon(one, part)
        return {part.name: found[part.name] for part in self._account}

    async def environments(
        self, suffixes: Sequence[str]
    ) -> dict[str, EnvironmentInventory | Exception]:
        """Discover several environments; a failure is returned for its suffix, not raised.

        Two phases: first every environment's core, concurrently; then the parts of all of
        them at once, so the batch loaders fill whole batches instead of one per environment.
        """
        cores: dict[str, EnvironmentInventory | Exception] = {}
        found: dict[str, EnvironmentInventory | Exception] = {}

        async def core(suffix: str) -> None:
            try:
                cores[suffix] = await self._core(suffix)
            except Exception as error:
                cores[suffix] = error

        async def parts(suffix: str, environment: EnvironmentInventory) -> None:
            try:
                found[suffix] = await self._read_parts(environment)
            except Exception as error:
                found[suffix] = error

        async with anyio.create_task_group() as group:
            for suffix in suffixes:
                group.start_soon(core, suffix)
        async with anyio.create_task_group() as group:
            for suffix in suffixes:
                environment = cores[suffix]
                if isinstance(environment, Exception):
                    found[suffix] = environment
                else:
                    group.start_soon(parts, suffix, environment)
        return {suffix: found[suffix] for suffix in suffixes}

    async def environment(self, suffix: str) -> EnvironmentInventory:
        found = (await self.environments([suffix]))[suffix]
        if isinstance(found, Exception):
            raise found
        return found

    async def _core(self, suffix: str) -> EnvironmentInventory:
        """Phase one: the environment's functions by exact name, none of their parts yet."""
        names = EnvironmentNames(suffix)
        account_id = await self.aws.account_id()
        functions: dict[str, FunctionState] = {}
        skipped: list[str] = []

        async def one(base: str) -> None:
            state = await find_function(self.aws, names.function(base))
            if state is None:
                return
            other = belongs_elsewhere(state, suffix)
            if other is not None:
                log.warning("function.skipped", function=state.name, reason=f"tagged {other}")
                skipped.append(state.name)
            else:
                functions[base] = state

        async with anyio.create_task_group() as group:
            for base in self.function_bases:
                group.start_soon(one, base)
        return EnvironmentInventory(
            suffix=suffix,
            account_id=account_id,
            region=self.aws.region,
            functions=tuple(
                FunctionInventory(functions[base])
                for base in self.function_bases
                if base in functions
            ),
            skipped=tuple(sorted(skipped)),
        )

    async def _read_parts(self, core: EnvironmentInventory) -> EnvironmentInventory:
        """Phase two: every part of the environment and of its functions, side by side."""
        environment: dict[str, Any] = {}
        functions: dict[str, dict[str, Any]] = {fn.name: {} for fn in core.functions}

        async def environment_part(part: EnvironmentPart[Any]) -> None:
            environment[part.name] = await part.read(self.context, core)

        async def function_part(part: FunctionPart[Any], state: FunctionState) -> None:
            functions[state.name][part.name] = await part.read(self.context, core, state)

        async with anyio.create_task_group() as group:
            for env_part in self._environment:
                group.start_soon(environment_part, env_part)
            for fn in core.functions:
                for fn_part in self._function:
                    group.start_soon(function_part, fn_part, fn.state)
        return replace(
            core,
            parts=_ordered(environment, self._environment),
            functions=tuple(
                replace(fn, parts=_ordered(functions[fn.name], self._function))
                for fn in core.functions
            ),
        )

    async def refresh(
        self, inventory: EnvironmentInventory, parts: Sequence[Part[Any]], functions: set[str]
    ) -> EnvironmentInventory:
        """Re-read the given parts (function parts of the given functions only): verification.
        The core part `FUNCTION` re-reads the function itself."""
        environment = dict(inventory.parts)
        updated = {fn.name: fn for fn in inventory.functions}

        async def environment_part(part: EnvironmentPart[Any]) -> None:
            environment[part.name] = await part.refresh(self.context, inventory)

        async def one(fn: FunctionInventory) -> None:
            values: dict[str, Any] = {FUNCTION.name: fn.state, **fn.parts}

            async def function_part(part: FunctionPart[Any]) -> None:
                values[part.name] = await part.refresh(self.context, inventory, fn.state)

            async with anyio.create_task_group() as group:  # each joins its own batch
                for part in parts:
                    if isinstance(part, FunctionPart):
                        group.start_soon(function_part, part)
            state = values.pop(FUNCTION.name)
            updated[fn.name] = replace(fn, state=state, parts=values)

        async with anyio.create_task_group() as group:
            for part in parts:
                if isinstance(part, EnvironmentPart):
                    group.start_soon(environment_part, part)
            for fn in inventory.functions:
                if fn.name in functions:
                    group.start_soon(one, fn)
        return replace(
            inventory,
            parts=environment,
            functions=tuple(updated[fn.name] for fn in inventory.functions),
        )


def _ordered(values: dict[str, Any], parts: Sequence[Part[Any]]) -> dict[str, Any]:
    return {part.name: values[part.name] for part in parts if part.name in values}
