"""`savings --run-id ID`: what a past run really saved, beside what it estimated."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from optimizer_async.commands.base import Command
from optimizer_async.commands.common import (
    PROG,
    Parser,
    add_aws_options,
    aws_options,
    common_fields,
    known_run,
)
from optimizer_async.runs.configs import SavingsConfig, UsageError

if TYPE_CHECKING:
    from optimizer_async.aws.gateway import AwsSettings

MAX_DAYS: Final = 455  # CloudWatch keeps hourly data 455 days


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=f"{PROG} savings",
        description="What a past run really saved, beside what it estimated: CloudWatch "
        "usage before the run vs since it, the same length each, per invocation, scaled to "
        "a month of today's traffic.",
    )
    add = parser.add_argument
    add("--run-id", required=True, metavar="ID", help="the run to measure (see `runs`)")
    add("--days", type=int, default=14, metavar="N", help="longest window each side (14)")
    add_aws_options(parser, details=False)
    return parser


def savings_config(args: argparse.Namespace, environ: Mapping[str, str]) -> SavingsConfig:
    if not 1 <= args.days <= MAX_DAYS:
        raise UsageError(f"--days must be between 1 and {MAX_DAYS}")
    known_run(args, writes=False)
    region, endpoint = aws_options(args, environ)
    return SavingsConfig(
        run_id=args.run_id,
        days=args.days,
        **common_fields(args, region, endpoint, environ, writes=False),
    )


def execute(config: SavingsConfig) -> int:
    from optimizer_async.reporting.report import render_savings
    from optimizer_async.runs import process
    from optimizer_async.runs.savings import savings_document

    def command(settings: AwsSettings) -> int:
        document = process.in_event_loop(savings_document, config, settings, None)
        process.emit_text(lambda output: render_savings(document, output), config)
        return 0

    return process.execute(config, command)


COMMAND: Final = Command[SavingsConfig](
    name="savings",
    parser=build_parser,
    config=savings_config,
    execute=execute,
)
