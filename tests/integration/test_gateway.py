"""The AWS gateway, async, against the test endpoint: typed views, counting, not-found,
pagination and the once-only account lookup."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from aiolimiter import AsyncLimiter
from botocore.exceptions import ClientError
from botocore.loaders import Loader

from optimizer_async.aws import gateway
from optimizer_async.aws.gateway import QUOTA_HEADROOM, Aws, AwsSettings
from optimizer_async.sandbox.clock import ManualClock
from optimizer_async.sandbox.server import EmbeddedSandbox
from tests.conftest import REGION, ClientFactory
from tests.integration.conftest import LinkedClock, Unique


def _calls(aws: Aws) -> dict[tuple[str, str, str], int]:
    return dict(aws.counter.calls)


async def test_typed_views_call_and_count_by_operation(aws: Aws) -> None:
    answer = await aws.lambda_.list_functions(MaxItems=1)
    assert "Functions" in answer
    await aws.lambda_.list_functions(MaxItems=1)
    assert _calls(aws) == {("lambda", "ListFunctions", "ok"): 2}
    assert aws.counter.snapshot()["writes"] == 0


async def test_a_misspelt_operation_fails_before_any_call(aws: Aws) -> None:
    view: Any = aws.lambda_  # mypy would refuse the typo below; at run time it fails too
    with pytest.raises(AttributeError, match="lambda has no operation 'get_functoin'"):
        await view.get_functoin(FunctionName="x")
    assert _calls(aws) == {}


async def test_find_is_none_for_what_does_not_exist(aws: Aws, unique: Unique) -> None:
    missing = await aws.find(aws.lambda_.get_function, FunctionName=unique("nothing"))
    assert missing is None
    assert _calls(aws) == {("lambda", "GetFunction", "ResourceNotFoundException"): 1}


@pytest.mark.aws_behaviour("describe-log-groups-paging")
async def test_pages_follow_the_token(aws: Aws, client: ClientFactory, unique: Unique) -> None:
    prefix = f"/test/{unique('pages')}/"
    logs = client("logs")
    for name in ("a", "b", "c"):
        logs.create_log_group(logGroupName=prefix + name)
    names = [
        group["logGroupName"]
        async for page in aws.pages(
            "nextToken", aws.logs.describe_log_groups, logGroupNamePrefix=prefix, limit=1
        )
        for group in page.get("logGroups", [])
    ]
    assert names == [prefix + name for name in ("a", "b", "c")]
    # One page per group; AWS may also hand out a token to a last, empty page.
    assert _calls(aws)[("logs", "DescribeLogGroups", "ok")] in (3, 4)


async def test_the_account_is_asked_once_however_many_ask(aws: Aws) -> None:
    found: list[str] = []

    async def ask() -> None:
        found.append(await aws.account_id())

    async with anyio.create_task_group() as group:
        for _ in range(10):
            group.start_soon(ask)
    assert len(set(found)) == 1
    assert len(found[0]) == 12
    assert _calls(aws) == {("sts", "GetCallerIdentity", "ok"): 1}


@pytest.mark.aws_behaviour("dashboard-not-found")
async def test_cloudwatch_speaks_json_and_keeps_its_query_error_codes(
    aws: Aws, unique: Unique
) -> None:
    client = await aws._client("cloudwatch")
    sent: list[bytes] = []
    client.meta.events.register(
        "before-send.cloudwatch.*",
        lambda request, **_: sent.append(request.headers["Content-Type"]),
    )
    answer = await aws.cloudwatch.describe_alarms(AlarmNamePrefix=unique("none-"))
    assert answer["MetricAlarms"] == []
    with pytest.raises(ClientError) as refused:
        await aws.cloudwatch.get_dashboard(DashboardName=unique("none"))
    assert refused.value.response["Error"]["Code"] == "ResourceNotFound"  # the query code
    assert sent == [b"application/x-amz-json-1.0"] * 2


def test_a_data_path_the_user_set_is_searched_after_ours(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))
    searched = gateway._botocore_session().get_component("data_loader").search_paths
    assert searched[:2] == [str(gateway._MODELS), str(tmp_path)]
    assert searched[2:] == Loader().search_paths  # then botocore's own, as without ours


def _limiter(aws: Aws, service: str, operation: str) -> AsyncLimiter:
    paced = aws._pacing(service, operation)
    assert paced is not None
    return paced[1]


async def test_a_raised_quota_sets_its_buckets_pace_and_no_other(endpoint_url: str) -> None:
    raised = (("cloudwatch.PutMetricAlarm", 20.0),)
    settings = AwsSettings(region=REGION, endpoint_url=endpoint_url, quotas=raised)
    async with Aws.open(settings) as aws:
        alarms = _limiter(aws, "cloudwatch", "PutMetricAlarm")
        retention = _limiter(aws, "logs", "PutRetentionPolicy")
    assert alarms.max_rate / alarms.time_period == pytest.approx(20.0 * QUOTA_HEADROOM)
    assert retention.max_rate / retention.time_period == pytest.approx(5.0 * QUOTA_HEADROOM)


async def test_one_of_n_shards_paces_at_its_share_of_every_quota(endpoint_url: str) -> None:
    settings = AwsSettings(region=REGION, endpoint_url=endpoint_url, quota_share=0.25)
    async with Aws.open(settings) as aws:
        alarms = _limiter(aws, "cloudwatch", "PutMetricAlarm")
        reads = _limiter(aws, "lambda", "GetFunction")
    assert alarms.max_rate / alarms.time_period == pytest.approx(3.0 * QUOTA_HEADROOM / 4)
    assert reads.max_rate / reads.time_period == pytest.approx(100.0 * QUOTA_HEADROOM / 4)


async def test_a_quota_below_one_call_a_second_paces_one_call_at_a_time(
    endpoint_url: str,
) -> None:
    """A limiter holds at least the one call each acquire takes: a quota of 0.5/s (or a time
    scale below 1) is one call every 1 / (0.5 x headroom) seconds, not a refused acquire."""
    raised = (("cloudwatch.DescribeAlarms", 0.5),)
    settings = AwsSettings(region=REGION, endpoint_url=endpoint_url, quotas=raised)
    async with Aws.open(settings) as aws:
        answer = await aws.cloudwatch.describe_alarms(AlarmNamePrefix="none-")
        alarms = _limiter(aws, "cloudwatch", "DescribeAlarms")
    assert answer["MetricAlarms"] == []
    assert alarms.max_rate == 1.0
    assert alarms.time_period == pytest.approx(1 / (0.5 * QUOTA_HEADROOM))


@pytest.mark.parametrize(("quota", "at_once"), [(100.0, 23), (15.0, 3), (3.0, 1)])
async def test_a_limiter_releases_a_quarter_second_of_calls_at_once(
    endpoint_url: str, quota: float, at_once: int
) -> None:
    """AWS's bucket keeps the rest of its second's burst for requests that arrive bunched:
    GetFunction's 100/s (95 paced) releases 23 calls at once, not 95; 15/s three; 3/s one."""
    settings = AwsSettings(
        region=REGION, endpoint_url=endpoint_url, quotas=(("lambda.GetFunction", quota),)
    )
    async with Aws.open(settings) as aws:
        limiter = _limiter(aws, "lambda", "GetFunction")
        released = 0
        while limiter.has_capacity() and released < 200:
            await limiter.acquire()
            released += 1
    assert released == at_once


