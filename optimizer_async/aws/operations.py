"""Which AWS operations only read: shared by the optimizer's counts and the sandbox's."""

from __future__ import annotations

from typing import Final

_READ_PREFIXES: Final = ("Get", "List", "Describe", "Head", "Filter", "Lookup", "Query")
_READ_OPERATIONS: Final = frozenset(
    {"StartQuery", "StopQuery", "SelectObjectContent", "TestInvokeMethod", "Invoke"}
)


def is_write(operation: str) -> bool:
    """True for calls that may change state; unknown names count as writes (the safe side).
    Invoke counts as a read: it runs code but changes no configuration."""
    return not (operation.startswith(_READ_PREFIXES) or operation in _READ_OPERATIONS)
