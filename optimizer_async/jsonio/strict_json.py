"""JSON read strictly: a key given twice in one object is an error, never the last one winning.

RFC 8259 leaves duplicate names to the reader, and Python's reader keeps the last; for input
that decides what the optimizer does (a plan file, a request to the service, a report to
merge) a second `"dry_run": false` after `"dry_run": true` must not quietly win.
"""

from __future__ import annotations

import json
from typing import Any


class DuplicateKey(ValueError):
    """A JSON object names one key twice."""


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise DuplicateKey(f"key {key!r} is given twice")
        found[key] = value
    return found


def loads(text: str | bytes) -> Any:
    """`json.loads`, refusing a key given twice (DuplicateKey, a ValueError); other bad JSON
    raises json.JSONDecodeError as usual."""
    return json.loads(text, object_pairs_hook=_unique)
