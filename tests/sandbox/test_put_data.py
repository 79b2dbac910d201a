"""Data put the way AWS writes it is what the sandbox answers from, over HTTP with plain
boto3: Logs Insights runs its language over events put with PutLogEvents (Lambda's REPORT
lines, JSON `platform.report` records, streams of a shared group), alongside the workload
model's lines; GetMetricData answers from PutMetricData and the model together, with
CloudWatch's rule for percentiles over statistic sets; FilterLogEvents follows AWS's
filter-pattern syntax; a LoggingConfig sends the model's lines where and as it says."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from optimizer_async.sandbox.filter_patterns import PatternError, compile_pattern
from optimizer_async.sandbox.server import EmbeddedSandbox
from optimizer_async.sandbox.workload.profiles import NAMED
from optimizer_async.steps.lambda_reports import REPORT_QUERY
from tests.aws_data import put_metrics, put_reports, stream_name, usage
from tests.conftest import ClientFactory
from tests.sandbox.helpers import make_function, make_role

ACCOUNT = "123456789012"
CLASSIC_QUERY = (  # the query AWS's Lambda operator guide gives for memory used
    'filter @type = "REPORT" | stats count(*) as n, max(@maxMemoryUsed / 1000 / 1000) as '
    "maxMB, pct(@maxMemoryUsed / 1000 / 1000, 99) as p99MB, max(@billedDuration) as billed"
    " by @log"
)


def _window() -> tuple[int, int]:
    now = datetime.now(UTC)
    return int((now - timedelta(days=14)).timestamp()), int(now.timestamp())


def _query(logs: Any, groups: list[str], text: str) -> list[dict[str, str]]:
    start, end = _window()
    query_id = logs.start_query(
        logGroupNames=groups, startTime=start, endTime=end, queryString=text
    )["queryId"]
    answer = logs.get_query_results(queryId=query_id)
    assert answer["status"] == "Complete"
    return [{cell["field"]: cell["value"] for cell in row} for row in answer["results"]]


def _function(client: ClientFactory, name: str, **extra: Any) -> str:
    role = make_role(client("iam"), f"role-{name}")
    make_function(client("lambda"), name, role, **extra)
    client("logs").create_log_group(logGroupName=f"/aws/lambda/{name}")
    return f"/aws/lambda/{name}"


def _stat(cloudwatch: Any, function: str, metric: str, stat: str) -> list[float]:
    end = datetime.now(UTC)
    answer = cloudwatch.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "q",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/Lambda",
                        "MetricName": metric,
                        "Dimensions": [{"Name": "FunctionName", "Value": function}],
                    },
                    "Period": 14 * 86_400,
                    "Stat": stat,
                },
            }
        ],
        StartTime=end - timedelta(days=14),
        EndTime=end,
    )
    (result,) = answer["MetricDataResults"]
    assert result["StatusCode"] == "Complete"
    return list(result["Values"])


@pytest.mark.aws_behaviour("logs-insights-statistics")
def test_report_lines_put_through_put_log_events_answer_logs_insights(
    sandbox: EmbeddedSandbox, client: ClientFactory
) -> None:
    group = _function(client, "plain")
    used = usage(200, (100, 412), (10.0, 812.33), peak_concurrency=4)
    put_reports(client("logs"), group, used)
    (row,) = _query(client("logs"), [group], CLASSIC_QUERY)
    assert row == {
        "@log": f"{ACCOUNT}:{group}",
        "n": "200",
        "maxMB": "412",
        "p99MB": str(sorted(used.memory_used_mb)[197]),
        "billed": "813",
    }
    listed = _query(client("logs"), [group], 'filter @type = "START" | fields @requestId')
    assert len(listed) == 200
    assert all(set(row) == {"@requestId", "@ptr"} for row in listed)


@pytest.mark.aws_behaviour("logs-insights-statistics", "lambda-logging-config")
def test_json_reports_in_a_shared_group_are_told_apart_by_their_streams(
    sandbox: EmbeddedSandbox, client: ClientFactory
) -> None:
    logs = client("logs")
    shared = "/apps/shared"
    logs.create_log_group(logGroupName=shared)
    config = {"LogFormat": "JSON", "LogGroup": shared}
    _function(client, "alpha", LoggingConfig=config)
    _function(client, "beta", LoggingConfig=config)
    put_reports(logs, shared, usage(50, (200, 700), (5.0, 9.0), 2), json_format=True, owner="alpha")
    put_reports(logs, shared, usage(80, (90, 150), (5.0, 9.0), 2), json_format=True, owner="beta")

    rows = _query(logs, [shared], REPORT_QUERY)
    by_function = {row["function"]: row for row in rows}
    assert set(by_function) == {"alpha", "beta"}
    assert (by_function["alpha"]["reports"], by_function["alpha"]["maxMemoryUsedMB"]) == (
        "50",
        "700",
    )
    assert (by_function["beta"]["reports"], by_function["beta"]["maxMemoryUsedMB"]) == ("80", "150")
    classic = _query(logs, [shared], 'filter @type = "REPORT" | stats count(*) as n')
    assert classic == [{"n": "0"}] or classic == []  # JSON records carry no @type
    flat = _query(
        logs,
        [shared],
        'filter type = "platform.report" | stats max(record.metrics.maxMemoryUsedMB) as m',
    )
    assert flat == [{"m": "700"}]


def test_data_put_for_a_seeded_function_joins_what_the_model_says(
    sandbox: EmbeddedSandbox, client: ClientFactory
) -> None:
    (seeded,) = sandbox.seed(["dev"], profiles=["steady"])
    (function,) = seeded.functions
    cloudwatch, logs = client("cloudwatch"), client("logs")
    model_max_ms = _stat(cloudwatch, function, "Duration", "Maximum")
    model_invocations = _stat(cloudwatch, function, "Invocations", "Sum")
    (model_p99,) = _stat(cloudwatch, function, "Duration", "p99")
    (model_row,) = _query(logs, [f"/aws/lambda/{function}"], CLASSIC_QUERY)
    assert model_max_ms == [pytest.approx(NAMED["steady"].duration_max_ms)]
    assert model_row["maxMB"] == str(int(NAMED["steady"].memory_max_mb))

    heavy = usage(200, (2_800, 2_900), (20_000.0, 28_000.0), peak_concurrency=400)
    put_reports(logs, f"/aws/lambda/{function}", heavy)
    put_metrics(cloudwatch, function, heavy)
    (row,) = _query(logs, [f"/aws/lambda/{function}"], CLASSIC_QUERY)
    assert row["maxMB"] == "2900"
    assert float(row["n"]) == pytest.approx(float(model_row["n"]) + 200)
    assert _stat(cloudwatch, function, "Duration", "Maximum") == [28_000.0]
    assert _stat(cloudwatch, function, "ConcurrentExecutions", "Maximum") == [400.0]
    assert _stat(cloudwatch, function, "Invocations", "Sum") == [
        pytest.approx(model_invocations[0] + 200)
    ]
    (p99,) = _stat(cloudwatch, function, "Duration", "p99")  # 200 among millions: a hair
    assert model_p99 <= p99 < 20_000.0


@pytest.mark.aws_behaviour("metric-percentiles")
def test_a_percentile_over_statistic_sets_has_no_datapoint(
    sandbox: EmbeddedSandbox, client: ClientFactory
) -> None:
    cloudwatch = client("cloudwatch", attempts=1)
    at = datetime.now(UTC) - timedelta(days=2)

    def put(function: str, **value: Any) -> None:
        cloudwatch.put_metric_data(
            Namespace="AWS/Lambda",
            MetricData=[
                {
                    "MetricName": "Duration",
                    "Dimensions": [{"Name": "FunctionName", "Value": function}],
                    "Timestamp": at,
                    "Unit": "Milliseconds",
                    **value,
                }
            ],
        )

    sets = {"SampleCount": 10.0, "Sum": 500.0, "Minimum": 10.0, "Maximum": 90.0}
    put("sets", StatisticValues=sets)
    assert _stat(cloudwatch, "sets", "Duration", "p99") == []  # not an error: no datapoint
    assert _stat(cloudwatch, "sets", "Duration", "Maximum") == [90.0]
    assert _stat(cloudwatch, "sets", "Duration", "Average") == [50.0]
    # one value repeated is as good as raw values
    put(
        "repeated",
        StatisticValues={"SampleCount": 4.0, "Sum": 20.0, "Minimum": 5.0, "Maximum": 5.0},
    )
    assert _stat(cloudwatch, "repeated", "Duration", "p99") == [5.0]
    put("raw", Values=[float(v) for v in range(1, 101)], Counts=[1.0] * 100)
    assert _stat(cloudwatch, "raw", "Duration", "p99") == [99.0]
    assert _stat(cloudwatch, "raw", "Duration", "p50") == [50.0]


def test_incoming_bytes_count_what_was_put(sandbox: EmbeddedSandbox, client: ClientFactory) -> None:
    group = _function(client, "sized")
    logs, cloudwatch = client("logs"), client("cloudwatch")
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    now = int(time.time() * 1000)
    messages = ["a" * 10, "é" * 5]
    logs.put_log_events(
        logGroupName=group,
        logStreamName="s",
        logEvents=[{"timestamp": now - 60_000, "message": m} for m in messages],
    )
    end = datetime.now(UTC) + timedelta(minutes=1)
    answer = cloudwatch.get_metric_data(
        MetricDataQueries=[
            {
                "Id": name.lower(),
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/Logs",
                        "MetricName": name,
                        "Dimensions": [{"Name": "LogGroupName", "Value": group}],
                    },
                    "Period": 3600,
                    "Stat": "Sum",
                },
            }
            for name in ("IncomingBytes", "IncomingLogEvents")
        ],
        StartTime=end - timedelta(hours=1),
        EndTime=end,
    )
    values = {r["Id"]: sum(r["Values"]) for r in answer["MetricDataResults"]}
    assert values == {"incomingbytes": (10 + 26) + (10 + 26), "incominglogevents": 2}


def test_filter_log_events_follows_the_filter_pattern_syntax(
    sandbox: EmbeddedSandbox, client: ClientFactory
) -> None:
    logs = client("logs", attempts=1)
    group = _function(client, "filtered")
    put_reports(logs, group, usage(30, (100, 200), (5.0, 9.0), 1))
    put_reports(logs, group, usage(20, (100, 200), (5.0, 9.0), 1), json_format=True)

    def messages(**kwargs: Any) -> list[str]:
        found, token = [], None
        while True:
            page = logs.filter_log_events(
                logGroupName=group, limit=25, **kwargs, **({"nextToken": token} if token else {})
            )
            found += [event["message"] for event in page["events"]]
            token = page.get("nextToken")
            if not token:
                return found

    assert len(messages()) == 30 * 3 + 20 * 2  # paged by 25
    either = messages(filterPattern='?"REPORT RequestId:" ?"platform.report"')
    assert len(either) == 50
    assert len(messages(filterPattern='{ $.type = "platform.report" }')) == 20
    assert len(messages(filterPattern="{ $.record.metrics.maxMemoryUsedMB > 150 }")) < 20
    assert len(messages(filterPattern='"RequestId" -REPORT')) == 60  # START and END lines
    assert len(messages(filterPattern="%Max Memory Used: [12][0-9]{2} MB%")) == 30
    with pytest.raises(ClientError) as refused:
        logs.filter_log_events(logGroupName=group, filterPattern="{ $.type = ")
    assert refused.value.response["Error"]["Code"] == "InvalidParameterException"


def test_filter_patterns_as_the_syntax_page_defines_them() -> None:
    report = "REPORT RequestId: 1\tDuration: 2.00 ms\tBilled Duration: 2 ms\tMax Memory Used: 64 MB"
    assert compile_pattern("")(report)
    assert compile_pattern("REPORT Duration")(report)
    assert not compile_pattern("REPORT ERROR")(report)
    assert compile_pattern("?ERROR ?Duration")(report)
    assert not compile_pattern("REPORT -Duration")(report)
    spaced = "127.0.0.1 frank [10/Oct/2000:13:25:15 -0700] GET 200 4996"
    assert compile_pattern("[ip, user, time, verb, status=200, size>4000]")(spaced)
    assert not compile_pattern("[ip, user, ..., status=404, size]")(spaced)
    assert compile_pattern("[ip=127.0.0.*, ...]")(spaced)
    record = json.dumps({"type": "platform.report", "record": {"metrics": {"m": 5}}, "ok": True})
    assert compile_pattern('{ $.type = "platform.*" && $.record.metrics.m >= 5 }')(record)
    assert compile_pattern("{ $.ok IS TRUE || $.missing = 1 }")(record)
    assert compile_pattern("{ $.missing NOT EXISTS }")(record)
    assert not compile_pattern('{ $.type != "platform.report" }')(record)
    for bad in ("{ $.type = ", "[a, b", '"unclosed', "%[%"):
        with pytest.raises(PatternError):
            compile_pattern(bad)


def test_logging_config_sends_the_models_lines_where_and_as_it_says(
    sandbox: EmbeddedSandbox, client: ClientFactory
) -> None:
    (seeded,) = sandbox.seed(["dev"], profiles=["steady"])
    (function,) = seeded.functions
    logs, lam = client("logs"), client("lambda")
    custom = "/apps/orders"
    logs.create_log_group(logGroupName=custom)
    with sandbox.configured(update_s=0.0):
        lam.update_function_configuration(
            FunctionName=function, LoggingConfig={"LogFormat": "JSON", "LogGroup": custom}
        )
    assert lam.get_function(FunctionName=function)["Configuration"]["LoggingConfig"] == {
        "LogFormat": "JSON",
        "LogGroup": custom,
        "ApplicationLogLevel": "INFO",
        "SystemLogLevel": "INFO",
    }
    now = int(time.time())
    later = {"startTime": now + 3600, "endTime": now + 2 * 3600}  # the model answers ahead
    query_id = logs.start_query(logGroupNames=[custom], queryString=REPORT_QUERY, **later)
    (row,) = [
        {c["field"]: c["value"] for c in r}
        for r in logs.get_query_results(queryId=query_id["queryId"])["results"]
    ]
    assert row["function"] == function  # the stream names it: a group of the owner's choice
    assert row["maxMemoryUsedMB"] == str(int(NAMED["steady"].memory_max_mb))
    events = logs.filter_log_events(
        logGroupName=custom, startTime=later["startTime"] * 1000, endTime=later["endTime"] * 1000
    )["events"]
    assert {json.loads(e["message"]).get("type") for e in events} >= {
        "platform.report",
        "platform.start",
    }
    assert all(e["logStreamName"].split("/")[3].startswith(f"{function}[") for e in events)
    default = logs.start_query(
        logGroupNames=[f"/aws/lambda/{function}"], queryString=REPORT_QUERY, **later
    )
    assert logs.get_query_results(queryId=default["queryId"])["results"] == []
    assert stream_name(datetime(2026, 1, 2, tzinfo=UTC), "fn").startswith("2026/01/02/fn[$LATEST]")
