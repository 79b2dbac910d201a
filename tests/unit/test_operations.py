from __future__ import annotations

import pytest

from optimizer_async.aws.gateway import CallCounter
from optimizer_async.aws.operations import is_write


@pytest.mark.parametrize(
    ("operation", "write"),
    [
        ("GetFunction", False),
        ("ListFunctions", False),
        ("DescribeAlarms", False),
        ("HeadObject", False),
        ("Invoke", False),
        ("AssumeRole", False),  # credentials, no resource changed
        ("UpdateFunctionConfiguration", True),
        ("PutMetricAlarm", True),
        ("CreateQueue", True),
        ("SomethingNew", True),  # unknown: counted as a write, the safe side
    ],
)
def test_reads_and_writes(operation: str, write: bool) -> None:
    assert is_write(operation) is write


def test_counter_snapshot() -> None:
    counter = CallCounter()
    counter.record("lambda", "GetFunction", "ok", attempts=1)
    counter.record("lambda", "UpdateFunctionConfiguration", "ok", attempts=3)
    counter.record("lambda", "UpdateFunctionConfiguration", "ResourceConflictException", attempts=1)
    snapshot = counter.snapshot()
    assert (snapshot["total"], snapshot["writes"], snapshot["attempts"]) == (3, 2, 5)
    assert snapshot["by_operation"] == {
        "lambda": {"GetFunction": 1, "UpdateFunctionConfiguration": 2}
    }
    assert snapshot["failed"] == {"lambda.UpdateFunctionConfiguration:ResourceConflictException": 1}
