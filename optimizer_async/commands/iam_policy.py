"""`iam-policy`: the least-privilege policy the optimizer itself needs, from what the core
and each step declare (`permissions/iam_policy.py`). No AWS call."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from optimizer_async.commands.base import Command
from optimizer_async.commands.common import (
    PROG,
    Parser,
    accounts_of,
    check_region,
    default_region,
    state_bucket,
    step_names,
)
from optimizer_async.definitions.naming import (
    DEFAULT_FUNCTION_BASE,
    InvalidNameError,
    parse_suffixes,
    validate_function_base,
)
from optimizer_async.permissions import iam_policy
from optimizer_async.runs.configs import PRICE_SOURCES, UsageError
from optimizer_async.steps.registry import REGISTRY, SelectionError

_ACCOUNT_RE: Final = re.compile(r"\d{12}")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
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
    add(
        "--region",
        help="AWS region, or * (default: AWS_REGION, else AWS_DEFAULT_REGION, else us-east-1)",
    )
    add(
        "--partition",
        choices=("aws", "aws-cn", "aws-us-gov"),
        default="aws",
        help="the ARNs' partition (aws)",
    )
    add(
        "--function-base",
        action="append",
        default=[],
        metavar="BASE",
        help="function name before the suffix (repeatable; default lambda-function)",
    )
    add(
        "--only",
        action="append",
        default=[],
        metavar="STEP[,STEP]",
        help="only what these optimisations need (as a run's --only)",
    )
    add(
        "--skip",
        action="append",
        default=[],
        metavar="STEP[,STEP]",
        help="not what these optimisations need (as a run's --skip)",
    )
    add("--state-bucket", metavar="s3://BUCKET[/PREFIX]", help="also the run records' bucket")
    add("--prices", choices=PRICE_SOURCES, default="table", help="live: also the Price List API")
    return parser


def policy_document(
    args: argparse.Namespace, environ: Mapping[str, str]
) -> iam_policy.PolicyDocument:
    """The policy document `iam-policy` prints; UsageError for bad input."""
    try:
        suffixes = parse_suffixes(args.suffix)
        bases = tuple(validate_function_base(b) for b in args.function_base)
    except InvalidNameError as error:
        raise UsageError(str(error)) from None
    if args.find_all and suffixes:
        raise UsageError("--all finds the environments: leave out --suffix")
    account = args.account or "*"
    if account != "*" and not _ACCOUNT_RE.fullmatch(account):
        raise UsageError(f"--account {account!r} is not a 12-digit account id")
    region = args.region or default_region(environ)
    if region != "*":
        check_region(region)
    try:
        steps = REGISTRY.select(step_names(args.only), step_names(args.skip))
    except SelectionError as error:
        raise UsageError(str(error)) from None
    bucket, prefix = state_bucket(args)
    if args.accounts is not None:
        return _caller_policy(args, region, bucket, prefix)
    return iam_policy.policy(
        steps,
        args.purpose,
        account=account,
        region=region,
        suffixes=suffixes,
        function_bases=bases or (DEFAULT_FUNCTION_BASE,),
        partition=args.partition,
        state_bucket=bucket,
        state_prefix=prefix,
        live_prices=args.prices == "live",
        find_all=args.find_all,
    )


def document(argv: Sequence[str], environ: Mapping[str, str]) -> iam_policy.PolicyDocument:
    """The document for these arguments (those after `iam-policy`)."""
    return COMMAND.parse(argv, environ)


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
    organisation = accounts_of(args, region if region != "*" else "us-east-1")
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


def execute(policy: iam_policy.PolicyDocument) -> int:
    print(iam_policy.render(policy))
    if iam_policy.size(policy) > iam_policy.MANAGED_POLICY_MAX_CHARS:
        print(
            f"{PROG}: note: over IAM's {iam_policy.MANAGED_POLICY_MAX_CHARS}-character limit "
            "of a managed policy: split the suffixes, or leave --suffix out for the naming "
            "pattern",
            file=sys.stderr,
        )
    return 0


COMMAND: Final = Command[iam_policy.PolicyDocument](
    name="iam-policy",
    parser=build_parser,
    config=policy_document,
    execute=execute,
)
