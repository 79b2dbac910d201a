"""DescribeLogGroups(logGroupIdentifiers=[...]): up to 50 log groups, by ARN or name, at once.

This lets a client read many specific log groups in one call instead of one call per
prefix (DescribeLogGroups has a 10 requests/second quota). moto 5.2.5 ignores the parameter
and returns every log group.
"""

from __future__ import annotations

import json
from typing import Any, Final

from moto.logs.exceptions import InvalidParameterException
from moto.logs.responses import LogsResponse

from optimizer_async.sandbox.patches._patching import wrap_method

MAX_IDENTIFIERS: Final = 50
_EXCLUSIVE: Final = ("logGroupNamePrefix", "logGroupNamePattern")


def log_group_name_of(identifier: str) -> str:
    """`arn:aws:logs:region:account:log-group:NAME[:*]` or a bare NAME -> NAME."""
    if identifier.startswith("arn:"):
        name = identifier.split(":log-group:", 1)[-1]
        return name[:-2] if name.endswith(":*") else name
    return identifier


def apply() -> None:
    @wrap_method(LogsResponse, "describe_log_groups")
    def describe(original: Any, response: Any) -> Any:
        identifiers = response._get_param("logGroupIdentifiers")
        if not identifiers:
            return original(response)
        if not 1 <= len(identifiers) <= MAX_IDENTIFIERS:
            raise InvalidParameterException(
                constraint=f"Member must have length less than or equal to {MAX_IDENTIFIERS}",
                parameter="logGroupIdentifiers",
                value=len(identifiers),
            )
        if any(response._get_param(name) for name in _EXCLUSIVE):
            raise InvalidParameterException(
                msg="logGroupIdentifiers cannot be combined with a name prefix or pattern"
            )
        groups = response.logs_backend.groups
        wanted = sorted({log_group_name_of(identifier) for identifier in identifiers})
        found = [groups[name].to_describe_dict() for name in wanted if name in groups]
        return json.dumps({"logGroups": found})
