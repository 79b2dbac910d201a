"""`runs`: the recorded runs, newest first - what each is now (interrupted, rolled back)
and how many environments it can roll back."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from optimizer_async.commands.base import Command
from optimizer_async.commands.common import (
    PROG,
    Parser,
    add_record_options,
    check_region,
    default_region,
    endpoint,
    record_fields,
)
from optimizer_async.runs.configs import RunsConfig

if TYPE_CHECKING:
    from optimizer_async.aws.gateway import AwsSettings


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog=f"{PROG} runs", description="The recorded runs, newest first.")
    add_record_options(parser)
    return parser


def runs_config(args: argparse.Namespace, environ: Mapping[str, str]) -> RunsConfig:
    """Only a state bucket's records need AWS: its region and endpoint are checked then,
    and left alone for a local state directory."""
    fields = record_fields(args, writes=False)
    in_bucket = fields["state_bucket"] is not None
    region = default_region(environ)
    return RunsConfig(
        **fields,
        region=check_region(region) if in_bucket else region,
        endpoint_url=endpoint(environ) if in_bucket else None,
        profile=environ.get("AWS_PROFILE") or None,
        log_format="json",
        log_level="warning",
    )


def execute(config: RunsConfig) -> int:
    from optimizer_async.aws.gateway import Aws
    from optimizer_async.reporting.report import render_runs
    from optimizer_async.runs import process
    from optimizer_async.runs.listing import list_runs
    from optimizer_async.runs.store import open_store

    async def listed(settings: AwsSettings) -> tuple[list[dict[str, Any]], str]:
        async with Aws.open(settings) as aws:
            store = await open_store(config, aws)
            return await list_runs(store), store.location

    def command(settings: AwsSettings) -> int:
        runs, location = process.in_event_loop(listed, settings)
        process.emit_text(lambda output: render_runs(runs, output, location), config)
        return 0

    return process.execute(config, command)


COMMAND: Final = Command[RunsConfig](
    name="runs",
    parser=build_parser,
    config=runs_config,
    execute=execute,
)
