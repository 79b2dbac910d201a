"""Command line -> RunConfig -> run -> exit code. The only module that reads argv or env.

Exit codes: 0 converged or nothing to do; 1 some function or environment failed (the
others still finished); 2 usage or validation error, before any AWS call; 130 interrupted.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final, NoReturn

from optimizer_async.aws import quotas
from optimizer_async.commands.config import (
    DETAILS,
    OUTPUT_FORMATS,
    PRICE_SOURCES,
    BakeSettings,
    RunConfig,
    SandboxRequest,
    ServeSettings,
    UsageError,
)
from optimizer_async.definitions.naming import (
    REGION_RE,
    InvalidNameError,
    parse_suffixes,
    validate_function_base,
)
from optimizer_async.definitions.targets import GUARDRAIL_MODES, Targets, TargetsError, load_targets
from optimizer_async.execution import signals
from optimizer_async.fleet import accounts, shards
from optimizer_async.permissions import iam_policy
from optimizer_async.records import plan_file
from optimizer_async.reporting import logs
from optimizer_async.reporting.logs import LogFormat
from optimizer_async.sandbox.config import PROFILES
from optimizer_async.sandbox.workload.profiles import NAMED, check_mix
from optimizer_async.steps.registry import REGISTRY, SelectionError

PROG: Final = "lambda-optimizer"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
_ENDPOINT_RE: Final = re.compile(r"https?://[^\s/]+(/\S*)?")
_TOKEN_RE: Final = re.compile(r"[\x21-\x7e]{16,4096}")
_TOKEN_FILE_BYTES: Final = 4096


def _finite(text: str) -> float:
    """A float option: a finite number (argparse's `float` takes nan and inf)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text}")
    return value


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (no usage dump), raised rather than printed."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


COMMANDS: Final = ("apply", "rollback", "runs", "savings", "report", "iam-policy", "serve")
_RUN_ID_RE: Final = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{6}")
_ACCOUNT_RE: Final = re.compile(r"\d{12}")
_DURATION_RE: Final = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
BAKE_LIMITS_S: Final = (60, 24 * 3600)  # a minute of metrics at least; a day at most
_STATE_BUCKET_RE: Final = re.compile(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(/[\w./-]*)?")


def _common(parser: argparse.ArgumentParser) -> None:
    """Options every command that talks to AWS takes."""
    add = parser.add_argument
    add("--region", help="AWS region (default: AWS_REGION, else us-east-1)")
    add("--concurrency", type=int, default=32, metavar="N", help="functions in flight (32)")
    _reporting(parser)
    add(
        "--details",
        choices=DETAILS,
        help="which environments the table shows in detail after its summary: problems "
        "(failed, blocked, at risk or adjusted; the default, and all for up to 3), all, "
        "none. Markdown: every one that fits a GitHub comment, all, none; JSON: all",
    )
    add("--log-format", choices=("json", "console"), help="default: console on a terminal")
    add("--log-level", choices=logs.LEVELS, default="info")
    add(
        "--no-progress",
        action="store_true",
        help="no live progress on a terminal (elsewhere: no `progress` log events)",
    )
    add("--log-file", type=Path, metavar="F", help="write logs to F instead of stderr")
    add(
        "--time-scale",
        type=_finite,
        default=1.0,
        metavar="K",
        help="sandboxes only: the endpoint's clock runs K times faster",
    )
    add(
        "--quota",
        action="append",
        default=[],
        metavar="BUCKET=RATE",
        help="an API rate quota the account has raised, in requests/s (repeatable; "
        "buckets: optimizer_async/aws/quotas.py, e.g. cloudwatch.PutMetricAlarm=10)",
    )


def _reporting(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--output", choices=OUTPUT_FORMATS, default="table", help="report format on stdout")
    add(
        "--report-file",
        type=Path,
        metavar="F",
        help="also write the report to F (.json: JSON, .md: Markdown, else --output)",
    )
    add(
        "--state-dir",
        type=Path,
        default=Path(".lambda-optimizer"),
        metavar="DIR",
        help="where runs keep their before-images and reports (./.lambda-optimizer)",
    )
    add(
        "--state-bucket",
        metavar="s3://BUCKET[/PREFIX]",
        help="keep run records in S3 instead (versioned, encrypted, not public): for CI "
        "runners whose disks do not outlive them",
    )


def _accounts_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--accounts",
        type=Path,
        metavar="FILE",
        help="every account and region FILE lists (c7n-org's accounts.yaml: account_id, "
        "name, role, external_id, regions, match, exclude), side by side, each role "
        "assumed with STS",
    )


def _accounts(args: argparse.Namespace, region: str) -> tuple[accounts.Account, ...]:
    if args.accounts is None:
        return ()
    try:
        return accounts.load(args.accounts, region)
    except accounts.AccountsError as error:
        raise UsageError(str(error)) from None


def build_rollback_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=f"{PROG} rollback",
        description="Put back every setting a run changed, as its before-images recorded it. "
        "A setting someone changed since the run is refused, unless --force.",
    )
    add = parser.add_argument
    add("--run-id", required=True, metavar="ID", help="the run to undo (see `runs`)")
    add("--dry-run", action="store_true", help="show what would be put back; change nothing")
    add("--force", action="store_true", help="also put back what was changed since the run")
    _accounts_option(parser)
    _common(parser)
    return parser


def build_apply_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=f"{PROG} apply",
        description="Apply a reviewed plan file (written by --dry-run --plan-out) exactly: "
        "each change whose setting still holds the value the plan saw; a resource changed "
        "since the plan is refused; nothing the plan did not contain is added.",
    )
    add = parser.add_argument
    add("plan", type=Path, metavar="PLAN", help="the plan file")
    add("--dry-run", action="store_true", help="show what it would apply; change nothing")
    add(
        "--expect-sha256",
        metavar="HEX",
        help="apply only a plan whose sha256 is HEX (the digest its review showed): a CI job "
        "pins what was approved",
    )
    _accounts_option(parser)
    _common(parser)
    return parser


