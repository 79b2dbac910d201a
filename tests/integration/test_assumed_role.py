"""A gateway acting as a member account's role: the run named in the session, the
credentials refreshed before they expire (on virtual time the test moves), a refusal said
as AWS says it. Sandbox only: the member account is made through the sandbox's controls."""

from __future__ import annotations

import pytest

from optimizer_async.aws.assumed_role import RoleToAssume, session_name
from optimizer_async.aws.gateway import Aws, AwsSettings, Unavailable
from optimizer_async.sandbox.clock import ManualClock
from optimizer_async.sandbox.server import EmbeddedSandbox
from tests.conftest import REGION
from tests.integration.conftest import LinkedClock

pytestmark = pytest.mark.sandbox_only("member accounts made by the sandbox's controls")
MEMBER, CALLER = "111111111111", "123456789012"
RUN = "20261129T000000Z-abcdef"


async def test_the_roles_credentials_name_the_run_and_are_refreshed_before_expiry(
    sandbox: EmbeddedSandbox,
) -> None:
    arn = sandbox.add_account(MEMBER, "LambdaOptimizer", trusted_account=CALLER)
    settings = AwsSettings(
        region=REGION, endpoint_url=sandbox.endpoint_url, role=RoleToAssume(arn, session_name(RUN))
    )
    # One virtual time for both: the sandbox dates the credentials' expiry by it, the
    # gateway decides by it when to renew them.
    with sandbox.use_clock(ManualClock()) as time:
        async with Aws.open(settings, LinkedClock(time, sandbox.model_now)) as aws:
            identity = await aws.sts.get_caller_identity()

            def assumed() -> int:
                return aws.counter.calls["sts", "AssumeRole", "ok"]

            assert identity["Account"] == MEMBER
            assert identity["Arn"].endswith(f":assumed-role/LambdaOptimizer/lambda-optimizer-{RUN}")
            assert assumed() == 1
            time.advance(40 * 60)  # 20 minutes left of the hour: still good
            await aws.lambda_.list_functions()
            assert assumed() == 1
            time.advance(10 * 60)  # 10 minutes left: renewed before the next call
            await aws.lambda_.list_functions()
            assert assumed() == 2
            time.advance(40 * 60)  # the new ones have 20 minutes left
            await aws.lambda_.list_functions()
            assert assumed() == 2
    calls = sandbox.stats(account=CALLER)["calls"]
    assert sum(row["count"] for row in calls if row["operation"] == "AssumeRole") == 2
    member = sandbox.stats(account=MEMBER)["calls"]
    assert sum(row["count"] for row in member if row["operation"] == "ListFunctions") == 3


async def test_a_role_that_cannot_be_assumed_is_one_clear_line(sandbox: EmbeddedSandbox) -> None:
    arn = f"arn:aws:iam::{MEMBER}:role/Missing"
    settings = AwsSettings(
        region=REGION, endpoint_url=sandbox.endpoint_url, role=RoleToAssume(arn, session_name(RUN))
    )
    async with Aws.open(settings) as aws:
        with pytest.raises(Unavailable) as raised:
            await aws.preflight()
    assert str(raised.value).startswith(f"cannot assume {arn}: AccessDenied")
    assert aws.counter.calls["sts", "AssumeRole", "error:AccessDenied"] == 1
