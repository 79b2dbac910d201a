"""What a run replays, and so what it covers: a fresh plan from the targets (a run), a
reviewed plan file (`apply`), a run's before-images (`rollback`). Each kind says, in one
place, what its run reads, which engine replays it, and what its record and report carry;
the orchestration (`orchestration.py`) asks the same questions of every kind and never
which kind it has.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

import structlog

from optimizer_async.aws import price_list, pricing
from optimizer_async.aws.gateway import Aws
from optimizer_async.definitions.targets import Targets, targets_from_json, targets_to_json
from optimizer_async.execution.bake_settings import BakeSettings
from optimizer_async.execution.engine import Engine, EngineSettings
from optimizer_async.execution.recorded import (
    RecordedEngine,
    RecordError,
    function_bases,
    recorded_steps,
)
from optimizer_async.fleet import finder
from optimizer_async.fleet.accounts import Account, Place
from optimizer_async.fleet.shards import Fingerprint, Shard
from optimizer_async.records import plan_file
from optimizer_async.records.state import StateStore
from optimizer_async.reporting.report import Sharding
from optimizer_async.runs.configs import ApplyConfig, CommonConfig, RollbackConfig, RunConfig
from optimizer_async.runs.store import load_images
from optimizer_async.steps.base import Step
from optimizer_async.steps.registry import REGISTRY

log = structlog.get_logger("optimizer_async.runner")
Records = dict[str, dict[str, Any]]


@dataclass
class Scope:
    """What a run covers: its steps, its environments (in order), and what it replays."""

    steps: tuple[Step, ...]
    suffixes: tuple[str, ...]
    bases: tuple[str, ...]
    targets: Targets
    records: Records | None = None  # a replay's, by suffix
    found: finder.Finding | None = None  # --all: what the finder judged
    every: tuple[str, ...] = ()  # every environment before a shard's share
    candidates: tuple[str, ...] = ()  # what the whole run judged (a shard's fingerprint)
    plan: dict[str, Any] | None = None  # `apply`: the plan document it applies


class Replay(ABC):
    """A run's source of changes. The defaults are a replay's: no prices, no shard, no
    plan file out, no bake; a fresh plan overrides them."""

    command: ClassVar[str]
    config: RunConfig | ApplyConfig | RollbackConfig

    @property
    def dry_run(self) -> bool:
        return self.config.dry_run

    @property
    def accounts(self) -> tuple[Account, ...]:
        """`--accounts`: the places it runs in, each in its own (organisations/)."""
        return self.config.accounts

    @property
    def rollback_of(self) -> str | None:
        return None

    @property
    def applied_plan(self) -> str | None:
        return None

    @property
    def shard(self) -> Shard | None:
        return None

    @property
    def plan_out(self) -> Path | None:
        return None

    @property
    def bake(self) -> BakeSettings | None:
        return None

    @property
    def free_tier(self) -> bool:
        return False

    @property
    def selected(self) -> bool:
        """Whether the run chose its steps (--only, --skip): the report says so."""
        return False

    @abstractmethod
    async def scope(self, aws: Aws, store: StateStore, place: Place | None, run_id: str) -> Scope:
        """What the run covers, read in its account and region."""

    @abstractmethod
    def engine(self, aws: Aws, settings: EngineSettings, scope: Scope) -> Engine: ...

    async def prices(self, aws: Aws) -> pricing.PriceBook | None:
        """The run's prices; None: a replay, which prices nothing."""
        return None

    def sharding(
        self, account: str, region: str, scope: Scope, book: pricing.PriceBook | None
    ) -> Sharding | None:
        return None


@dataclass(frozen=True)
class FreshPlan(Replay):
    """A run: the targets, over the environments the configuration selects."""

    command: ClassVar[str] = "run"
    config: RunConfig

    @property
    def shard(self) -> Shard | None:
        return self.config.shard

    @property
    def plan_out(self) -> Path | None:
        return self.config.plan_out

    @property
    def bake(self) -> BakeSettings | None:
        return self.config.bake

    @property
    def free_tier(self) -> bool:
        return self.config.free_tier

    @property
    def selected(self) -> bool:
        return bool(self.config.only or self.config.skip)

    async def scope(self, aws: Aws, store: StateStore, place: Place | None, run_id: str) -> Scope:
        config, account = self.config, await aws.account_id()
        suffixes = _account_filtered(config, place, account)
        named: set[str] = set()  # every suffix the run was offered, before a shard's share

        def mine(suffix: str) -> bool:
            named.add(suffix)
            return config.shard is None or config.shard.takes(account, aws.region, suffix)

        found = None
        if config.find_all:  # a shard judges only its own candidates
            filters = finder.Filters(config.match, config.exclude, place.account if place else None)
            with structlog.contextvars.bound_contextvars(run_id=run_id):
                found = await finder.find(aws, config.function_bases, filters, mine)
            suffixes = found.suffixes
            candidates = sorted(s for s in named if filters.refusal(s) is None)
        else:
            candidates = sorted(set(suffixes))
        every = suffixes
        if config.shard is not None:
            suffixes = tuple(s for s in suffixes if mine(s))
        steps = REGISTRY.select(config.only, config.skip)
        return Scope(steps, suffixes, config.function_bases, config.targets, None, found,
                     every, tuple(candidates))  # fmt: skip

    def engine(self, aws: Aws, settings: EngineSettings, scope: Scope) -> Engine:
        return Engine(aws, settings)

    async def prices(self, aws: Aws) -> pricing.PriceBook:
        """The dated table for its region, or (`--prices live`) the Price List API's, read
        once per run."""
        if self.config.prices == "live":
            return await price_list.live_book(aws, self.config.region)
        return pricing.table(self.config.region)

    def sharding(
        self, account: str, region: str, scope: Scope, book: pricing.PriceBook | None
    ) -> Sharding | None:
        shard = self.config.shard
        if shard is None or book is None:
            return None
        values = _fingerprinted(self.config, account, region, scope, book)
        return Sharding(shard, scope.every, self.config.free_tier, Fingerprint.of(values))


