"""Every command, by the word that names it on the command line (a run: none)."""

from __future__ import annotations

from typing import Any, Final

from optimizer_async.commands import (
    apply,
    iam_policy,
    report_merge,
    rollback,
    run,
    runs,
    savings,
    serve,
)
from optimizer_async.commands.base import Command

COMMANDS: Final[dict[str, Command[Any]]] = {
    command.name: command
    for command in (
        run.COMMAND,
        apply.COMMAND,
        rollback.COMMAND,
        runs.COMMAND,
        savings.COMMAND,
        report_merge.COMMAND,
        iam_policy.COMMAND,
        serve.COMMAND,
    )
}


def command_for(argv: list[str] | tuple[str, ...]) -> tuple[Command[Any], list[str]]:
    """The command the arguments name, and its own arguments (a run's: all of them)."""
    if argv and argv[0] in COMMANDS and argv[0]:
        return COMMANDS[argv[0]], list(argv[1:])
    return COMMANDS[""], list(argv)
