"""Many clients at once never get a malformed answer, and every call is counted as served.

Threads with their own boto3 clients read and write the same alarms, functions and log
groups; botocore parses every answer (a malformed one raises ResponseParserError). Bounded
in calls, not time: it asserts counts, never speed.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from optimizer_async.sandbox.seeder import Seeder
from optimizer_async.sandbox.server import EmbeddedSandbox
from tests.conftest import make_client

THREADS = 8
CALLS_PER_THREAD = 40
SUFFIXES = [f"c{index}" for index in range(4)]


def _alarm(function: str, index: int) -> dict[str, Any]:
    return {
        "AlarmName": f"{function}-alarm-{index}",
        "Namespace": "AWS/Lambda",
        "MetricName": "Errors",
        "Dimensions": [{"Name": "FunctionName", "Value": function}],
        "Statistic": "Sum",
        "Period": 60,
        "EvaluationPeriods": 1,
        "Threshold": float(index),
        "ComparisonOperator": "GreaterThanThreshold",
        "AlarmDescription": "<&> escaped " * 3,
    }


def _worker(endpoint: str, seed: int, functions: list[str], outcomes: Counter[str]) -> None:
    rng = random.Random(seed)
    clients = {
        name: make_client(endpoint, name, attempts=1) for name in ("cloudwatch", "lambda", "logs")
    }
    cloudwatch, lam, logs = clients["cloudwatch"], clients["lambda"], clients["logs"]
    end = datetime.now(UTC)
    for _ in range(CALLS_PER_THREAD):
        function = rng.choice(functions)
        kind = rng.randrange(8)
        try:
            if kind == 0:
                cloudwatch.put_metric_alarm(**_alarm(function, rng.randrange(5)))
            elif kind == 1:
                answer = cloudwatch.describe_alarms(AlarmNamePrefix=function)
                assert all(a["AlarmName"].startswith(function) for a in answer["MetricAlarms"])
            elif kind == 2:
                queries = [
                    {
                        "Id": f"q{i}",
                        "MetricStat": {
                            "Metric": {
                                "Namespace": "AWS/Lambda",
                                "MetricName": "Invocations",
                                "Dimensions": [{"Name": "FunctionName", "Value": f}],
                            },
                            "Period": 3600,
                            "Stat": "Sum",
                        },
                    }
                    for i, f in enumerate(functions)
                ]
                answer = cloudwatch.get_metric_data(
                    MetricDataQueries=queries, StartTime=end - timedelta(hours=6), EndTime=end
                )
                assert len(answer["MetricDataResults"]) == len(functions)
            elif kind == 3:
                assert len(lam.list_functions()["Functions"]) == len(functions)
            elif kind == 4:
                assert lam.get_function(FunctionName=function)["Configuration"]["FunctionName"]
            elif kind == 5:
                groups = logs.describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{function}")
                assert groups["logGroups"]
            elif kind == 6:
                cloudwatch.put_metric_data(
                    Namespace="Custom/Stress",
                    MetricData=[{"MetricName": function, "Value": 1.0, "Unit": "Count"}],
                )
            else:
                lam.update_function_configuration(
                    FunctionName=function, Timeout=rng.randrange(30, 300)
                )
            outcomes["ok"] += 1
        except ClientError as error:  # parsed: an AWS error is a well-formed answer
            outcomes[f"error:{error.response['Error']['Code']}"] += 1


def test_concurrent_clients_get_well_formed_answers(sandbox: EmbeddedSandbox) -> None:
    environments = Seeder(sandbox.endpoint_url).seed(SUFFIXES)
    functions = [name for environment in environments for name in environment.functions]
    sandbox.reset_stats()
    outcomes: Counter[str] = Counter()
    failures: list[BaseException] = []

    def run(seed: int) -> None:
        try:
            _worker(sandbox.endpoint_url, seed, functions, outcomes)
        except BaseException as error:  # reported below
            failures.append(error)

    threads = [threading.Thread(target=run, args=(seed,)) for seed in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures[:3]
    assert sum(outcomes.values()) == THREADS * CALLS_PER_THREAD
    # Only an update meeting another's window may be refused.
    assert set(outcomes) <= {"ok", "error:ResourceConflictException"}
    stats = sandbox.stats()
    assert stats["total"] == THREADS * CALLS_PER_THREAD
    assert set(stats["by_outcome"]) <= {"ok", "error:ResourceConflictException"}
