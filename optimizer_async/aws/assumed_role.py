"""Credentials of a role in another account (`--accounts`), refreshed before they expire.

AWS's STS AssumeRole hands out credentials for at most the role's session duration (an
hour by default); an organisation's run can outlast them. botocore's refreshable
credentials do the timing (a refresh 15 minutes before expiry, a blocking one in the last
10, one at a time however many calls need them); this module supplies the fetch: one
AssumeRole with the run's own credentials, the run named in the session name (so
CloudTrail in the member account says which run did what), counted like every other call.
The time the refresh compares with is the gateway's clock, so tests can move it.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import aioboto3
import anyio
import structlog
from aiobotocore.config import AioConfig
from aiobotocore.credentials import AioCredentialResolver, AioDeferredRefreshableCredentials
from botocore.credentials import CredentialProvider

from optimizer_async.aws import errors

log = structlog.get_logger("optimizer_async.aws")

SESSION_PREFIX: Final = "lambda-optimizer-"
DEFAULT_DURATION_S: Final = 3600  # AWS's default maximum session of a role


class RoleRefused(Exception):
    """The role cannot be assumed: which role, and AWS's reason (never the external id)."""


@dataclass(frozen=True)
class RoleToAssume:
    arn: str
    session_name: str  # `lambda-optimizer-{run id}`: the run, in the member's CloudTrail
    external_id: str | None = field(default=None, repr=False)
    duration_s: int = DEFAULT_DURATION_S
    sts_region: str | None = None  # where to call STS: the caller's region (default: the place's)


def session_name(run_id: str) -> str:
    """The role session's name for a run (AWS allows 2-64 of [\\w+=,.@-])."""
    return f"{SESSION_PREFIX}{run_id}"[:64]


Record = Callable[[str], None]  # counts one AssumeRole by its outcome


def resolver(
    role: RoleToAssume,
    source: aioboto3.Session,
    client_options: dict[str, Any],
    stack: AsyncExitStack,
    now: Callable[[], datetime],
    record: Record,
) -> AioCredentialResolver:
    """A credential resolver for a botocore session: the role's credentials, fetched with
    `source`'s (the run's own) on first use and again before they expire."""
    sts: list[Any] = []
    lock = anyio.Lock()

    async def client() -> Any:
        async with lock:
            if not sts:
                config = AioConfig(retries={"mode": "standard", "max_attempts": 4},
                                   connect_timeout=10, read_timeout=30)  # fmt: skip
                made = source.client("sts", config=config, **client_options)
                sts.append(await stack.enter_async_context(made))
        return sts[0]

    async def fetch() -> dict[str, str]:
        extra = {"ExternalId": role.external_id} if role.external_id else {}
        try:
            answer = await (await client()).assume_role(
                RoleArn=role.arn,
                RoleSessionName=role.session_name,
                DurationSeconds=role.duration_s,
                **extra,
            )
        except Exception as error:
            record(f"error:{errors.error_code(error) or type(error).__name__}")
            raise RoleRefused(f"cannot assume {role.arn}: {errors.describe(error)}") from None
        record("ok")
        credentials = answer["Credentials"]
        expires: datetime = credentials["Expiration"]
        log.info("credentials.assumed", role=role.arn, session=role.session_name,
                 expires=expires.isoformat())  # fmt: skip
        return {
            "access_key": credentials["AccessKeyId"],
            "secret_key": credentials["SecretAccessKey"],
            "token": credentials["SessionToken"],
            "expiry_time": expires.isoformat(),
        }

    class _Provider(CredentialProvider):  # AioCredentialResolver awaits `load`
        METHOD = "assume-role"
        CANONICAL_NAME = "custom-lambda-optimizer-assume-role"

        async def load(self) -> AioDeferredRefreshableCredentials:
            return AioDeferredRefreshableCredentials(fetch, self.METHOD, time_fetcher=now)

    return AioCredentialResolver([_Provider()])
