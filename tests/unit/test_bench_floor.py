"""The quota floor: the job's minimum calls per bucket over the bucket's rate."""

from __future__ import annotations

import pytest

from bench import floor

SHAPE = floor.JobShape(environments=100, functions_per_env=5)


def test_a_run_needs_two_alarms_per_function_and_is_bound_by_put_metric_alarm() -> None:
    found = floor.floor(SHAPE, "run")
    assert found.minimum["cloudwatch.PutMetricAlarm"] == 1000
    assert found.minimum["lambda.control-plane"] == 1001
    assert found.minimum["lambda.GetFunction"] == 1000
    assert found.minimum["cloudwatch.DescribeAlarms"] == 20  # 1,000 names, 100 a call, twice
    assert found.minimum["logs.DescribeLogGroups"] == 20
    assert found.bottleneck == "cloudwatch.PutMetricAlarm"
    assert found.seconds == pytest.approx(1000 / 3)


def test_reads_need_one_get_function_per_function() -> None:
    found = floor.floor(SHAPE, "read")
    assert "cloudwatch.PutMetricAlarm" not in found.minimum
    assert found.minimum["lambda.GetFunction"] == 500
    assert found.bottleneck == "lambda.GetFunction"
    assert found.seconds == pytest.approx(5.0)


def test_a_raised_quota_moves_the_floor_to_the_next_bucket() -> None:
    raised = floor.floor(SHAPE, "run", {"cloudwatch.PutMetricAlarm": 20.0})
    assert raised.bottleneck == "logs.PutRetentionPolicy"
    assert raised.seconds == pytest.approx(500 / 5)


def test_aws_delays_set_the_floor_of_a_small_fleet() -> None:
    delays = floor.Delays(evidence_s=1.5, iam_propagation_s=4.0, update_s=2.5)
    small = floor.JobShape(environments=1, functions_per_env=1)
    assert floor.floor(small, "run", delays=delays).seconds == pytest.approx(8.0)
    read = floor.floor(small, "read", delays=delays)
    assert read.bottleneck == "lambda.GetFunction + evidence query"
    assert read.seconds == pytest.approx(0.01 + 1.5)
    big = floor.floor(SHAPE, "run", delays=delays)
    assert big.seconds == pytest.approx(1.5 + 1000 / 3)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cloudwatch.PutMetricAlarm", "BUCKET=RATE"),
        ("cloudwatch.PutMetricAlarm=inf", "must be a positive number"),
        ("nope=3", "no quota bucket 'nope'"),
        ("logs.PutRetentionPolicy=fast", "is not a number"),
        ("logs.PutRetentionPolicy=0", "must be a positive number"),
    ],
)
def test_bad_quota_overrides_are_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        floor.parse_quota(text)
