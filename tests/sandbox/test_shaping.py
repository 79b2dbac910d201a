"""Traffic shaping: AWS quotas enforced in each service's error shape, faults, call counting."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError
from botocore.retries.standard import (
    RetryContext,
    ThrottledRetryableChecker,
    TransientRetryableChecker,
)

from optimizer_async.sandbox.server import EmbeddedSandbox
from tests.conftest import ClientFactory
from tests.sandbox.helpers import control, make_function, make_role

pytestmark = pytest.mark.usefixtures("sandbox")


def _context(error: ClientError) -> RetryContext:
    return RetryContext(attempt_number=1, parsed_response=error.response)


def _call_until_error(call: Any, limit: int = 200) -> tuple[int, ClientError]:
    """Call quickly until the first error; return how many calls succeeded and the error."""
    for succeeded in range(limit):
        try:
            call()
        except ClientError as error:
            return succeeded, error
    raise AssertionError(f"no error within {limit} calls")


def test_lambda_control_plane_quota_throttles_like_aws(
    client: ClientFactory, sandbox: EmbeddedSandbox
) -> None:
    lam = client("lambda", attempts=1)
    make_function(lam, "fn-q", make_role(client("iam"), "role-q"))
    with sandbox.configured(rate_limits=True):
        succeeded, error = _call_until_error(
            lambda: lam.get_function_configuration(FunctionName="fn-q")
        )
    # The bucket holds one second of the 15 rps quota (a little refills while we call).
    assert 15 <= succeeded <= 20
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert error.response["Error"]["Code"] == "TooManyRequestsException"
    assert ThrottledRetryableChecker().is_retryable(_context(error))
    counts = sandbox.stats()["by_outcome"]
    assert counts["throttled"] == 1
    assert counts["ok"] >= succeeded


def test_get_function_has_its_own_larger_bucket(
    client: ClientFactory, sandbox: EmbeddedSandbox
) -> None:
    lam = client("lambda", attempts=1)
    make_function(lam, "fn-r", make_role(client("iam"), "role-r"))
    with sandbox.configured(rate_limits=True):
        for _ in range(30):  # twice the shared control-plane quota: all fine
            lam.get_function(FunctionName="fn-r")
        lam.list_functions()  # the control-plane bucket is untouched by GetFunction


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
    assert quota <= succeeded <= quota + 2
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error.response["Error"]["Code"] == code
    assert ThrottledRetryableChecker().is_retryable(_context(error))


def test_time_scale_multiplies_the_rate(client: ClientFactory, sandbox: EmbeddedSandbox) -> None:
    logs = client("logs", attempts=1)
    with sandbox.configured(rate_limits=True, time_scale=4.0):
        succeeded, _ = _call_until_error(lambda: logs.describe_log_groups())
    assert 40 <= succeeded <= 48


def test_standard_retries_ride_out_throttling(
    client: ClientFactory, sandbox: EmbeddedSandbox
) -> None:
    logs = client("logs", attempts=10)
    with sandbox.configured(rate_limits=True):
        for _ in range(14):
            logs.describe_log_groups()
    outcomes = sandbox.stats()["by_outcome"]
    assert outcomes["ok"] == 14
    assert outcomes["throttled"] >= 1


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
    client: ClientFactory, sandbox: EmbeddedSandbox
) -> None:
    lam = client("lambda", attempts=1)
    with sandbox.configured(fault_rate=1.0, fault_kinds=("slow",), slow_response_s=0.3):
        started = time.monotonic()
        assert lam.list_functions()["Functions"] == []
    assert time.monotonic() - started >= 0.3


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
    client: ClientFactory, sandbox: EmbeddedSandbox
) -> None:
    lam = client("lambda", attempts=1)

    def elapsed(**config: float) -> float:
        with sandbox.configured(**config):
            started = time.monotonic()
            for _ in range(5):
                lam.list_functions()
            return time.monotonic() - started

    plain = elapsed()
    slow = elapsed(latency_median_ms=80.0, latency_sigma=0.01)
    fast = elapsed(latency_median_ms=80.0, latency_sigma=0.01, time_scale=8.0)
    assert slow - plain >= 5 * 0.075
    assert fast < slow - 5 * 0.05