def build_savings_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=f"{PROG} savings",
        description="What a past run really saved, beside what it estimated: CloudWatch "
        "usage before the run vs since it, the same length each, per invocation, scaled to "
        "a month of today's traffic.",
    )
    add = parser.add_argument
    add("--run-id", required=True, metavar="ID", help="the run to measure (see `runs`)")
    add("--days", type=int, default=14, metavar="N", help="longest window each side (14)")
    _common(parser)
    return parser


def build_report_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=f"{PROG} report",
        description="merge: join the JSON reports of a run's shards (--shard I/N) into the "
        "report one run over every environment would have written. No AWS call is made.",
    )
    add = parser.add_argument
    add("action", choices=("merge",))
    add("reports", nargs="+", type=Path, metavar="REPORT", help="every shard's JSON report")
    add("--report-file", type=Path, metavar="F", help="also write the merged report to F")
    return parser


def _report_config(args: argparse.Namespace, environ: Mapping[str, str]) -> RunConfig:
    return RunConfig(
        suffixes=(),
        region=environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        command="merge",
        merge=tuple(args.reports),
        output="json",
        report_file=_writable(args.report_file, "--report-file"),
        log_format="json",
        log_level="warning",
        progress=False,
    )


def build_runs_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=f"{PROG} runs", description="The recorded runs, newest first.")
    _reporting(parser)
    return parser


def build_iam_policy_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=f"{PROG} iam-policy",
        description="Print the least-privilege IAM policy the optimizer itself needs, from "
        "what the core and each step declare. No AWS call is made.",
    )
    add = parser.add_argument
    add(
        "--for",
        dest="purpose",
        choices=iam_policy.PURPOSES,
        default="apply",
        help="plan: --dry-run; apply: a run (default); rollback: rollback --run-id",
    )
    add(
        "--suffix",
        action="append",
        default=[],
        metavar="S",
        help="scope to these environments (repeatable, or comma-separated); "
        "default: every environment of the naming pattern",
    )
    add(
        "--all",
        dest="find_all",
        action="store_true",
        help="also what --all needs: lambda:ListFunctions (AWS grants it only on *)",
    )
    add("--account", metavar="ID", help="12-digit account id (default: any account, *)")
    add(
        "--accounts",
        type=Path,
        metavar="FILE",
        help="instead: the policy of the principal a --accounts run starts as (assume "
        "exactly FILE's roles; each role needs this command's policy with --account ID)",
    )
    add("--region", help="AWS region, or * (default: AWS_REGION, else us-east-1)")
    add("--partition", choices=("aws", "aws-cn", "aws-us-gov"), default="aws")
    add(
        "--function-base",
        action="append",
        default=[],
        metavar="BASE",
        help="function name before the suffix (repeatable; default lambda-function)",
    )
    add("--only", action="append", default=[], metavar="STEP[,STEP]")
    add("--skip", action="append", default=[], metavar="STEP[,STEP]")
    add("--state-bucket", metavar="s3://BUCKET[/PREFIX]", help="also the run records' bucket")
    add("--prices", choices=PRICE_SOURCES, default="table", help="live: also the Price List API")
    return parser


