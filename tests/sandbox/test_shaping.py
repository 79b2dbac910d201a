"""Traffic shaping: AWS quotas enforced in each service's error shape, faults, call counting.

Every test runs on a ManualClock: a quota bucket refills only when the test advances time,
and the sandbox's waits are recorded instead of slept, so the counts below are exact on any
machine.
"""

from __future__ import annotations

import urllib.error
from types import SimpleNamespace
from typing import Any

import botocore.endpoint
import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError
from botocore.retries.standard import (
    RetryContext,
    ThrottledRetryableChecker,
    TransientRetryableChecker,
)

from optimizer_async.sandbox.clock import ManualClock
from optimizer_async.sandbox.server import EmbeddedSandbox
from tests.conftest import ClientFactory
from tests.sandbox.helpers import control, make_function, make_role

pytestmark = pytest.mark.usefixtures("clock")


def _context(error: ClientError) -> RetryContext:
    return RetryContext(attempt_number=1, parsed_response=error.response)


def _call_until_error(call: Any, limit: int = 200) -> tuple[int, ClientError]:
    """Call until the first error; return how many calls succeeded and the error."""
    for succeeded in range(limit):
        try:
            call()
        except ClientError as error:
            return succeeded, error
    raise AssertionError(f"no error within {limit} calls")


def test_lambda_control_plane_quota_throttles_like_aws(
    client: ClientFactory, sandbox: EmbeddedSandbox, clock: ManualClock
) -> None:
    lam = client("lambda", attempts=1)
    make_function(lam, "fn-q", make_role(client("iam"), "role-q"))
    sandbox.reset_stats()

    def read() -> Any:
        return lam.get_function_configuration(FunctionName="fn-q")

    with sandbox.configured(rate_limits=True):
        succeeded, error = _call_until_error(read)
        assert succeeded == 15  # the bucket holds one second of the 15 rps quota
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 429
        assert error.response["Error"]["Code"] == "TooManyRequestsException"
        assert ThrottledRetryableChecker().is_retryable(_context(error))

        clock.advance(1 / 15)  # one request's worth of quota
        assert _call_until_error(read)[0] == 1
        clock.advance(60.0)  # a long pause refills one second's worth, no more
        assert _call_until_error(read)[0] == 15
    assert sandbox.stats()["by_outcome"] == {"ok": 31, "throttled": 3}


def test_get_function_has_its_own_larger_bucket(
    client: ClientFactory, sandbox: EmbeddedSandbox
) -> None:
    lam = client("lambda", attempts=1)
    make_function(lam, "fn-r", make_role(client("iam"), "role-r"))
    with sandbox.configured(rate_limits=True):
        succeeded, error = _call_until_error(lambda: lam.get_function(FunctionName="fn-r"))
        assert succeeded == 100
        assert error.response["Error"]["Code"] == "TooManyRequestsException"
        # GetFunction took nothing from the shared control-plane bucket.
        assert _call_until_error(lam.list_functions)[0] == 15


@pytest.mark.parametrize(
    ("service", "call", "code", "quota"),
    [
        (
            "cloudwatch",
            lambda c: c.put_metric_alarm(
                AlarmName="a", MetricName="Errors", Namespace="AWS/Lambda", Statistic="Sum",
                Period=60, EvaluationPeriods=1, Threshold=1.0,
                ComparisonOperator="GreaterThanThreshold",
            ),
            "Throttling",
            3,
        ),
        ("logs", lambda c: c.describe_log_groups(), "ThrottlingException", 10),
    ],
)  # fmt: skip
def test_other_services_throttle_in_their_own_shape(
    client: ClientFactory, sandbox: EmbeddedSandbox, service: str, call: Any, code: str, quota: int
) -> None:
    aws = client(service, attempts=1)
    with sandbox.configured(rate_limits=True):
        succeeded, error = _call_until_error(lambda: call(aws))
    assert succeeded == quota
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error.response["Error"]["Code"] == code
    assert ThrottledRetryableChecker().is_retryable(_context(error))


def test_time_scale_multiplies_the_rate(
    client: ClientFactory, sandbox: EmbeddedSandbox, clock: ManualClock
) -> None:
    logs = client("logs", attempts=1)
    with sandbox.configured(rate_limits=True, time_scale=4.0):
        assert _call_until_error(logs.describe_log_groups)[0] == 40
        clock.advance(1 / 40)  # at 40 rps, a token every 25 ms
        assert _call_until_error(logs.describe_log_groups)[0] == 1


