"""A command: its name, its parser, how its arguments become its validated config, and how
it runs. Like a step (`steps/base.py`), each declares itself in one place and the registry
(`registry.py`) lists them.

`parse` uses argument handling only; `execute` loads the AWS SDK, the engine and the report
inside itself, so that bad input never loads them (an import contract, `pyproject.toml`)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

C = TypeVar("C")


@dataclass(frozen=True)
class Command(Generic[C]):
    name: str  # its first word on the command line ("" for a run: no word)
    parser: Callable[[], argparse.ArgumentParser]
    config: Callable[[argparse.Namespace, Mapping[str, str]], C]  # UsageError: bad input
    execute: Callable[[C], int]  # the exit code

    def parse(self, argv: Sequence[str], environ: Mapping[str, str]) -> C:
        """The command's config from its arguments (after its name); UsageError if bad."""
        return self.config(self.parser().parse_args(list(argv)), environ)
