"""`apply PLAN`: a reviewed plan file's changes, exactly. The file is checked whole before
any AWS call (`records/plan_file.py`: its digest, what --expect-sha256 pins, every change
against its step); the run applies only a file that still has the digest checked here."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
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
    check_region,
    common_fields,
    run_replay,
)
from optimizer_async.records import plan_file
from optimizer_async.runs.configs import ApplyConfig, UsageError


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
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
    add_accounts_option(parser)
    add_aws_options(parser)
    return parser


def apply_config(args: argparse.Namespace, environ: Mapping[str, str]) -> ApplyConfig:
    try:
        expect = None if args.expect_sha256 is None else plan_file.check_sha256(args.expect_sha256)
        document = plan_file.load(args.plan, expect)
    except (plan_file.PlanFileError, ValueError) as error:
        raise UsageError(str(error)) from None
    digest = str(document[plan_file.DIGEST])
    region, endpoint = aws_options(args, environ)
    if plan_file.is_organisation(document):
        if args.accounts is None:
            raise UsageError(f"{args.plan} is an organisation's plan: give --accounts FILE")
        organisation = accounts_of(args, region)
    else:
        if args.accounts is not None:
            raise UsageError(f"{args.plan} is one account and region's plan: leave out --accounts")
        if args.region and args.region != document["region"]:
            raise UsageError(f"the plan is for {document['region']}, not {args.region}")
        region, organisation = check_region(str(document["region"])), ()
    return ApplyConfig(
        plan_file=args.plan,
        plan_sha256=digest,
        dry_run=args.dry_run,
        accounts=organisation,
        **common_fields(args, region, endpoint, environ),
    )


COMMAND: Final = Command[ApplyConfig](
    name="apply",
    parser=build_parser,
    config=apply_config,
    execute=run_replay,
)
