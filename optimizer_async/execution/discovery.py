"""Read-only discovery: the core of each environment, then every part its steps need.

Per environment and concurrently: the core (`core.py`) - the account, each function by its
exact name with GetFunction, the suffix-tag lock - and, as soon as it is read, the
environment's own parts. Once every core is read, for all environments at once: every
function part the run's steps declare, each read by its own reader (`steps/`). A function
part is read with ONE `read_many` over every function of the fleet,
which a batched part answers with exact batches (few DescribeLogGroups / DescribeAlarms /
GetMetricData calls) and one task per batch: a task per function and part was the run's
memory peak. Account parts are read once per run. This module knows no particular step or
part.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Final

import anyio
import structlog
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream

from optimizer_async.aws.batching import run_each
from optimizer_async.aws.gateway import Aws
from optimizer_async.definitions.naming import DEFAULT_FUNCTION_BASE, EnvironmentNames
from optimizer_async.definitions.targets import Targets
from optimizer_async.execution.progress import Counts
from optimizer_async.steps.base import (
    AccountPart,
    EnvironmentPart,
    FunctionPart,
    Part,
    ReadContext,
    Step,
)
from optimizer_async.steps.core import FUNCTION, belongs_elsewhere, find_function
from optimizer_async.steps.inventory import EnvironmentInventory, FunctionInventory, FunctionState

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
        known: Mapping[str, FunctionState] | None = None,
        progress: Counts | None = None,
        refused: frozenset[tuple[str, str]] = frozenset(),
    ) -> None:
        self.aws = aws
        self._refused = refused  # (function, suffix) never to take: `--all` judged them
        self._progress = progress or Counts()  # `discovered` counts environments' cores
        self._known = dict(known or {})  # read moments ago: each taken once, then read again
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

        Every environment's core, concurrently; each environment's own parts as soon as its
        core is read (they wait for no other environment, and other quota buckets read them
        while the cores are still being read); the function parts once every core is read,
        so each is one bulk read with whole batches (a part with an early batch also reads
        each whole batch as its cores arrive: `FunctionPart.early_batch`).
        """
        ctx = self.context.one_pass()
        cores: dict[str, EnvironmentInventory | Exception] = {}
        reads = _EnvironmentReads(ctx, refresh=False)
        bulk: dict[str, Mapping[str, Any]] = {}
        send, receive = anyio.create_memory_object_stream[
            tuple[EnvironmentPart[Any], EnvironmentInventory]
        ](max_buffer_size=math.inf)

        early = _EarlyReads(ctx, self._function)

        async def core(suffix: str) -> None:
            try:
                env = cores[suffix] = await self._core(suffix)
            except Exception as error:
                cores[suffix] = error
                return
            finally:
                self._progress.discovered += 1
            reads.values[suffix] = dict(env.parts)
            for part in self._environment:
                send.send_nowait((part, env))
            early.add(env)

        everything: list[_Read] = []  # every part of every environment whose core was read

        async def cores_then_functions() -> None:
            async with anyio.create_task_group() as early.group:
                async with send:
                    await run_each(suffixes, core, _ENVIRONMENTS_AT_ONCE)
                everything.extend(
                    (env, self._environment, self._function, None)
                    for env in cores.values()
                    if not isinstance(env, Exception)
                )
                bulk.update(await self._function_parts(ctx, everything, refresh=False))

        async with anyio.create_task_group() as group:
            group.start_soon(cores_then_functions)
            with receive:
                for _ in range(min(_ENVIRONMENTS_AT_ONCE, len(suffixes) * len(self._environment))):
                    group.start_soon(reads.each, receive.clone())
        found: dict[str, EnvironmentInventory | Exception] = dict(cores)
        found.update(_assembled(everything, False, reads, bulk))
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
            name = names.function(base)
            if (name, suffix) in self._refused:
                log.info("function.skipped", function=name, reason="not taken by --all")
                return
            state = self._known.pop(name, None) or await find_function(self.aws, name)
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

    async def refresh(
        self, inventory: EnvironmentInventory, parts: Sequence[Part[Any]], functions: set[str]
    ) -> EnvironmentInventory:
        """Re-read the given parts (function parts of the given functions only): verification.
        The core part `FUNCTION` re-reads the function itself. One environment's re-reads
        go through the batch loaders, so concurrent calls for several environments still
        share calls; `refresh_many` re-reads many environments with exact batches."""
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

    async def refresh_many(
        self, requests: Sequence[Refresh]
    ) -> dict[str, EnvironmentInventory | Exception]:
        """`refresh` for many environments at once, by suffix; a failure is returned for its
        environment, not raised. Each function part is one bulk re-read (`refresh_many`)
        over the given functions of every environment that re-reads it."""
        return await self._read_parts(
            [
                (
                    inventory,
                    [p for p in parts if isinstance(p, EnvironmentPart)],
                    [p for p in parts if isinstance(p, FunctionPart)],
                    functions,
                )
                for inventory, parts, functions in requests
            ],
            refresh=True,
        )

    async def _read_parts(
        self, reads: Sequence[_Read], refresh: bool
    ) -> dict[str, EnvironmentInventory | Exception]:
        """A re-read: environment parts per environment, function parts in bulk over all
        the environments, at once; the values join each inventory's. An environment fails
        with the first error among its own reads."""
        ctx = self.context.one_pass()
        environment = _EnvironmentReads(ctx, refresh)
        bulk: dict[str, Mapping[str, Any]] = {}
        for env, *_ in reads:
            environment.values[env.suffix] = dict(env.parts)

        async def function_parts() -> None:
            bulk.update(await self._function_parts(ctx, reads, refresh))

        per_environment = [(part, env) for env, parts, _, _ in reads for part in parts]
        async with anyio.create_task_group() as group:
            group.start_soon(run_each, per_environment, environment.one, _ENVIRONMENTS_AT_ONCE)
            group.start_soon(function_parts)
        return _assembled(reads, refresh, environment, bulk)

    async def _function_parts(
        self, ctx: ReadContext, reads: Sequence[_Read], refresh: bool
    ) -> dict[str, Mapping[str, Any]]:
        """Each function part, read in bulk over the functions of every environment that
        reads it: by part name, each function's value (or the error of its read)."""
        bulk: dict[str, Mapping[str, Any]] = {}

        async def function_part(part: FunctionPart[Any]) -> None:
            items = [
                (env, fn.state)
                for env, _, function_parts, only in reads
                if part in function_parts
                for fn in env.functions
                if only is None or fn.name in only
            ]
            if not items:
                return
            try:
                many = part.refresh_many if refresh else part.read_many
                bulk[part.name] = await many(ctx, items)
            except Exception as error:  # the whole read failed: each environment it read
                bulk[part.name] = dict.fromkeys((fn.name for _, fn in items), error)

        async with anyio.create_task_group() as group:
            for fn_part in {p.name: p for _, _, ps, _ in reads for p in ps}.values():
                group.start_soon(function_part, fn_part)
        return bulk


