"""A run (no command word): bring the environments to the targets, or with --dry-run plan
them; `--sandbox` runs it against the embedded AWS, `--accounts` in every place a file lists."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from optimizer_async.commands.base import Command
from optimizer_async.commands.common import (
    PROG,
    Parser,
    accounts_of,
    add_accounts_option,
    add_aws_options,
    aws_options,
    common_fields,
    duration_s,
    finite,
    run_replay,
    step_names,
    writable,
)
from optimizer_async.definitions.naming import (
    InvalidNameError,
    parse_suffixes,
    validate_function_base,
)
from optimizer_async.definitions.targets import GUARDRAIL_MODES, Targets, TargetsError, load_targets
from optimizer_async.execution.bake_settings import BakeSettings
from optimizer_async.fleet import shards
from optimizer_async.runs.configs import PRICE_SOURCES, RunConfig, SandboxRequest, UsageError
from optimizer_async.sandbox.config import PROFILES
from optimizer_async.sandbox.workload.profiles import NAMED, check_mix
from optimizer_async.steps.registry import REGISTRY, SelectionError

BAKE_LIMITS_S: Final = (60, 24 * 3600)  # a minute of metrics at least; a day at most


def build_parser(sandbox: bool = True) -> argparse.ArgumentParser:
    """The run's options (`sandbox`: also its one-off ones - the sandbox, a plan file, a
    bake - which the service's cycles do not take)."""
    parser = Parser(
        prog=PROG,
        description="Bring Lambda environments from baseline to optimised settings. "
        f"Other commands: {', '.join(OTHER_COMMANDS)} (see `{PROG} COMMAND --help`).",
    )
    add_aws_options(parser)
    add = parser.add_argument
    add(
        "--suffix",
        action="append",
        default=[],
        metavar="S",
        help="environment suffix (repeatable, or comma-separated); also ENVIRONMENT_SUFFIX",
    )
    add(
        "--all",
        dest="find_all",
        action="store_true",
        help="every environment of the region: a function {base}-{suffix} whose "
        "environment-suffix tag names that suffix (ENVIRONMENT_SUFFIX is then ignored)",
    )
    add(
        "--shard",
        metavar="I/N",
        help="only shard I (from 0) of N of the environments, by rendezvous hashing of "
        "(account, region, suffix); auto/N takes I from JOB_COMPLETION_INDEX or "
        "AWS_BATCH_JOB_ARRAY_INDEX. Join the shards' JSON reports with `report merge`",
    )
    add_accounts_option(parser)
    add("--match", action="append", default=[], metavar="GLOB", help="with --all: only these")
    add("--exclude", action="append", default=[], metavar="GLOB", help="with --all: not these")
    add("--dry-run", action="store_true", help="discover, plan and estimate; change nothing")
    add(
        "--function-base",
        action="append",
        default=[],
        metavar="BASE",
        help="function name before the suffix (repeatable; default lambda-function)",
    )
    add("--targets", type=Path, metavar="FILE", help="TOML file overriding the targets")
    add(
        "--only",
        action="append",
        default=[],
        metavar="STEP[,STEP]",
        help=f"run only these optimisations (of: {', '.join(REGISTRY.names)})",
    )
    add(
        "--skip",
        action="append",
        default=[],
        metavar="STEP[,STEP]",
        help="run every optimisation but these",
    )
    add(
        "--guardrails",
        choices=GUARDRAIL_MODES,
        help="adjust (default): the tightest value the evidence allows; strict: skip a change "
        "the evidence does not support; off: the targets as given, with warnings",
    )
    add("--lookback-days", type=int, metavar="N", help="evidence window in days (14)")
    add(
        "--max-scan-gb",
        type=finite,
        metavar="GB",
        help="Logs Insights budget of a run (50); beyond it, metrics-only evidence",
    )
    add(
        "--prices",
        choices=PRICE_SOURCES,
        default="table",
        help="table: the dated price table (default); live: Lambda's prices from the AWS "
        "Price List API (pricing:GetProducts), the table for the rest",
    )
    add(
        "--free-tier",
        action="store_true",
        help="price the account's monthly free tier, once for the run (not per function)",
    )
    if sandbox:
        _one_off_options(parser)
    return parser


