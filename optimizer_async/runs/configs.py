"""Each command's own validated settings: one type per command, built only by `commands/`,
so bad input never gets past it. Light on purpose: the command line builds them before it
loads the AWS SDK, the engine or the report."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal

from optimizer_async.definitions.naming import DEFAULT_FUNCTION_BASE
from optimizer_async.definitions.targets import Targets
from optimizer_async.execution.bake_settings import BakeSettings
from optimizer_async.fleet.accounts import Account
from optimizer_async.fleet.shards import Shard
from optimizer_async.reporting.formats import Details, OutputFormat
from optimizer_async.reporting.logs import LogFormat

if TYPE_CHECKING:
    from optimizer_async.sandbox.config import Profile

PriceSource = Literal["table", "live"]
PRICE_SOURCES: Final[tuple[PriceSource, ...]] = ("table", "live")


class UsageError(ValueError):
    """Bad input: reported as one line, exit code 2, before any AWS call."""


@dataclass(frozen=True, kw_only=True)
class CommonConfig:
    """What every command that talks to AWS shares: where, how it reports and logs, where
    runs keep their records."""

    command: ClassVar[str]
    region: str
    endpoint_url: str | None = None
    profile: str | None = None
    concurrency: int = 32
    output: OutputFormat = "table"
    details: Details | None = None  # --details; None: problems, every one of up to three
    report_file: Path | None = None
    log_format: LogFormat = "json"
    log_level: str = "info"
    log_file: Path | None = None
    state_dir: Path = Path(".lambda-optimizer")
    state_bucket: str | None = None  # --state-bucket s3://BUCKET/PREFIX: records go there
    state_prefix: str = ""
    time_scale: float = 1.0
    quotas: tuple[tuple[str, float], ...] = ()  # --quota: (bucket, rate) the account raised
    progress: bool = True  # live on a terminal, else a `progress` log event


@dataclass(frozen=True)
class SandboxRequest:
    """`--sandbox`: run against the embedded AWS, seeded with these environments."""

    seed: tuple[str, ...]
    profile: Profile = "aws"
    functions_per_env: int = 1
    profile_mix: tuple[str, ...] = ("default",)  # workload profiles of the seeded functions


@dataclass(frozen=True, kw_only=True)
class RunConfig(CommonConfig):
    """A run: the environments to bring to the targets (or, with `dry_run`, to plan)."""

    command: ClassVar[str] = "run"
    suffixes: tuple[str, ...] = ()  # with find_all: none, the run finds them
    find_all: bool = False  # --all: every environment the region holds (fleet/finder.py)
    match: tuple[str, ...] = ()  # --match globs of the suffixes --all takes
    exclude: tuple[str, ...] = ()  # --exclude globs of suffixes --all leaves out
    dry_run: bool = False
    function_bases: tuple[str, ...] = (DEFAULT_FUNCTION_BASE,)
    targets: Targets = field(default_factory=Targets)
    only: tuple[str, ...] = ()  # --only: registry names of the steps to run (else all)
    skip: tuple[str, ...] = ()  # --skip: registry names of steps not to run
    plan_out: Path | None = None  # a dry run: write the plan file here
    bake: BakeSettings | None = None  # --bake: watch changed functions after the run
    free_tier: bool = False  # --free-tier: the account's free tier, applied once
    prices: PriceSource = "table"  # --prices: the dated table, or the Price List API
    shard: Shard | None = None  # --shard I/N: this run's share of the environments
    # --accounts FILE: every account and region it lists, side by side (organisations/)
    accounts: tuple[Account, ...] = ()
    sandbox: SandboxRequest | None = None
    demo: bool = False


@dataclass(frozen=True, kw_only=True)
class ApplyConfig(CommonConfig):
    """`apply PLAN`: a reviewed plan file's changes, exactly."""

    command: ClassVar[str] = "apply"
    plan_file: Path
    # the plan's sha256 as checked before any AWS call; the run applies only a file that
    # still has it (a file swapped meanwhile is refused)
    plan_sha256: str | None = None
    dry_run: bool = False
    accounts: tuple[Account, ...] = ()  # an organisation's plan: each place in its own


@dataclass(frozen=True, kw_only=True)
class RollbackConfig(CommonConfig):
    """`rollback --run-id ID`: a run's before-images put back."""

    command: ClassVar[str] = "rollback"
    run_id: str
    force: bool = False  # also what was changed since the run
    dry_run: bool = False
    accounts: tuple[Account, ...] = ()  # an organisation's run: each place in its own


@dataclass(frozen=True, kw_only=True)
class SavingsConfig(CommonConfig):
    """`savings --run-id ID`: what a past run really saved."""

    command: ClassVar[str] = "savings"
    run_id: str
    days: int = 14  # the longest window before and since the run


@dataclass(frozen=True, kw_only=True)
class RunsConfig(CommonConfig):
    """`runs`: the recorded runs."""

    command: ClassVar[str] = "runs"


@dataclass(frozen=True, kw_only=True)
class MergeConfig:
    """`report merge`: the shards' JSON reports joined; no AWS call."""

    command: ClassVar[str] = "merge"
    reports: tuple[Path, ...]
    report_file: Path | None = None


@dataclass(frozen=True)
class ServeSettings:
    """`serve`: where the API listens, how often to reconcile, and how much to change."""

    host: str = "127.0.0.1"
    port: int = 8080
    interval_s: float = 900.0
    max_changes: int | None = None  # per cycle; None: no budget
    token: str | None = field(default=None, repr=False)  # the API's bearer token


@dataclass(frozen=True, kw_only=True)
class ServeConfig(RunConfig):
    """`serve`: the service's own settings, and the run each cycle makes."""

    command: ClassVar[str] = "serve"
    serve: ServeSettings = field(default_factory=ServeSettings)

    @classmethod
    def of(cls, cycle: RunConfig, serve: ServeSettings) -> ServeConfig:
        """The service whose cycles make `cycle` (without its live progress display)."""
        return cls(**{**_values(cycle), "progress": False}, serve=serve)

    def cycle(self) -> RunConfig:
        """The run a cycle (or a request within it) makes: this one without the service."""
        return RunConfig(**_values(self))


def _values(config: RunConfig) -> dict[str, Any]:
    return {f.name: getattr(config, f.name) for f in fields(RunConfig) if f.init}


Config = (
    RunConfig
    | ApplyConfig
    | RollbackConfig
    | SavingsConfig
    | RunsConfig
    | MergeConfig
    | ServeConfig
)

__all__ = [
    "PRICE_SOURCES",
    "ApplyConfig",
    "CommonConfig",
    "Config",
    "MergeConfig",
    "PriceSource",
    "RollbackConfig",
    "RunConfig",
    "RunsConfig",
    "SandboxRequest",
    "SavingsConfig",
    "ServeConfig",
    "ServeSettings",
    "UsageError",
]
