"""What several steps' `verify` asks of a value read from a plan file: pure checks, one
sentence each for the refusal.

A plan file's ARNs are data like the rest of it: an ARN is the environment's own only when
its partition, region and account are the environment's and its resource is the name the
naming rules give (`naming.py`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from optimizer_async.steps.base import Change, Json, VerifyContext

# Secrets Manager appends a hyphen and six random characters to a secret's name in its ARN.
_SECRET_TAIL: Final = re.compile(r"-[A-Za-z0-9]{6}")


@dataclass(frozen=True)
class Arn:
    partition: str
    service: str
    region: str
    account: str
    resource: str


def partition(region: str) -> str:
    """The AWS partition a region belongs to."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def parse_arn(value: Json) -> Arn | None:
    """The parts of an ARN; None for anything that is not one."""
    if not isinstance(value, str):
        return None
    parts = value.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or not all(parts[1:3]) or not parts[5]:
        return None
    return Arn(parts[1], parts[2], parts[3], parts[4], parts[5])


def not_own(ctx: VerifyContext, value: Json, service: str, resource: str) -> str | None:
    """Why `value` is not the ARN of this environment's `service` resource `resource` (None:
    it is). `resource` is the ARN's last part exactly, e.g. `lambda-dlq-dev`."""
    return _not_own(ctx, value, service, lambda found: found == resource, resource)


def not_own_secret(ctx: VerifyContext, value: Json, secret: str) -> str | None:
    """Why `value` is not the ARN of this environment's secret `secret` (its name and the
    six characters Secrets Manager appends)."""

    def named(found: str) -> bool:
        name = found.removeprefix("secret:")
        return (
            found.startswith("secret:")
            and name.startswith(secret)
            and bool(_SECRET_TAIL.fullmatch(name[len(secret) :]))
        )

    return _not_own(ctx, value, "secretsmanager", named, f"secret:{secret}-??????")


def _not_own(
    ctx: VerifyContext, value: Json, service: str, named: Callable[[str], bool], shown: str
) -> str | None:
    arn = parse_arn(value)
    if arn is None:
        return f"{value!r} is not an ARN"
    if arn.account != ctx.account_id:
        return f"{value} is a resource of account {arn.account}, not {ctx.account_id}"
    if (arn.partition, arn.region) != (partition(ctx.region), ctx.region):
        return f"{value} is not in {ctx.region}"
    if arn.service != service or not named(arn.resource):
        return f"{value} is not {ctx.suffix}'s {shown}"
    return None


def whole(value: Json) -> bool:
    """A whole number as AWS takes one: an int, not a bool or a float."""
    return isinstance(value, int) and not isinstance(value, bool)


def identical(left: Json, right: Json) -> bool:
    """The same JSON: 1, 1.0 and true are three values here (and to AWS), not one."""
    return json.dumps(left, sort_keys=True) == json.dumps(right, sort_keys=True)


def not_planned(change: Change, before: Json, after: Json, why: str = "") -> str | None:
    """Why `change` is not (before -> after), the change the step plans; None if it is."""
    if not identical(change.after, after):
        because = f" ({why})" if why else ""
        return f"{change.setting} {change.after!r} is not what it plans: {after!r}{because}"
    if not identical(change.before, before):
        return f"{change.setting} before {change.before!r} is not what the plan saw: {before!r}"
    return None
