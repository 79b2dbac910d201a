"""What the commands share: a parser whose error is one line, the options every AWS command
takes, and their validation - all before any AWS call, with argument handling only."""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NoReturn

from optimizer_async.aws import quotas
from optimizer_async.definitions.naming import REGION_RE
from optimizer_async.fleet import accounts
from optimizer_async.reporting import logs
from optimizer_async.reporting.formats import DETAILS, OUTPUT_FORMATS
from optimizer_async.reporting.logs import LogFormat
from optimizer_async.runs.configs import ApplyConfig, RollbackConfig, RunConfig, UsageError

if TYPE_CHECKING:
    from optimizer_async.aws.gateway import AwsSettings

PROG: Final = "lambda-optimizer"
RUN_ID_RE: Final = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{6}")
_ENDPOINT_RE: Final = re.compile(r"https?://[^\s/]+(/\S*)?")
_STATE_BUCKET_RE: Final = re.compile(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(/[\w./-]*)?")
_DURATION_RE: Final = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


DEFAULT_STATE_DIR: Final = Path(".lambda-optimizer")


class Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (no usage dump), raised rather than printed, and
    an option is taken only as spelled: no abbreviation (`--account`, an iam-policy option,
    would otherwise be read as a run's `--accounts`)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_abbrev=False, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def finite(text: str) -> float:
    """A float option: a finite number (argparse's `float` takes nan and inf)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text}")
    return value


def add_aws_options(parser: argparse.ArgumentParser, details: bool = True) -> None:
    """Options every command that talks to AWS takes (`details`: one whose report lists
    environments)."""
    add = parser.add_argument
    add(
        "--region", help="AWS region (default: AWS_REGION, else AWS_DEFAULT_REGION, else us-east-1)"
    )
    add("--concurrency", type=int, default=32, metavar="N", help="functions in flight (32)")
    add_record_options(parser)
    if details:
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
        type=finite,
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


def add_record_options(parser: argparse.ArgumentParser) -> None:
    """Where the report goes, and where runs keep their records."""
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
        metavar="DIR",
        help="where runs keep their before-images and reports (./.lambda-optimizer)",
    )
    add(
        "--state-bucket",
        metavar="s3://BUCKET[/PREFIX]",
        help="keep run records in S3 instead (versioned, encrypted, not public): for CI "
        "runners whose disks do not outlive them",
    )


def add_accounts_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--accounts",
        type=Path,
        metavar="FILE",
        help="every account and region FILE lists (c7n-org's accounts.yaml: account_id, "
        "name, role, external_id, regions, match, exclude), side by side, each role "
        "assumed with STS",
    )


def accounts_of(args: argparse.Namespace, region: str) -> tuple[accounts.Account, ...]:
    """`--accounts FILE`, loaded and checked whole; none if not given."""
    if args.accounts is None:
        return ()
    try:
        return accounts.load(args.accounts, region)
    except accounts.AccountsError as error:
        raise UsageError(str(error)) from None


def default_region(environ: Mapping[str, str]) -> str:
    return environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def check_region(region: str) -> str:
    if not REGION_RE.fullmatch(region):
        raise UsageError(f"region {region!r} is not an AWS region name")
    return region


def aws_options(args: argparse.Namespace, environ: Mapping[str, str]) -> tuple[str, str | None]:
    """The region and endpoint, validated; and the options every AWS command shares."""
    if args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    if not args.time_scale > 0:
        raise UsageError("--time-scale must be positive")
    region, url = check_region(args.region or default_region(environ)), endpoint(environ)
    if args.time_scale != 1.0 and url is None and not getattr(args, "sandbox", False):
        raise UsageError("--time-scale runs a sandbox's clock: it needs --sandbox or an endpoint")
    return region, url


def endpoint(environ: Mapping[str, str]) -> str | None:
    """`AWS_ENDPOINT_URL`, an http(s) URL, or None: AWS itself."""
    url = environ.get("AWS_ENDPOINT_URL") or None
    if url and not _ENDPOINT_RE.fullmatch(url):
        raise UsageError(f"AWS_ENDPOINT_URL {url!r} is not an http(s) URL")
    return url


def state_bucket(args: argparse.Namespace) -> tuple[str | None, str]:
    """`--state-bucket s3://BUCKET[/PREFIX]` -> (bucket, prefix); (None, "") if not given."""
    if not args.state_bucket:
        return None, ""
    found = _STATE_BUCKET_RE.fullmatch(args.state_bucket)
    if found is None:
        raise UsageError(f"--state-bucket {args.state_bucket!r} is not s3://BUCKET[/PREFIX]")
    return found.group(1), (found.group(2) or "").strip("/")


def record_fields(args: argparse.Namespace, writes: bool = True) -> dict[str, Any]:
    """The report and record options, checked: the config fields they give. `writes`: the
    command writes records (`runs` and `savings` only read them)."""
    bucket, prefix = state_bucket(args)
    check_state_dir(args, writes)
    return {
        "output": args.output,
        "report_file": writable(args.report_file, "--report-file"),
        "state_dir": state_dir(args),
        "state_bucket": bucket,
        "state_prefix": prefix,
    }


def common_fields(
    args: argparse.Namespace,
    region: str,
    endpoint_url: str | None,
    environ: Mapping[str, str],
    writes: bool = True,
) -> dict[str, Any]:
    """Every AWS command's options, checked: the `CommonConfig` fields they give (`writes`:
    as `record_fields`)."""
    log_format: LogFormat = args.log_format or ("console" if sys.stderr.isatty() else "json")
    distinct_files({
        "the plan file": getattr(args, "plan", None),
        "--plan-out": getattr(args, "plan_out", None),
        "--report-file": args.report_file,
        "--log-file": args.log_file,
    })  # fmt: skip
    return {
        **record_fields(args, writes),
        "region": region,
        "endpoint_url": endpoint_url,
        "profile": environ.get("AWS_PROFILE") or None,
        "concurrency": args.concurrency,
        "details": getattr(args, "details", None),
        "log_format": log_format,
        "log_level": args.log_level,
        "log_file": writable(args.log_file, "--log-file"),
        "time_scale": args.time_scale,
        "quotas": _quotas(args.quota),
        "progress": not args.no_progress,
    }


def _quotas(texts: list[str]) -> tuple[tuple[str, float], ...]:
    try:
        return tuple(dict(quotas.parse_override(text) for text in texts).items())
    except ValueError as error:
        raise UsageError(f"--quota: {error}") from None


def state_dir(args: argparse.Namespace) -> Path:
    """`--state-dir`, or its default (None in the namespace: given or not, for the check
    that it does not go with `--state-bucket`)."""
    given: Path | None = args.state_dir
    return given or DEFAULT_STATE_DIR


def check_state_dir(args: argparse.Namespace, writes: bool = True) -> None:
    """`--state-dir` is a directory, or one can be made there (unless records go to the
    state bucket), and one the command can write in if it writes records: else the run
    would fail at its first record, after AWS calls."""
    if args.state_bucket and args.state_dir is not None:
        raise UsageError("--state-dir and --state-bucket are exclusive: records go to one")
    path = state_dir(args)
    if args.state_bucket:
        return
    try:
        if path.exists():
            if not path.is_dir():
                raise UsageError(f"--state-dir {path} is a file, not a directory")
            if writes and not os.access(path, os.W_OK | os.X_OK):
                raise UsageError(f"--state-dir {path} is not writable")
            return
        parent = next(p for p in (path.parent, *path.parent.parents) if p.exists())
    except OSError as error:  # e.g. a directory we may not even look into
        raise UsageError(f"--state-dir {path}: {error.strerror or error}") from None
    if not parent.is_dir():
        raise UsageError(f"--state-dir {path}: {parent} is a file, not a directory")
    if writes and not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"--state-dir {path}: {parent} is not writable")


def distinct_files(named: Mapping[str, Path | None]) -> None:
    """No two of a command's files are one: a later write would silently replace the other
    (a report over the plan it was to apply, say)."""
    seen: dict[Path, str] = {}
    for option, path in named.items():
        if path is None:
            continue
        same = seen.setdefault(path.resolve(), option)
        if same != option:
            raise UsageError(f"{same} and {option} name the same file {path}: give each its own")


def known_run(args: argparse.Namespace, writes: bool) -> None:
    """`--run-id` names a run, and (without a state bucket) one the state dir holds
    (`writes`: as `record_fields`)."""
    check_state_dir(args, writes)
    if not RUN_ID_RE.fullmatch(args.run_id):
        raise UsageError(f"run id {args.run_id!r} is not one (e.g. 20261127T093018Z-90cad0)")
    if not args.state_bucket and not (state_dir(args) / "runs" / args.run_id).is_dir():
        raise UsageError(f"no run {args.run_id} in {state_dir(args)} (see `{PROG} runs`)")


def writable(path: Path | None, option: str) -> Path | None:
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


def step_names(values: Sequence[str]) -> tuple[str, ...]:
    """`--only a,b --only c` -> (a, b, c), repeats dropped."""
    return tuple(dict.fromkeys(n.strip() for v in values for n in v.split(",") if n.strip()))


def duration_s(text: str) -> int | None:
    """`30s`, `15m`, `1h30m` -> seconds; None if it is not one."""
    found = _DURATION_RE.fullmatch(text)
    if found is None or not any(found.groups()):
        return None
    hours, minutes, seconds = (int(part or 0) for part in found.groups())
    return hours * 3600 + minutes * 60 + seconds


def run_replay(config: RunConfig | ApplyConfig | RollbackConfig) -> int:
    """The command's run - a fresh plan, a plan file or before-images, as its config says -
    in its account and region or in every place of its --accounts file; its report; its
    exit code. Loads the engine: only once the input is valid."""
    from optimizer_async.organisations.organisation import run_anywhere
    from optimizer_async.runs import process
    from optimizer_async.runs.orchestration import Controls, Request
    from optimizer_async.runs.replays import replay_of

    def command(settings: AwsSettings) -> int:
        request, controls = Request(replay_of(config)), Controls(signals=True)
        report = process.in_event_loop(run_anywhere, request, settings, controls)
        return process.emit(report, config)

    return process.execute(config, command)
