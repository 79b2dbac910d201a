"""The environment's two secrets (database URL, API key): part, not step.

The optimised function reads them from Secrets Manager by ARN, so every step that wires
them in (the role policy, the function's variables) uses this part, and a missing secret
stops the environment before anything is written. Only ARNs are read, never values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Final

import anyio

from optimizer_async.definitions.naming import EnvironmentNames
from optimizer_async.steps.base import (
    ApiCall,
    EnvironmentPart,
    Permission,
    ReadContext,
)
from optimizer_async.steps.inventory import EnvironmentInventory

# Secrets Manager appends six random characters to a secret's name in its ARN.
_SECRET_ARN: Final = "arn:{partition}:secretsmanager:{region}:{account}:secret:{secret}-??????"  # noqa: S105 - an ARN pattern


def secret_names(names: EnvironmentNames) -> tuple[str, str]:
    return (names.database_url_secret, names.api_key_secret)


class SecretsPart(EnvironmentPart[Mapping[str, str | None]]):
    """Secret name -> ARN; None where the secret is missing or scheduled for deletion."""

    name: ClassVar[str] = "secrets"
    reads = (ApiCall("secretsmanager", "DescribeSecret"),)
    permissions = (Permission("secretsmanager:DescribeSecret", _SECRET_ARN),)

    async def read(
        self, ctx: ReadContext, environment: EnvironmentInventory
    ) -> Mapping[str, str | None]:
        found: dict[str, str | None] = {}

        async def one(name: str) -> None:
            secret = await ctx.aws.find(ctx.aws.secretsmanager.describe_secret, SecretId=name)
            if secret is None or secret.get("DeletedDate") or secret.get("Name") != name:
                found[name] = None  # missing, scheduled for deletion, or a different secret
            else:
                found[name] = str(secret["ARN"])

        async with anyio.create_task_group() as group:
            for name in secret_names(EnvironmentNames(environment.suffix)):
                group.start_soon(one, name)
        return {name: found[name] for name in sorted(found)}

    def problem(self, value: Mapping[str, str | None]) -> str | None:
        missing = sorted(name for name, arn in value.items() if arn is None)
        if missing:
            return f"secret(s) not found: {', '.join(missing)}; create them, then re-run"
        return None


SECRETS: Final = SecretsPart()


def secret_arns(environment: EnvironmentInventory) -> dict[str, str]:
    """Secret ARNs by name (the part's `problem` keeps planning away from missing ones)."""
    return {name: arn for name, arn in environment.part(SECRETS).items() if arn}
