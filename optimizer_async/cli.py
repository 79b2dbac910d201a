"""The command line: argv and the environment -> a command's validated config -> its run ->
the exit code. The only module that reads argv or the process's environment.

Exit codes: 0 converged or nothing to do; 1 some function or environment failed (the
others still finished); 2 usage or validation error, before any AWS call; 130 or 143
interrupted by SIGINT or SIGTERM.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, Final

from optimizer_async.commands.common import PROG
from optimizer_async.commands.registry import COMMANDS, command_for
from optimizer_async.execution import signals
from optimizer_async.runs.configs import UsageError

EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130

__all__ = ["COMMANDS", "PROG", "UsageError", "main", "parse_config"]


def parse_config(argv: Sequence[str], environ: Mapping[str, str]) -> Any:
    """The config of the command `argv` names, validated; UsageError in one sentence."""
    command, arguments = command_for(tuple(argv))
    return command.parse(arguments, environ)


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
    command, arguments = command_for(tuple(argv))
    try:
        config = command.parse(arguments, os.environ)
        # Only now does the command load the AWS SDK, the engine, the report (its execute).
        return command.execute(config)
    except UsageError as error:  # bad input, or found by the run before any write
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
