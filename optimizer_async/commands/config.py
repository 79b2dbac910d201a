"""RunConfig: a run's validated settings. Built only by cli.py; bad input never gets past it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

from optimizer_async.definitions.naming import DEFAULT_FUNCTION_BASE
from optimizer_async.definitions.targets import Targets
from optimizer_async.fleet.accounts import Account
from optimizer_async.fleet.shards import Shard
from optimizer_async.reporting.logs import LogFormat

if TYPE_CHECKING:
    from optimizer_async.sandbox.config import Profile

OutputFormat = Literal["table", "json", "markdown"]
PriceSource = Literal["table", "live"]
PRICE_SOURCES: Final[tuple[PriceSource, ...]] = ("table", "live")
Command = Literal["run", "rollback", "runs", "apply", "savings", "merge", "serve"]
OUTPUT_FORMATS: Final[tuple[OutputFormat, ...]] = ("table", "json", "markdown")
# --details: which environments the table shows in detail after the summary (Markdown: all
# within GitHub's comment size, or every one, or none); unset: problems, all of up to three.
Details = Literal["problems", "all", "none"]
DETAILS: Final[tuple[Details, ...]] = ("problems", "all", "none")


class UsageError(ValueError):
    """Bad input: reported as one line, exit code 2, before any AWS call."""


@dataclass(frozen=True)
class SandboxRequest:
    """`--sandbox`: run against the embedded AWS, seeded with these environments."""

    seed: tuple[str, ...]
    profile: Profile = "aws"
    functions_per_env: int = 1
    profile_mix: tuple[str, ...] = ("default",)  # workload profiles of the seeded functions


@dataclass(frozen=True)
class BakeSettings:
    """`--bake`: how long to watch changed functions, how often, and what counts as worse."""

    duration_s: float
    poll_s: float = 300.0
    error_rate_points: float = 1.0  # percentage points over the function's own error rate
    throttle_rate_points: float = 1.0  # percentage points over its own throttle rate
    min_invocations: int = 20  # fewer in the window so far: too few to judge a rate

    def __post_init__(self) -> None:
        if not self.duration_s > 0 or not self.poll_s > 0:
            raise ValueError("a bake needs a positive duration and poll interval")


@dataclass(frozen=True)
class ServeSettings:
    """`serve`: where the API listens, how often to reconcile, and how much to change."""

    host: str = "127.0.0.1"
    port: int = 8080
    interval_s: float = 900.0
    max_changes: int | None = None  # per cycle; None: no budget
    token: str | None = field(default=None, repr=False)  # the API's bearer token


@dataclass(frozen=True)
class RunConfig:
    suffixes: tuple[str, ...]  # with find_all: none, the run finds them
    region: str
    find_all: bool = False  # --all: every environment the region holds (finder.py)
    match: tuple[str, ...] = ()  # --match globs of the suffixes --all takes
    exclude: tuple[str, ...] = ()  # --exclude globs of suffixes --all leaves out
    dry_run: bool = False
    endpoint_url: str | None = None
    profile: str | None = None
    function_bases: tuple[str, ...] = (DEFAULT_FUNCTION_BASE,)
    targets: Targets = field(default_factory=Targets)
    concurrency: int = 32
    output: OutputFormat = "table"
    details: Details | None = None  # --details; None: problems, every one of up to three
    report_file: Path | None = None
    log_format: LogFormat = "json"
    log_level: str = "info"
    log_file: Path | None = None
    state_dir: Path = Path(".lambda-optimizer")
    time_scale: float = 1.0
    quotas: tuple[tuple[str, float], ...] = ()  # --quota: (bucket, rate) the account raised
    sandbox: SandboxRequest | None = None
    demo: bool = False
    command: Command = "run"
    run_id: str | None = None  # rollback: the run to undo
    force: bool = False  # rollback: also what was changed since the run
    plan_out: Path | None = None  # a dry run: write the plan file here
    state_bucket: str | None = None  # --state-bucket s3://BUCKET/PREFIX: records go there
    state_prefix: str = ""
    plan_file: Path | None = None  # apply: the reviewed plan to apply
    # apply: the plan's sha256 as checked before any AWS call; the run applies only a file
    # that still has it (a file swapped meanwhile is refused)
    plan_sha256: str | None = None
    only: tuple[str, ...] = ()  # --only: registry names of the steps to run (else all)
    skip: tuple[str, ...] = ()  # --skip: registry names of steps not to run
    bake: BakeSettings | None = None  # --bake: watch changed functions after the run
    free_tier: bool = False  # --free-tier: the account's free tier, applied once
    prices: PriceSource = "table"  # --prices: the dated table, or the Price List API
    days: int = 14  # savings: the longest window before and since the run
    progress: bool = True  # live on a terminal, else a `progress` log event (progress.py)
    shard: Shard | None = None  # --shard I/N: this run's share of the environments
    merge: tuple[Path, ...] = ()  # report merge: the shards' JSON reports
    # --accounts FILE: every account and region it lists, side by side (organisation.py)
    accounts: tuple[Account, ...] = ()
    serve: ServeSettings | None = None  # `serve`: the service's own settings
