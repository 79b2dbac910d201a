"""`report merge`: the JSON reports of a run's shards joined into the report one run over
every environment would have written (`organisations/merge.py`). No AWS call."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from optimizer_async.commands.base import Command
from optimizer_async.commands.common import PROG, Parser, writable
from optimizer_async.runs.configs import MergeConfig, UsageError


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=f"{PROG} report",
        description="merge: join the JSON reports of a run's shards (--shard I/N) into the "
        "report one run over every environment would have written. No AWS call is made.",
    )
    add = parser.add_argument
    add("action", choices=("merge",))
    add("reports", nargs="+", type=Path, metavar="REPORT", help="every shard's JSON report")
    add("--report-file", type=Path, metavar="F", help="also write the merged report to F")
    return parser


def merge_config(args: argparse.Namespace, environ: Mapping[str, str]) -> MergeConfig:
    return MergeConfig(
        reports=tuple(args.reports), report_file=writable(args.report_file, "--report-file")
    )


def execute(config: MergeConfig) -> int:
    """The merged report; bad reports are bad input (exit 2)."""
    from optimizer_async.execution.results import FAILING
    from optimizer_async.jsonio import json_text
    from optimizer_async.organisations import merge
    from optimizer_async.records.state import write_atomically
    from optimizer_async.runs.store import new_run_id

    try:
        merged = merge.merge(merge.load(config.reports), new_run_id())
    except merge.MergeError as error:
        raise UsageError(str(error)) from None
    text = "".join(json_text.chunks(merged)) + "\n"
    sys.stdout.write(text)  # first: a file that cannot be written loses nothing
    if config.report_file is not None:
        try:
            write_atomically(config.report_file, text)
        except OSError as error:
            print(f"lambda-optimizer: cannot write {config.report_file}: {error.strerror}",
                  file=sys.stderr)  # fmt: skip
            return 1
    failed = merged["status"] in FAILING or merged["status"] == "stopped"  # exit 1, not 143:
    return 1 if failed or (merged.get("bake") or {}).get("error") else 0  # no signal to name


COMMAND: Final = Command[MergeConfig](
    name="report",
    parser=build_parser,
    config=merge_config,
    execute=execute,
)