@pytest.mark.sandbox_only("the sandbox's throttles, on its clock")
async def test_a_paced_call_still_throttled_goes_again_after_a_pause_then_fails(
    sandbox: EmbeddedSandbox,
) -> None:
    """botocore's standard mode gives up once its retry quota is spent; a quota'd call goes
    through its limiter again after 1, 2 and 3 s before the throttle is the answer; a call
    under no published quota is left to botocore's adaptive retries."""
    settings = AwsSettings(region=REGION, endpoint_url=sandbox.endpoint_url, max_attempts=1)
    throttle_all = {"fault_rate": 1.0, "fault_kinds": ("throttle",)}
    with sandbox.use_clock(ManualClock()) as clock, sandbox.configured(**throttle_all):
        async with Aws.open(settings, clock=LinkedClock(clock)) as aws:
            with pytest.raises(Exception, match="TooManyRequestsException"):
                await aws.lambda_.get_function(FunctionName="lambda-function-dev")
            with pytest.raises(Exception, match="Throttling"):
                await aws.iam.get_role(RoleName="lambda-role-dev")  # IAM publishes no quota
            calls = dict(aws.counter.calls)
    assert clock.sleeps == (1.0, 2.0, 3.0)  # GetFunction's pauses; GetRole had one round
    assert calls[("lambda", "GetFunction", "TooManyRequestsException")] == 4
    assert calls[("iam", "GetRole", "Throttling")] == 1