def test_a_raised_quota_throttles_later(
    client: ClientFactory, sandbox: EmbeddedSandbox, clock: ManualClock
) -> None:
    """An account's raised quota replaces AWS's default for its bucket only, x time scale."""
    lam = client("lambda", attempts=1)
    make_function(lam, "fn-raised", make_role(client("iam"), "role-raised"))

    def read() -> Any:
        return lam.get_function_configuration(FunctionName="fn-raised")

    raised = (("lambda.control-plane", 40.0),)
    with sandbox.configured(rate_limits=True, quotas=raised):
        assert _call_until_error(read)[0] == 40  # was 15
        clock.advance(1 / 40)
        assert _call_until_error(read)[0] == 1
        get = _call_until_error(lambda: lam.get_function(FunctionName="fn-raised"))
        assert get[0] == 100  # GetFunction's own bucket keeps AWS's rate
    with sandbox.configured(rate_limits=True, quotas=raised, time_scale=2.0):
        assert _call_until_error(read)[0] == 80


def test_quotas_through_the_control_api(sandbox: EmbeddedSandbox) -> None:
    changed = control(sandbox, "PUT", "config", {"quotas": [["logs.DescribeLogGroups", 25]]})
    assert changed["quotas"] == [["logs.DescribeLogGroups", 25.0]]
    assert sandbox.config.quotas == (("logs.DescribeLogGroups", 25.0),)
    for bad in ([["logs.Nope", 5]], [["logs.DescribeLogGroups", 0]]):
        with pytest.raises(urllib.error.HTTPError) as refused:
            control(sandbox, "PUT", "config", {"quotas": bad})
        assert refused.value.code == 400
    assert sandbox.config.quotas == (("logs.DescribeLogGroups", 25.0),)


def test_standard_retries_ride_out_throttling(
    client: ClientFactory,
    sandbox: EmbeddedSandbox,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # botocore waits out its backoff with botocore.endpoint's time.sleep: put that wait on the
    # sandbox's clock, so a backoff refills exactly as much quota as it lasts, and takes no
    # real time.
    monkeypatch.setattr(botocore.endpoint, "time", SimpleNamespace(sleep=clock.sleep))
    logs = client("logs", attempts=10)
    with sandbox.configured(rate_limits=True):
        for _ in range(14):
            logs.describe_log_groups()
    outcomes = sandbox.stats()["by_outcome"]
    assert outcomes["ok"] == 14
    assert outcomes["throttled"] >= 1  # time stood still: the 11th call met an empty bucket
    assert len(clock.sleeps) == outcomes["throttled"]  # each throttle was retried, once


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("internal_error", 500, "ServiceException"),
        ("unavailable", 503, "ServiceUnavailableException"),
    ],
)
def test_injected_server_errors_are_transient(
    client: ClientFactory, sandbox: EmbeddedSandbox, kind: str, status: int, code: str
) -> None:
    lam = client("lambda", attempts=1)
    with (
        sandbox.configured(fault_rate=1.0, fault_kinds=(kind,)),
        pytest.raises(ClientError) as error,
    ):
        lam.list_functions()
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert error.value.response["Error"]["Code"] == code
    context = RetryContext(
        attempt_number=1, parsed_response=error.value.response, http_response=_Status(status)
    )
    assert TransientRetryableChecker().is_retryable(context)
    assert sandbox.stats()["by_outcome"] == {f"fault:{kind}": 1}


class _Status:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code


def test_injected_connection_reset_drops_the_connection(
    client: ClientFactory, sandbox: EmbeddedSandbox
) -> None:
    lam = client("lambda", attempts=1)
    with (
        sandbox.configured(fault_rate=1.0, fault_kinds=("connection_reset",)),
        pytest.raises((ConnectionClosedError, EndpointConnectionError)),
    ):
        lam.list_functions()
    assert sandbox.stats()["by_outcome"] == {"fault:connection_reset": 1}