def iam_policy_document(
    argv: Sequence[str], environ: Mapping[str, str]
) -> iam_policy.PolicyDocument:
    """The policy document `iam-policy` prints; UsageError for bad input."""
    args = build_iam_policy_parser().parse_args(list(argv))
    try:
        suffixes = parse_suffixes(args.suffix)
        bases = tuple(validate_function_base(b) for b in args.function_base) or ("lambda-function",)
    except InvalidNameError as error:
        raise UsageError(str(error)) from None
    if args.find_all and suffixes:
        raise UsageError("--all finds the environments: leave out --suffix")
    account = args.account or "*"
    if account != "*" and not _ACCOUNT_RE.fullmatch(account):
        raise UsageError(f"--account {account!r} is not a 12-digit account id")
    region = args.region or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    region = region or "us-east-1"
    if region != "*" and not REGION_RE.fullmatch(region):
        raise UsageError(f"region {region!r} is not an AWS region name")
    try:
        steps = REGISTRY.select(_step_names(args.only), _step_names(args.skip))
    except SelectionError as error:
        raise UsageError(str(error)) from None
    bucket, prefix = _state_bucket(args)
    if args.accounts is not None:
        return _caller_policy(args, region, bucket, prefix)
    return iam_policy.policy(
        steps,
        args.purpose,
        account=account,
        region=region,
        suffixes=suffixes,
        function_bases=bases,
        partition=args.partition,
        state_bucket=bucket,
        state_prefix=prefix,
        live_prices=args.prices == "live",
        find_all=args.find_all,
    )


def _caller_policy(
    args: argparse.Namespace, region: str, bucket: str | None, prefix: str
) -> iam_policy.PolicyDocument:
    """`iam-policy --accounts`: what the principal an organisation's run starts as needs."""
    scoped = [option for option, given in (
        ("--suffix", args.suffix), ("--all", args.find_all), ("--account", args.account),
        ("--only", args.only), ("--skip", args.skip), ("--for", args.purpose != "apply"),
        ("--function-base", args.function_base),
    ) if given]  # fmt: skip
    if scoped:
        raise UsageError(f"{scoped[0]} scopes a role's own policy (iam-policy --account ID); "
                         "with --accounts the policy is the caller's: leave it out")  # fmt: skip
    organisation = _accounts(args, region if region != "*" else "us-east-1")
    roleless = next((account for account in organisation if account.role is None), None)
    if roleless is not None:
        raise UsageError(
            f"account {roleless.name} has no role: the run acts in it with its own credentials, "
            f"whose policy is `iam-policy --account {roleless.account_id}`"
        )
    return iam_policy.caller_policy(
        sorted({account.role for account in organisation if account.role}),
        partition=args.partition,
        state_bucket=bucket,
        state_prefix=prefix,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Bring Lambda environments from baseline to optimised settings. "
        f"Other commands: {', '.join(COMMANDS)} (see `{PROG} COMMAND --help`).",
    )
    _common(parser)
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
    _accounts_option(parser)
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
        "--plan-out",
        type=Path,
        metavar="F",
        help="with --dry-run: also write the plan to F, for review and `apply F`",
    )
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
        type=_finite,
        metavar="GB",
        help="Logs Insights budget of a run (50); beyond it, metrics-only evidence",
    )
    add(
        "--bake",
        metavar="DURATION",
        help="after the run, watch each changed function for DURATION (e.g. 30m, 2h) against "
        "its own evidence; roll back at once any that gets worse (errors, throttles, "
        "out-of-memory, timeouts, its new alarms)",
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
        default="aws",
        help="with --sandbox: traffic shaping (aws: AWS's quotas and delays)",
    )
    add("--functions-per-env", type=int, default=1, metavar="N", help="with --seed")
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
    return parser  # fmt: skip


