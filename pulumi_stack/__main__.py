"""Pulumi entry point; the program lives in program.py so tests can import it."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_stack.program import main

main()
