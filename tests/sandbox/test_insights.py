"""Logs Insights over modelled log groups, over HTTP: the optimizer's query reads the profile's
memory back from REPORT lines, queries run and end on the sandbox clock, and AWS's limits
hold (50 groups a query, 30 queries at once, StopQuery only while running, a malformed
query refused). Data put as AWS writes it: tests/sandbox/test_put_data.py."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from optimizer_async.sandbox.clock import ManualClock
from optimizer_async.sandbox.insights import language
from optimizer_async.sandbox.seeder import Seeder
from optimizer_async.sandbox.server import EmbeddedSandbox
from optimizer_async.sandbox.workload.profiles import NAMED
from optimizer_async.sandbox.workload.reports import ReportLine
from tests.conftest import ClientFactory
from tests.sandbox.helpers import evidence, model_now, whole_hour

pytestmark = pytest.mark.usefixtures("clock")

ACCOUNT = "123456789012"
FORTNIGHT = timedelta(days=14)
REPORT_QUERY = (
    'filter @type = "REPORT"\n'
    "| stats count(*) as reports, max(@maxMemoryUsed) as maxMemoryUsed, "
    "pct(@maxMemoryUsed, 99) as p99MemoryUsed, max(@billedDuration) as maxBilledDuration, "
    "avg(@billedDuration) as avgBilledDuration, max(@initDuration) as maxInitDuration by @log"
)
BRIEF_LINE = (
    "REPORT RequestId: 3604209a-e9a3-11e6-939a-754dd98c7be3\tDuration: 12.34 ms"
    "\tBilled Duration: 13 ms\tMemory Size: 3008 MB\tMax Memory Used: 512 MB"
    "\tInit Duration: 150.12 ms"
)


def _seed(sandbox: EmbeddedSandbox, mix: list[str]) -> list[str]:
    seeder = Seeder(sandbox.endpoint_url, functions_per_env=len(mix), profiles=mix)
    return list(seeder.seed(["dev"])[0].functions)


def _groups(functions: list[str]) -> list[str]:
    return [f"/aws/lambda/{function}" for function in functions]


def _start(logs: Any, groups: list[str], start: Any, end: Any, query: str = REPORT_QUERY) -> str:
    answer = logs.start_query(
        logGroupNames=groups,
        startTime=int(start.timestamp()),
        endTime=int(end.timestamp()),
        queryString=query,
    )
    return str(answer["queryId"])


def _rows(answer: dict[str, Any]) -> dict[str, dict[str, str]]:
    rows = [{cell["field"]: cell["value"] for cell in row} for row in answer["results"]]
    return {row.get("@log", ""): row for row in rows}


def test_the_optimizers_query_reads_each_profile_back(
    client: ClientFactory, sandbox: EmbeddedSandbox, clock: ManualClock
) -> None:
    mix = ["steady", "memory-hungry", "slow", "idle"]
    functions = _seed(sandbox, mix)
    logs = client("logs")
    end = whole_hour(model_now(sandbox))
    with sandbox.configured(insights_query_s=1.5):
        query_id = _start(logs, _groups(functions), end - FORTNIGHT, end)
        running = logs.get_query_results(queryId=query_id)
        assert (running["status"], running["results"]) == ("Running", [])
        clock.advance(1.0)
        assert logs.get_query_results(queryId=query_id)["status"] == "Running"
        clock.advance(0.5)
        answer = logs.get_query_results(queryId=query_id)
    assert answer["status"] == "Complete"

    rows = _rows(answer)
    assert set(rows) == {f"{ACCOUNT}:/aws/lambda/{f}" for f in functions[:3]}  # idle: no row
    for function, name in zip(functions[:3], mix[:3], strict=True):
        profile = NAMED[name]
        row = rows[f"{ACCOUNT}:/aws/lambda/{function}"]
        assert row["reports"] == str(14 * int(profile.invocations_per_day))
        assert row["maxMemoryUsed"] == str(int(profile.memory_max_mb) * 1_000_000)
        assert row["p99MemoryUsed"] == str(int(profile.memory_p99_mb) * 1_000_000)
        assert row["maxBilledDuration"] == str(int(profile.duration_max_ms))
        assert row["maxInitDuration"] == str(int(profile.init_duration_ms))
        mean = float(row["avgBilledDuration"])  # REPORT lines round up to whole ms
        assert profile.duration_p50_ms < mean < profile.duration_p99_ms
    assert rows[f"{ACCOUNT}:/aws/lambda/{functions[0]}"]["maxMemoryUsed"] == "300000000"
    assert rows[f"{ACCOUNT}:/aws/lambda/{functions[1]}"]["p99MemoryUsed"] == "1350000000"

    metrics = evidence(client("cloudwatch"), functions, end - FORTNIGHT, end)
    ingested = sum(sum(metrics[f]["bytes"]) for f in functions)
    reports = sum(float(row["reports"]) for row in rows.values())
    assert answer["statistics"]["bytesScanned"] == ingested
    assert answer["statistics"]["recordsMatched"] == reports
    assert answer["statistics"]["recordsScanned"] == 4 * reports  # START, a line, END, REPORT


def test_the_memory_size_caps_what_out_of_memory_invocations_report(
    client: ClientFactory, sandbox: EmbeddedSandbox, clock: ManualClock
) -> None:
    (hungry,) = _seed(sandbox, ["memory-hungry"])
    with sandbox.configured(update_s=0.0):
        client("lambda").update_function_configuration(FunctionName=hungry, MemorySize=1024)
    clock.advance(15 * 86_400)
    end = whole_hour(model_now(sandbox))
    logs = client("logs")
    answer = logs.get_query_results(queryId=_start(logs, _groups([hungry]), end - FORTNIGHT, end))
    (row,) = _rows(answer).values()
    assert (row["maxMemoryUsed"], row["p99MemoryUsed"]) == ("1024000000", "1024000000")
    assert row["reports"] == "3500000"  # they still ran, and failed


def test_identifiers_aggregates_and_event_listings(
    client: ClientFactory, sandbox: EmbeddedSandbox
) -> None:
    (steady,) = _seed(sandbox, ["steady"])
    logs = client("logs")
    end = whole_hour(model_now(sandbox))
    arn = f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/lambda/{steady}:*"
    started = logs.start_query(
        logGroupIdentifiers=[arn],
        startTime=int((end - FORTNIGHT).timestamp()),
        endTime=int(end.timestamp()),
        queryString="stats count(*), count(@initDuration),\n  min(@maxMemoryUsed) as least,"
        " SUM(@billedDuration) as billed, pct(@duration, 50)",
    )
    answer = logs.get_query_results(queryId=started["queryId"])
    (row,) = answer["results"]  # no `by`: one row
    cells = {cell["field"]: cell["value"] for cell in row}
    assert cells["count(*)"] == str(4 * 3_500_000)  # no filter: every event of an invocation
    assert cells["count(@initDuration)"] == "35000"  # the cold starts, 1 %
    assert cells["pct(@duration, 50)"] == "180"
    assert int(cells["least"]) < 180_000_000
    assert float(cells["billed"]) > 0

    other = _start(logs, _groups([steady]), end - FORTNIGHT, end, "fields @message | limit 20")
    listing = logs.get_query_results(queryId=other)  # each of the model's lines once
    assert listing["status"] == "Complete"
    assert len(listing["results"]) == 20
    messages = [cell["value"] for row in listing["results"] for cell in row]
    assert any(message.startswith("REPORT RequestId: ") for message in messages)
    assert all(
        {cell["field"] for cell in row} == {"@message", "@ptr"} for row in listing["results"]
    )

    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        _start(logs, ["/aws/lambda/nobody"], end - FORTNIGHT, end)
    with pytest.raises(ClientError, match="InvalidParameterException"):
        _start(logs, [f"/aws/lambda/{steady}"] * 51, end - FORTNIGHT, end)


def test_thirty_queries_at_once_then_limit_exceeded(
    client: ClientFactory, sandbox: EmbeddedSandbox, clock: ManualClock
) -> None:
    (steady,) = _seed(sandbox, ["steady"])
    logs = client("logs", attempts=1)
    end = whole_hour(model_now(sandbox))
    groups = _groups([steady])
    with sandbox.configured(insights_query_s=10.0):
        first = [_start(logs, groups, end - FORTNIGHT, end) for _ in range(30)]
        with pytest.raises(ClientError) as refused:
            _start(logs, groups, end - FORTNIGHT, end)
        error = refused.value.response["Error"]
        assert error["Code"] == "LimitExceededException"
        assert error["Message"] == "Account maximum query concurrency limit of [30] reached"

        assert logs.stop_query(queryId=first[0])["success"] is True
        cancelled = logs.get_query_results(queryId=first[0])
        assert cancelled["status"] == "Cancelled"
        with pytest.raises(ClientError, match="InvalidParameterException"):
            logs.stop_query(queryId=first[0])  # no longer running
        _start(logs, groups, end - FORTNIGHT, end)  # the cancelled query freed a place

        statuses = {q["queryId"]: q["status"] for q in logs.describe_queries()["queries"]}
        assert statuses[first[0]] == "Cancelled"
        assert sum(status == "Running" for status in statuses.values()) == 30
        clock.advance(10.0)
        assert logs.get_query_results(queryId=first[1])["status"] == "Complete"
        _start(logs, groups, end - FORTNIGHT, end)  # finished queries free their places
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        logs.stop_query(queryId="no-such-query")


def test_a_report_line_formats_and_parses_back_exactly() -> None:
    line = ReportLine.parse(BRIEF_LINE)
    assert line == ReportLine("3604209a-e9a3-11e6-939a-754dd98c7be3", 12.34, 13, 3008, 512, 150.12)
    assert line.format() == BRIEF_LINE
    assert line.fields() == {
        "@type": "REPORT",
        "@requestId": "3604209a-e9a3-11e6-939a-754dd98c7be3",
        "@duration": 12.34,
        "@billedDuration": 13.0,
        "@memorySize": 3_008_000_000.0,
        "@maxMemoryUsed": 512_000_000.0,
        "@initDuration": 150.12,
    }
    warm = ReportLine.of("id", duration_ms=899.996, memory_size_mb=1024, max_memory_used_mb=300.4)
    assert warm.format() == (
        "REPORT RequestId: id\tDuration: 900.00 ms\tBilled Duration: 900 ms"
        "\tMemory Size: 1024 MB\tMax Memory Used: 300 MB"
    )
    assert ReportLine.parse(warm.format()) == warm
    with pytest.raises(ValueError, match="not a Lambda REPORT line"):
        ReportLine.parse("START RequestId: id Version: $LATEST")


def test_the_language_parses_the_optimizers_query_and_refuses_malformed_ones(
    client: ClientFactory, sandbox: EmbeddedSandbox
) -> None:
    query = language.parse(REPORT_QUERY.replace("\n", "\n   "))
    (filter_, stats) = query.commands
    assert isinstance(filter_, language.Filter)
    assert isinstance(stats, language.Stats)
    assert [a.name for a in stats.aggregates] == [
        "reports",
        "maxMemoryUsed",
        "p99MemoryUsed",
        "maxBilledDuration",
        "avgBilledDuration",
        "maxInitDuration",
    ]
    assert stats.aggregates[2].expr == language.Call(
        "pct", (language.Field("@maxMemoryUsed"), language.Literal(99.0))
    )
    (steady,) = _seed(sandbox, ["steady"])
    logs = client("logs", attempts=1)
    end = whole_hour(model_now(sandbox))
    for text in (
        "",
        "stats max(*)",
        "stats pct(@duration)",
        "stats @duration",
        "filter (@type = 'REPORT'",
        "fields @message | limit 0",
        "frobnicate @message",
    ):
        with pytest.raises(language.QueryError):
            language.parse(text)
        if text:  # botocore refuses an empty query string itself
            with pytest.raises(ClientError) as refused:
                _start(logs, _groups([steady]), end - FORTNIGHT, end, text)
            assert refused.value.response["Error"]["Code"] == "MalformedQueryException"