def test_injected_slow_response_is_late_but_right(
    client: ClientFactory, sandbox: EmbeddedSandbox, clock: ManualClock
) -> None:
    lam = client("lambda", attempts=1)
    slow = {"fault_rate": 1.0, "fault_kinds": ("slow",), "slow_response_s": 0.3}
    with sandbox.configured(**slow):
        assert lam.list_functions()["Functions"] == []
    with sandbox.configured(**slow, time_scale=4.0):
        assert lam.list_functions()["Functions"] == []
    assert clock.sleeps == (0.3, 0.3 / 4.0)
    assert sandbox.stats()["by_outcome"] == {"fault:slow": 2}


def test_faults_follow_the_seed(client: ClientFactory, sandbox: EmbeddedSandbox) -> None:
    def outcomes(seed: int) -> list[str]:
        lam = client("lambda", attempts=1)
        seen = []
        with sandbox.configured(fault_rate=0.5, fault_seed=seed, fault_kinds=("internal_error",)):
            for _ in range(30):
                try:
                    lam.list_functions()
                    seen.append("ok")
                except ClientError:
                    seen.append("fault")
        return seen

    first, again, other = outcomes(7), outcomes(7), outcomes(8)
    assert first == again
    assert first != other
    assert 5 <= first.count("fault") <= 25


def test_stats_count_by_service_operation_and_outcome(
    client: ClientFactory, sandbox: EmbeddedSandbox
) -> None:
    lam, logs = client("lambda", attempts=1), client("logs")
    lam.list_functions()
    lam.list_functions()
    logs.create_log_group(logGroupName="/aws/lambda/x")
    with pytest.raises(ClientError):
        lam.get_function(FunctionName="missing")

    stats = control(sandbox, "GET", "stats")
    rows = {
        (r["service"], r["operation"], r["outcome"]): (r["count"], r["write"])
        for r in stats["calls"]
    }
    assert rows == {
        ("lambda", "ListFunctions", "ok"): (2, False),
        ("logs", "CreateLogGroup", "ok"): (1, True),
        ("lambda", "GetFunction", "error:ResourceNotFoundException"): (1, False),
    }
    assert (stats["total"], stats["writes"]) == (4, 1)

    control(sandbox, "POST", "stats/reset")
    assert control(sandbox, "GET", "stats")["total"] == 0


def test_control_api_changes_configuration(sandbox: EmbeddedSandbox) -> None:
    changed = control(sandbox, "PUT", "config", {"update_s": 1.5, "fault_kinds": ["slow"]})
    assert changed["update_s"] == 1.5
    assert sandbox.config.fault_kinds == ("slow",)
    assert control(sandbox, "GET", "health") == {"status": "ok"}


def test_latency_is_added_and_scaled_by_the_clock(
    client: ClientFactory, sandbox: EmbeddedSandbox, clock: ManualClock
) -> None:
    lam = client("lambda", attempts=1)

    def waits(**config: float) -> tuple[float, ...]:
        """The sleeps the sandbox made for five ListFunctions under `config`."""
        before = len(clock.sleeps)
        with sandbox.configured(**config):
            for _ in range(5):
                lam.list_functions()
        return clock.sleeps[before:]

    assert waits() == ()
    assert waits(latency_median_ms=80.0, latency_sigma=0.0) == (0.08,) * 5
    assert waits(latency_median_ms=80.0, latency_sigma=0.0, time_scale=8.0) == (0.01,) * 5
    spread = waits(latency_median_ms=80.0)  # log-normal: every call differs
    assert len(set(spread)) == 5
    assert all(wait > 0 for wait in spread)


@pytest.mark.parametrize("kind", ["reset_after_commit", "error_after_commit"])
def test_an_after_commit_fault_applies_the_write_and_loses_its_answer(
    client: ClientFactory, sandbox: EmbeddedSandbox, kind: str
) -> None:
    """AWS sometimes commits a write and then the answer is lost: the write is there."""
    sqs = client("sqs", attempts=1)
    with (
        sandbox.configured(fault_rate=1.0, fault_kinds=(kind,)),
        pytest.raises((ClientError, ConnectionClosedError, EndpointConnectionError)),
    ):
        sqs.create_queue(QueueName="written-anyway")
    assert sandbox.stats()["by_outcome"] == {f"fault:{kind}": 1}
    assert client("sqs").list_queues(QueueNamePrefix="written-anyway")["QueueUrls"]