def _account_filtered(config: RunConfig, place: Place | None, account: str) -> tuple[str, ...]:
    """The suffixes given, less those an --accounts entry's match/exclude leaves out."""
    if place is None or config.find_all:
        return config.suffixes
    left_out = [s for s in config.suffixes if place.account.refusal(s) is not None]
    if left_out:
        log.info("environments.left_out", account=account, suffixes=left_out,
                 reason=f"account {place.account.name}'s match/exclude")  # fmt: skip
    return tuple(s for s in config.suffixes if s not in left_out)


@dataclass(frozen=True)
class PlanFile(Replay):
    """`apply`: exactly the changes of a reviewed plan file (or of a place's plan, from an
    organisation's)."""

    command: ClassVar[str] = "apply"
    config: ApplyConfig
    document: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def applied_plan(self) -> str:
        return str(self.config.plan_file)

    async def scope(self, aws: Aws, store: StateStore, place: Place | None, run_id: str) -> Scope:
        config = self.config
        # Loaded and verified again: still the file the CLI checked, or refused (exit 2).
        plan = self.document or plan_file.load(config.plan_file, config.plan_sha256)
        records: Records = plan["environments"]
        same_place(records, await aws.account_id(), aws.region, str(config.plan_file))
        return _recorded_scope(records, targets_from_json(plan["targets"]), plan)

    def engine(self, aws: Aws, settings: EngineSettings, scope: Scope) -> Engine:
        assert scope.records is not None
        return RecordedEngine(aws, settings, scope.records, "apply")


@dataclass(frozen=True)
class BeforeImages(Replay):
    """`rollback`: a run's before-images put back (or, for the bake, the changes of the
    functions that got worse)."""

    command: ClassVar[str] = "rollback"
    config: RollbackConfig
    records: Records | None = field(default=None, compare=False)

    @property
    def rollback_of(self) -> str:
        return self.config.run_id

    async def scope(self, aws: Aws, store: StateStore, place: Place | None, run_id: str) -> Scope:
        records = self.records or await load_images(store, self.config.run_id)
        same_place(records, await aws.account_id(), aws.region, self.config.run_id)
        return _recorded_scope(records, Targets(), None)

    def engine(self, aws: Aws, settings: EngineSettings, scope: Scope) -> Engine:
        assert scope.records is not None
        return RecordedEngine(aws, settings, scope.records, "undo", self.config.force)


def _recorded_scope(records: Records, targets: Targets, plan: dict[str, Any] | None) -> Scope:
    steps = recorded_steps(records, {step.name: step for step in REGISTRY})
    suffixes = tuple(records)
    return Scope(steps, suffixes, function_bases(records), targets, records, every=suffixes,
                 candidates=tuple(sorted(suffixes)), plan=plan)  # fmt: skip


def same_place(records: Records, account: str, region: str, of: str) -> None:
    """A recorded change is put back only where it was made: RecordError if a record is of
    another account or region than these credentials' (exit 2, before any write)."""
    for suffix, record in records.items():
        where = (str(record.get("account_id")), str(record.get("region")))
        if where != (account, region):
            raise RecordError(
                f"{of} recorded environment {suffix} in account {where[0]} {where[1]}; these "
                f"credentials are account {account} in {region}: use that account and region "
                "(with --accounts, the file that ran it)"
            )


def _fingerprinted(
    config: RunConfig, account: str, region: str, scope: Scope, book: pricing.PriceBook
) -> dict[str, Any]:
    """What a shard's fingerprint is made of (`shards.FINGERPRINT_PARTS`): everything that
    decides what the run does, and the environments it judged before it was split."""
    target_values = targets_to_json(scope.targets)
    guardrails = target_values.pop("guardrails")
    return {
        "command": {"command": config.command, "dry_run": config.dry_run},
        "selection": {
            "account": account,
            "region": region,
            "all": config.find_all,
            "suffixes": [] if config.find_all else sorted(config.suffixes),
            "match": sorted(config.match),
            "exclude": sorted(config.exclude),
            "function_bases": list(config.function_bases),
            "accounts": [_account_filters(a) for a in config.accounts],
        },
        "steps": [step.name for step in scope.steps],
        "targets": target_values,
        "guardrails": guardrails,
        "prices": {"source": config.prices, "book": book.origin, "free_tier": config.free_tier},
        "shards": None if config.shard is None else config.shard.count,
        "candidates": list(scope.candidates),
    }


def _account_filters(account: Account) -> dict[str, Any]:
    """An --accounts entry as it selects environments (its role and external id do not)."""
    return {
        "account": account.account_id,
        "regions": list(account.regions),
        "match": sorted(account.match),
        "exclude": sorted(account.exclude),
    }


def common(config: CommonConfig) -> dict[str, Any]:
    """The fields every command's config shares, to build another kind's from them (the
    bake's rollback from its run's)."""
    return {f.name: getattr(config, f.name) for f in fields(CommonConfig) if f.init}


def replay_of(config: RunConfig | ApplyConfig | RollbackConfig) -> Replay:
    """What a command's config replays: a run's fresh plan, `apply`'s plan file,
    `rollback`'s before-images."""
    if isinstance(config, ApplyConfig):
        return PlanFile(config)
    if isinstance(config, RollbackConfig):
        return BeforeImages(config)
    return FreshPlan(config)