def _one_off_options(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add(
        "--plan-out",
        type=Path,
        metavar="F",
        help="with --dry-run: also write the plan to F, for review and `apply F`",
    )
    add(
        "--bake",
        metavar="DURATION",
        help="after the run, watch each changed function for DURATION (e.g. 30m, 2h) against "
        "its own evidence; roll back at once any that gets worse (errors, throttles, "
        "out-of-memory, timeouts, its new alarms)",
    )
    add("--sandbox", action="store_true", help="start the embedded AWS sandbox and use it")
    add(
        "--seed",
        action="append",
        default=[],
        metavar="SUFFIXES",
        help="with --sandbox: environments to create at baseline first",
    )
    add(
        "--sandbox-profile",
        choices=PROFILES,
        default=None,
        help="with --sandbox: traffic shaping (aws, the default: AWS's quotas and delays)",
    )
    add("--functions-per-env", type=int, metavar="N", help="with --seed (1)")
    add(
        "--profile-mix",
        action="append",
        default=[],
        metavar="P[,P]",
        help="with --seed: workload profiles given to the seeded functions in order, cycling "
        f"({', '.join(NAMED)}, default)",
    )
    add(
        "--demo",
        action="store_true",
        help="with --sandbox: dry run, then the run, then a re-run that finds nothing to do",
    )


def run_config(args: argparse.Namespace, environ: Mapping[str, str]) -> RunConfig:
    """A run's configuration from the run's (or the service's) arguments."""
    sandbox = _sandbox(args)
    try:
        seed = sandbox.seed if sandbox is not None else ()
        given = [*args.suffix, "" if args.find_all else environ.get("ENVIRONMENT_SUFFIX", "")]
        suffixes = parse_suffixes(given) or (seed if sandbox and not args.find_all else ())
        bases = tuple(validate_function_base(b) for b in args.function_base) or ("lambda-function",)
    except InvalidNameError as error:
        raise UsageError(str(error)) from None
    match, exclude = _globs(args.match, "--match"), _globs(args.exclude, "--exclude")
    if args.find_all and suffixes:
        raise UsageError("--all finds the environments: leave out --suffix")
    if (match or exclude) and not args.find_all:
        raise UsageError("--match and --exclude filter what --all finds: add --all")
    if not suffixes and not args.find_all:
        raise UsageError("no environment suffix: set ENVIRONMENT_SUFFIX, pass --suffix or --all")
    try:
        shard = None if args.shard is None else shards.parse(args.shard, environ)
    except shards.ShardError as error:
        raise UsageError(str(error)) from None
    plan_out = getattr(args, "plan_out", None)
    if getattr(args, "demo", False) and (args.dry_run or plan_out is not None):
        option = "--dry-run" if args.dry_run else "--plan-out"
        raise UsageError(f"--demo makes its own dry run, run and re-run: leave out {option}")
    if plan_out is not None and not args.dry_run:
        raise UsageError("--plan-out needs --dry-run: a plan file is reviewed, then applied")
    bake = _bake(getattr(args, "bake", None), args.dry_run)
    if bake is not None and args.time_scale != 1.0:
        raise UsageError("--bake windows metrics by UTC time: it cannot go with --time-scale")
    region, endpoint = aws_options(args, environ)
    if sandbox is not None and endpoint:
        raise UsageError("--sandbox and AWS_ENDPOINT_URL are exclusive: pick one AWS")
    if args.accounts is not None and sandbox is not None:
        raise UsageError("--accounts runs in the accounts it lists: it cannot go with --sandbox")
    organisation = accounts_of(args, region)
    try:
        targets = load_targets(args.targets) if args.targets else Targets()
    except TargetsError as error:
        raise UsageError(str(error)) from None
    targets = _with_guardrail_flags(targets, args)
    only, skip = step_names(args.only), step_names(args.skip)
    try:
        REGISTRY.select(only, skip)
    except SelectionError as error:
        raise UsageError(str(error)) from None
    return RunConfig(
        suffixes=suffixes,
        find_all=args.find_all,
        match=match,
        exclude=exclude,
        shard=shard,
        dry_run=args.dry_run,
        function_bases=bases,
        targets=targets,
        **common_fields(args, region, endpoint, environ),
        sandbox=sandbox,
        demo=getattr(args, "demo", False),
        only=only,
        skip=skip,
        plan_out=writable(plan_out, "--plan-out"),
        bake=bake,
        prices=args.prices,
        free_tier=args.free_tier,
        accounts=organisation,
    )


def _sandbox(args: argparse.Namespace) -> SandboxRequest | None:
    """`--sandbox` and the options that shape it, which need it."""
    if not getattr(args, "sandbox", False):
        shaped = [option for option, given in (
            ("--seed", args.seed), ("--profile-mix", args.profile_mix), ("--demo", args.demo),
            ("--sandbox-profile", args.sandbox_profile is not None),
            ("--functions-per-env", args.functions_per_env is not None),
        ) if given] if hasattr(args, "seed") else []  # fmt: skip
        if shaped:
            raise UsageError(f"{shaped[0]} shapes the embedded sandbox: it needs --sandbox")
        return None
    try:
        seed = parse_suffixes(args.seed)
        profile_mix = check_mix(args.profile_mix)
    except (InvalidNameError, ValueError) as error:
        raise UsageError(str(error)) from None
    if not seed and (args.profile_mix or args.functions_per_env is not None):
        option = "--profile-mix" if args.profile_mix else "--functions-per-env"
        raise UsageError(f"{option} shapes the environments --seed makes: it needs --seed")
    per_env = 1 if args.functions_per_env is None else args.functions_per_env
    if per_env < 1:
        raise UsageError("--functions-per-env must be at least 1")
    return SandboxRequest(seed, args.sandbox_profile or "aws", per_env, profile_mix)


def _globs(values: Sequence[str], option: str) -> tuple[str, ...]:
    """`--match` / `--exclude` globs, comma-separated or repeated; none may be empty."""
    globs = tuple(part.strip() for value in values for part in value.split(","))
    if "" in globs:
        raise UsageError(f"{option} takes a glob of suffixes (e.g. 'pr-*'), not an empty one")
    return tuple(dict.fromkeys(globs))


def _bake(value: str | None, dry_run: bool) -> BakeSettings | None:
    """`--bake 2h` / `90m` / `1h30m` / `45s` -> BakeSettings."""
    if value is None:
        return None
    if dry_run:
        raise UsageError("--bake watches what a run changed: it cannot go with --dry-run")
    duration = duration_s(value)
    if duration is None:
        raise UsageError(f"--bake {value!r} is not a duration (e.g. 30m, 2h, 1h30m)")
    low, high = BAKE_LIMITS_S
    if not low <= duration <= high:
        raise UsageError(f"--bake {value} must be between 1m and 24h")
    # Lambda's metrics are per minute: poll every whole minute up to five, four times at least.
    poll = min(300, max(60, duration // 4 // 60 * 60))
    return BakeSettings(duration_s=float(duration), poll_s=float(poll))


def _with_guardrail_flags(targets: Targets, args: argparse.Namespace) -> Targets:
    """--guardrails, --lookback-days and --max-scan-gb over the targets file's values."""
    flags = {
        name: value
        for name, value in (
            ("mode", args.guardrails),
            ("lookback_days", args.lookback_days),
            ("max_scan_gb", args.max_scan_gb),
        )
        if value is not None
    }
    try:
        return dataclasses.replace(
            targets, guardrails=dataclasses.replace(targets.guardrails, **flags)
        )
    except ValueError as error:
        flag = {"lookback_days": "--lookback-days", "max_scan_gb": "--max-scan-gb"}
        message = str(error)
        for name, option in flag.items():
            message = message.replace(name, option)
        raise UsageError(message) from None


def execute(config: RunConfig) -> int:
    """The run, in the sandbox (`--sandbox`, `--demo`), over an organisation (`--accounts`),
    or in one account and region."""
    if config.sandbox is None:
        return run_replay(config)
    from optimizer_async.commands.sandboxed import in_sandbox
    from optimizer_async.runs import process

    return process.execute(config, lambda settings: in_sandbox(config, settings))


# The commands named by a first word; a run takes none (`registry.py` lists them all).
OTHER_COMMANDS: Final = ("apply", "rollback", "runs", "savings", "report", "iam-policy", "serve")

COMMAND: Final = Command[RunConfig](
    name="",
    parser=build_parser,
    config=run_config,
    execute=execute,
)
