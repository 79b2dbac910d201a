from __future__ import annotations

import pytest

from optimizer_async.aws.quotas import BUCKETS, bucket_for


@pytest.mark.parametrize(
    ("service", "operation", "bucket", "rate"),
    [
        ("lambda", "GetFunction", "lambda.GetFunction", 100),
        ("lambda", "GetPolicy", "lambda.GetPolicy", 15),
        ("lambda", "UpdateFunctionConfiguration", "lambda.control-plane", 15),
        ("lambda", "ListFunctions", "lambda.control-plane", 15),
        ("lambda", "GetAccountSettings", "lambda.control-plane", 15),
        ("cloudwatch", "PutMetricAlarm", "cloudwatch.PutMetricAlarm", 3),
        ("cloudwatch", "DescribeAlarms", "cloudwatch.DescribeAlarms", 9),
        ("logs", "PutRetentionPolicy", "logs.PutRetentionPolicy", 5),
        ("logs", "DescribeLogGroups", "logs.DescribeLogGroups", 10),
    ],
)
def test_operations_map_to_their_aws_quota(
    service: str, operation: str, bucket: str, rate: float
) -> None:
    found = bucket_for(service, operation)
    assert found is not None
    assert (found.name, found.rate_per_s) == (bucket, rate)


@pytest.mark.parametrize(
    ("service", "operation"),
    [
        ("lambda", "Invoke"),
        ("sqs", "CreateQueue"),
        ("iam", "PutRolePolicy"),
        ("cloudwatch", "ListMetrics"),
    ],
)
def test_unpublished_quotas_have_no_bucket(service: str, operation: str) -> None:
    assert bucket_for(service, operation) is None


def test_bucket_names_are_unique() -> None:
    assert len({b.name for b in BUCKETS}) == len(BUCKETS)
