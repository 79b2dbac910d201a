"""DescribeLogGroups reports the storedBytes AWS would measure for a log group.

moto derives storedBytes from the events actually put, so a log group that holds years of
history on AWS shows a few bytes. The seeder records the profile's stored bytes through
`PUT /_sandbox/logs/stored-bytes`; this patch reports them, and moto's own count otherwise.
"""

from __future__ import annotations

from typing import Any

from moto.logs.models import LogGroup

from optimizer_async.sandbox import runtime
from optimizer_async.sandbox.patches._patching import wrap_method


def apply() -> None:
    @wrap_method(LogGroup, "to_describe_dict")
    def describe(original: Any, group: Any) -> dict[str, Any]:
        described: dict[str, Any] = original(group)
        key = (group.account_id, group.region, group.name)
        stored = runtime.current().stored_bytes.get(key)
        if stored is not None:
            described["storedBytes"] = stored
        return described