def parse_config(argv: Sequence[str], environ: Mapping[str, str]) -> RunConfig:
    """Validate everything the run needs; raise UsageError with one clear sentence."""
    if argv and argv[0] == "runs":
        args = build_runs_parser().parse_args(list(argv[1:]))
        bucket, prefix = _state_bucket(args)
        _state_dir(args)
        return RunConfig(
            suffixes=(),
            region=environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "us-east-1",
            command="runs",
            output=args.output,
            state_dir=args.state_dir,
            state_bucket=bucket,
            state_prefix=prefix,
            endpoint_url=environ.get("AWS_ENDPOINT_URL") or None,
            profile=environ.get("AWS_PROFILE") or None,
            log_format="json",
            log_level="warning",
        )
    if argv and argv[0] == "rollback":
        return _rollback_config(build_rollback_parser().parse_args(list(argv[1:])), environ)
    if argv and argv[0] == "savings":
        return _savings_config(build_savings_parser().parse_args(list(argv[1:])), environ)
    if argv and argv[0] == "apply":
        return _apply_config(build_apply_parser().parse_args(list(argv[1:])), environ)
    if argv and argv[0] == "report":
        return _report_config(build_report_parser().parse_args(list(argv[1:])), environ)
    if argv and argv[0] == "serve":
        return _serve_config(build_serve_parser().parse_args(list(argv[1:])), environ)
    return _run_config(build_parser().parse_args(list(argv)), environ)


