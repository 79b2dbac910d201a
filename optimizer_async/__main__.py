"""`python -m optimizer_async`: the same program as `lambda-optimizer` and `lib/optimize.py`."""

import sys

from optimizer_async.cli import main

sys.exit(main())
