"""`rollback --run-id ID`: put back, field by field, what a run changed."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
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
    known_run,
    run_replay,
)
from optimizer_async.runs.configs import RollbackConfig


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=f"{PROG} rollback",
        description="Put back every setting a run changed, as its before-images recorded it. "
        "A setting someone changed since the run is refused, unless --force.",
    )
    add = parser.add_argument
    add("--run-id", required=True, metavar="ID", help="the run to undo (see `runs`)")
    add("--dry-run", action="store_true", help="show what would be put back; change nothing")
    add("--force", action="store_true", help="also put back what was changed since the run")
    add_accounts_option(parser)
    add_aws_options(parser)
    return parser


def rollback_config(args: argparse.Namespace, environ: Mapping[str, str]) -> RollbackConfig:
    known_run(args, writes=True)
    region, endpoint = aws_options(args, environ)
    return RollbackConfig(
        run_id=args.run_id,
        force=args.force,
        dry_run=args.dry_run,
        accounts=accounts_of(args, region),
        **common_fields(args, region, endpoint, environ),
    )


COMMAND: Final = Command[RollbackConfig](
    name="rollback",
    parser=build_parser,
    config=rollback_config,
    execute=run_replay,
)