def _run_config(args: argparse.Namespace, environ: Mapping[str, str]) -> RunConfig:
    """A run's configuration from the run's (or the service's) arguments."""
    try:
        seed = parse_suffixes(args.seed)
        given = [*args.suffix, "" if args.find_all else environ.get("ENVIRONMENT_SUFFIX", "")]
        suffixes = parse_suffixes(given) or (seed if args.sandbox and not args.find_all else ())
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
    if args.plan_out is not None and not args.dry_run:
        raise UsageError("--plan-out needs --dry-run: a plan file is reviewed, then applied")
    bake = _bake(args.bake, args.dry_run)
    if bake is not None and args.time_scale != 1.0:
        raise UsageError("--bake windows metrics by UTC time: it cannot go with --time-scale")
    if (args.seed or args.demo or args.profile_mix) and not args.sandbox:
        raise UsageError("--seed, --profile-mix and --demo need --sandbox")
    try:
        profile_mix = check_mix(args.profile_mix)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if args.functions_per_env < 1:
        raise UsageError("--functions-per-env must be at least 1")
    region, endpoint = _aws_options(args, environ)
    if args.sandbox and endpoint:
        raise UsageError("--sandbox and AWS_ENDPOINT_URL are exclusive: pick one AWS")
    if args.accounts is not None and args.sandbox:
        raise UsageError("--accounts runs in the accounts it lists: it cannot go with --sandbox")
    organisation = _accounts(args, region)

    try:
        targets = load_targets(args.targets) if args.targets else Targets()
    except TargetsError as error:
        raise UsageError(str(error)) from None
    targets = _with_guardrail_flags(targets, args)
    only, skip = _step_names(args.only), _step_names(args.skip)
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
        **_common_config(args, region, endpoint, environ),
        sandbox=SandboxRequest(seed, args.sandbox_profile, args.functions_per_env, profile_mix)
        if args.sandbox
        else None,
        demo=args.demo,
        only=only,
        skip=skip,
        plan_out=_writable(args.plan_out, "--plan-out"),
        bake=bake,
        prices=args.prices,
        free_tier=args.free_tier,
        accounts=organisation,
    )


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
    duration = _duration_s(value)
    if duration is None:
        raise UsageError(f"--bake {value!r} is not a duration (e.g. 30m, 2h, 1h30m)")
    low, high = BAKE_LIMITS_S
    if not low <= duration <= high:
        raise UsageError(f"--bake {value} must be between 1m and 24h")
    # Lambda's metrics are per minute: poll every whole minute up to five, four times at least.
    poll = min(300, max(60, duration // 4 // 60 * 60))
    return BakeSettings(duration_s=float(duration), poll_s=float(poll))


def build_serve_parser() -> argparse.ArgumentParser:
    """The run's options, and the service's own."""
    parser = build_parser()
    parser.prog = f"{PROG} serve"
    parser.description = (
        "Run as a service: reconcile every --interval (jittered), take run requests over "
        "HTTP (POST /runs), expose /healthz, /readyz and /metrics. SIGTERM ends it: the "
        "cycle under way stops starting writes, writes its report, gives its leases back."
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    add("--port", type=int, default=8080, help="port to listen on (8080)")
    add("--interval", default="15m", metavar="D", help="between cycles: 30s, 15m, 1h (15m)")
    add(
        "--max-changes-per-cycle",
        type=int,
        metavar="N",
        help="apply at most N changes a cycle (whole environments, in order; the rest wait)",
    )
    add(
        "--token-file",
        type=Path,
        metavar="F",
        help="the API's bearer token (else LAMBDA_OPTIMIZER_API_TOKEN); required to listen "
        "beyond 127.0.0.1",
    )
    return parser


def _serve_config(args: argparse.Namespace, environ: Mapping[str, str]) -> RunConfig:
    interval = _duration_s(args.interval)
    if interval is None or not 1 <= interval <= 24 * 3600:
        raise UsageError(f"--interval {args.interval!r} is not a duration from 1s to 24h "
                         "(e.g. 30s, 15m, 1h)")  # fmt: skip
    if not 0 < args.port < 65536:
        raise UsageError(f"--port {args.port} is not a TCP port")
    if args.max_changes_per_cycle is not None and args.max_changes_per_cycle < 1:
        raise UsageError("--max-changes-per-cycle must be at least 1")
    if args.max_changes_per_cycle is not None and args.accounts is not None:
        raise UsageError("--max-changes-per-cycle counts one account and region's changes: "
                         "leave out --accounts")  # fmt: skip
    if args.plan_out is not None or args.bake is not None or args.sandbox:
        raise UsageError("serve runs cycles: --plan-out, --bake and --sandbox are a run's")
    token = _token(args.token_file, environ)
    if token is None and args.host not in ("127.0.0.1", "localhost", "::1"):
        raise UsageError(f"--host {args.host} without a token would serve anyone who can "
                         "reach it: set LAMBDA_OPTIMIZER_API_TOKEN or --token-file")  # fmt: skip
    config = _run_config(args, environ)
    return dataclasses.replace(
        config,
        command="serve",
        progress=False,
        serve=ServeSettings(
            host=args.host,
            port=args.port,
            interval_s=float(interval),
            max_changes=args.max_changes_per_cycle,
            token=token,
        ),
    )


def _token(path: Path | None, environ: Mapping[str, str]) -> str | None:
    """The API's bearer token: the file's first line, else the environment's; None: none
    given. At least 16 printable ASCII characters without spaces, whichever it comes from:
    a blank one is refused, never taken as no token."""
    if path is None:
        if "LAMBDA_OPTIMIZER_API_TOKEN" not in environ:
            return None
        # Set but blank is a mistake (an empty secret mounted), not "no token": refused.
        token, where = environ["LAMBDA_OPTIMIZER_API_TOKEN"].strip(), "LAMBDA_OPTIMIZER_API_TOKEN"
    else:
        where = f"--token-file {path}"
        try:
            if not path.is_file():
                raise UsageError(f"{where} is not a file")
            if path.stat().st_size > _TOKEN_FILE_BYTES:
                raise UsageError(f"{where} is larger than {_TOKEN_FILE_BYTES} bytes: not a token")
            lines = path.read_text(encoding="ascii").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise UsageError(
                f"{where}: {getattr(error, 'strerror', None) or 'not ASCII text'}"
            ) from None
        token = lines[0].strip() if lines else ""
    if not (_TOKEN_RE.fullmatch(token)):
        raise UsageError(
            f"{where}: the token must be at least 16 printable ASCII characters, no spaces"
        )
    return token


def _duration_s(text: str) -> int | None:
    """`30s`, `15m`, `1h30m` -> seconds; None if it is not one."""
    found = _DURATION_RE.fullmatch(text)
    if found is None or not any(found.groups()):
        return None
    hours, minutes, seconds = (int(part or 0) for part in found.groups())
    return hours * 3600 + minutes * 60 + seconds


def _rollback_config(args: argparse.Namespace, environ: Mapping[str, str]) -> RunConfig:
    _known_run(args)
    region, endpoint = _aws_options(args, environ)
    return RunConfig(
        suffixes=(),
        command="rollback",
        run_id=args.run_id,
        force=args.force,
        dry_run=args.dry_run,
        accounts=_accounts(args, region),
        **_common_config(args, region, endpoint, environ),
    )


def _known_run(args: argparse.Namespace) -> None:
    """`--run-id` names a run, and (without a state bucket) one the state dir holds."""
    _state_dir(args)
    if not _RUN_ID_RE.fullmatch(args.run_id):
        raise UsageError(f"run id {args.run_id!r} is not one (e.g. 20261127T093018Z-90cad0)")
    if not args.state_bucket and not (args.state_dir / "runs" / args.run_id).is_dir():
        raise UsageError(f"no run {args.run_id} in {args.state_dir} (see `{PROG} runs`)")


def _savings_config(args: argparse.Namespace, environ: Mapping[str, str]) -> RunConfig:
    if not 1 <= args.days <= 455:  # CloudWatch keeps hourly data 455 days
        raise UsageError("--days must be between 1 and 455")
    _known_run(args)
    region, endpoint = _aws_options(args, environ)
    return RunConfig(
        suffixes=(),
        command="savings",
        run_id=args.run_id,
        days=args.days,
        **_common_config(args, region, endpoint, environ),
    )


def _apply_config(args: argparse.Namespace, environ: Mapping[str, str]) -> RunConfig:
    """A plan file is checked whole before any AWS call (`plan_file.load`: its digest, what
    --expect-sha256 pins, every change against its step); the run applies only a file that
    still has the digest checked here."""
    try:
        expect = None if args.expect_sha256 is None else plan_file.check_sha256(args.expect_sha256)
        document = plan_file.load(args.plan, expect)
    except (plan_file.PlanFileError, ValueError) as error:
        raise UsageError(str(error)) from None
    digest = str(document[plan_file.DIGEST])
    if plan_file.is_organisation(document):
        region, endpoint = _aws_options(args, environ)
        if args.accounts is None:
            raise UsageError(f"{args.plan} is an organisation's plan: give --accounts FILE")
        return RunConfig(
            suffixes=(),
            command="apply",
            plan_file=args.plan,
            plan_sha256=digest,
            dry_run=args.dry_run,
            accounts=_accounts(args, region),
            **_common_config(args, region, endpoint, environ),
        )
    if args.accounts is not None:
        raise UsageError(f"{args.plan} is one account and region's plan: leave out --accounts")
    if args.region and args.region != document["region"]:
        raise UsageError(f"the plan is for {document['region']}, not {args.region}")
    _, endpoint = _aws_options(args, environ)
    return RunConfig(
        suffixes=tuple(document["environments"]),
        command="apply",
        plan_file=args.plan,
        plan_sha256=digest,
        dry_run=args.dry_run,
        **_common_config(args, document["region"], endpoint, environ),
    )


def _aws_options(args: argparse.Namespace, environ: Mapping[str, str]) -> tuple[str, str | None]:
    """The region and endpoint, validated; and the options every AWS command shares."""
    if args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    if not args.time_scale > 0:
        raise UsageError("--time-scale must be positive")
    region = args.region or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    region = region or "us-east-1"
    if not REGION_RE.fullmatch(region):
        raise UsageError(f"region {region!r} is not an AWS region name")
    endpoint = environ.get("AWS_ENDPOINT_URL") or None
    if endpoint and not _ENDPOINT_RE.fullmatch(endpoint):
        raise UsageError(f"AWS_ENDPOINT_URL {endpoint!r} is not an http(s) URL")
    return region, endpoint


def _state_bucket(args: argparse.Namespace) -> tuple[str | None, str]:
    if not args.state_bucket:
        return None, ""
    found = _STATE_BUCKET_RE.fullmatch(args.state_bucket)
    if found is None:
        raise UsageError(f"--state-bucket {args.state_bucket!r} is not s3://BUCKET[/PREFIX]")
    return found.group(1), (found.group(2) or "").strip("/")


def _common_config(
    args: argparse.Namespace, region: str, endpoint: str | None, environ: Mapping[str, str]
) -> dict[str, Any]:
    log_format: LogFormat = args.log_format or ("console" if sys.stderr.isatty() else "json")
    bucket, prefix = _state_bucket(args)
    _state_dir(args)
    return {
        "state_bucket": bucket,
        "state_prefix": prefix,
        "region": region,
        "endpoint_url": endpoint,
        "profile": environ.get("AWS_PROFILE") or None,
        "concurrency": args.concurrency,
        "output": args.output,
        "details": args.details,
        "report_file": _writable(args.report_file, "--report-file"),
        "log_format": log_format,
        "log_level": args.log_level,
        "log_file": _writable(args.log_file, "--log-file"),
        "state_dir": args.state_dir,
        "time_scale": args.time_scale,
        "quotas": _quotas(args.quota),
        "progress": not args.no_progress,
    }


def _quotas(texts: list[str]) -> tuple[tuple[str, float], ...]:
    try:
        return tuple(dict(quotas.parse_override(text) for text in texts).items())
    except ValueError as error:
        raise UsageError(f"--quota: {error}") from None


def _state_dir(args: argparse.Namespace) -> None:
    """`--state-dir` is a directory, or one can be made there (unless records go to the
    state bucket): else the run would fail at its first record, after AWS calls."""
    path: Path = args.state_dir
    if args.state_bucket:
        return
    try:
        if path.exists():
            if not path.is_dir():
                raise UsageError(f"--state-dir {path} is a file, not a directory")
            return
        parent = next(p for p in (path.parent, *path.parent.parents) if p.exists())
    except OSError as error:  # e.g. a directory we may not even look into
        raise UsageError(f"--state-dir {path}: {error.strerror or error}") from None
    if not parent.is_dir():
        raise UsageError(f"--state-dir {path}: {parent} is a file, not a directory")


def _writable(path: Path | None, option: str) -> Path | None:
    """An output file the run can write, checked before any AWS call (a converged run must
    not end in exit 1 because its report had nowhere to go)."""
    if path is None:
        return None
    try:
        if path.exists():
            if path.is_dir():
                raise UsageError(f"{option} {path} is a directory, not a file")
            if not os.access(path, os.W_OK):
                raise UsageError(f"{option} {path} is not writable")
            return path
        parent = next(p for p in (path.parent, *path.parent.parents) if p.exists())
    except OSError as error:  # e.g. a directory we may not even look into
        raise UsageError(f"{option} {path}: {error.strerror or error}") from None
    if not parent.is_dir():
        raise UsageError(f"{option} {path}: {parent} is a file, not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: {parent} is not writable")
    return path


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


def _step_names(values: Sequence[str]) -> tuple[str, ...]:
    """`--only a,b --only c` -> (a, b, c), repeats dropped."""
    return tuple(dict.fromkeys(n.strip() for v in values for n in v.split(",") if n.strip()))


def main(argv: Sequence[str] | None = None) -> int:
    """The command line. SIGINT and SIGTERM are ours while it runs (whatever the process
    inherited: SIGINT ignored, say), and the caller's again when it returns."""
    with signals.kept():
        signals.install()
        try:
            return _main(sys.argv[1:] if argv is None else argv)
        except signals.Stopped as stopped:
            print(f"{PROG}: interrupted by {stopped}", file=sys.stderr)
            return stopped.exit_code
        except KeyboardInterrupt:
            print(f"{PROG}: interrupted by SIGINT", file=sys.stderr)
            return EXIT_INTERRUPTED


def _main(argv: Sequence[str]) -> int:
    try:
        if argv and argv[0] == "iam-policy":
            document = iam_policy_document(argv[1:], os.environ)
            print(iam_policy.render(document))
            if iam_policy.size(document) > iam_policy.MANAGED_POLICY_MAX_CHARS:
                print(
                    f"{PROG}: note: over IAM's {iam_policy.MANAGED_POLICY_MAX_CHARS}-character "
                    "limit of a managed policy: split the suffixes, or leave --suffix out "
                    "for the naming pattern",
                    file=sys.stderr,
                )
            return EXIT_OK
        config = parse_config(argv, os.environ)
    except UsageError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    # Only now: bad input never loads the AWS SDK, the engine or the report (an import contract).
    from optimizer_async.runs.runner import run

    try:
        return run(config)
    except UsageError as error:  # found by the run before any AWS call (a run left nothing)
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
