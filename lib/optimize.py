#!/usr/bin/env python3
"""Entry point kept for users' scripts: `python lib/optimize.py [options]`.

Identical to `lambda-optimizer` and `python -m optimizer_async`; see `--help`.
"""

import sys
from pathlib import Path

# Let the script run from a checkout without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from optimizer_async.cli import main

if __name__ == "__main__":
    sys.exit(main())