class _EarlyReads:
    """Whole early batches of the function parts that take them (`FunctionPart.early_batch`),
    started as the cores of their functions arrive; the rest waits for `read_many`."""

    def __init__(self, ctx: ReadContext, parts: Sequence[FunctionPart[Any]]) -> None:
        self.ctx = ctx
        self.group: TaskGroup | None = None
        self._waiting: list[tuple[FunctionPart[Any], list[_Item]]] = [
            (part, []) for part in parts if part.early_batch > 0
        ]

    def add(self, env: EnvironmentInventory) -> None:
        assert self.group is not None, "add() runs inside the group"
        for part, waiting in self._waiting:
            waiting.extend((env, fn.state) for fn in env.functions)
            while len(waiting) >= part.early_batch:
                batch = waiting[: part.early_batch]
                del waiting[: part.early_batch]
                self.group.start_soon(self._read, part, batch)

    async def _read(self, part: FunctionPart[Any], batch: list[_Item]) -> None:
        try:
            await part.read_early(self.ctx, batch)
        except Exception:  # read_many reads what an early read left unread, and says why
            log.debug("discovery.early_read_failed", part=part.name, exc_info=True)


class _EnvironmentReads:
    """Environment parts read one by one, their values by suffix and part, and the first
    error of each environment."""

    def __init__(self, ctx: ReadContext, refresh: bool) -> None:
        self.ctx = ctx
        self.refresh = refresh
        self.values: dict[str, dict[str, Any]] = {}
        self.failed: dict[str, Exception] = {}

    async def one(self, item: tuple[EnvironmentPart[Any], EnvironmentInventory]) -> None:
        part, env = item
        try:
            read = part.refresh if self.refresh else part.read
            self.values[env.suffix][part.name] = await read(self.ctx, env)
        except Exception as error:
            self.failed.setdefault(env.suffix, error)

    async def each(
        self, items: MemoryObjectReceiveStream[tuple[EnvironmentPart[Any], EnvironmentInventory]]
    ) -> None:
        """Read the items as they come, until the stream ends."""
        async with items:
            async for item in items:
                await self.one(item)


def _assembled(
    reads: Sequence[_Read],
    refresh: bool,
    environment: _EnvironmentReads,
    bulk: Mapping[str, Mapping[str, Any]],
) -> dict[str, EnvironmentInventory | Exception]:
    """Each environment with the values read joined to its inventory, or its first error."""
    failed = dict(environment.failed)
    found: dict[str, EnvironmentInventory | Exception] = {}
    for env, environment_parts, parts, only in reads:
        functions: list[FunctionInventory] = []
        for fn in env.functions:
            if only is not None and fn.name not in only:
                functions.append(fn)
                continue
            values: dict[str, Any] = {FUNCTION.name: fn.state, **fn.parts}
            for part in parts:
                value = bulk[part.name].get(fn.name, _MISSING)
                if value is _MISSING:
                    value = RuntimeError(f"{part.name} of {fn.name} was not read")
                if isinstance(value, Exception):
                    failed.setdefault(env.suffix, value)
                values[part.name] = value
            state = values.pop(FUNCTION.name)
            ordered = values if refresh else _ordered(values, parts)
            functions.append(replace(fn, state=state, parts=ordered))
        if env.suffix in failed:
            found[env.suffix] = failed[env.suffix]
            continue
        own = environment.values[env.suffix]
        found[env.suffix] = replace(
            env,
            parts=own if refresh else _ordered(own, environment_parts),
            functions=tuple(functions),
        )
    return found


# Environments (or environment parts) read at once. The gateway paces the calls; more at
# once would only wait longer, as tasks of a few KB each (thousands at fleet scale).
_ENVIRONMENTS_AT_ONCE: Final = 100
_MISSING: Final = object()
# One environment's re-read: its inventory, the parts to re-read, the functions to re-read.
Refresh = tuple[EnvironmentInventory, Sequence[Part[Any]], set[str]]
# One function of a function part's read: its environment and its state.
_Item = tuple[EnvironmentInventory, FunctionState]
# One environment's read: its inventory, its environment and function parts, and the
# functions whose parts are read (None: all).
_Read = tuple[
    EnvironmentInventory,
    Sequence[EnvironmentPart[Any]],
    Sequence[FunctionPart[Any]],
    set[str] | None,
]


def _ordered(values: dict[str, Any], parts: Sequence[Part[Any]]) -> dict[str, Any]:
    return {part.name: values[part.name] for part in parts if part.name in values}
