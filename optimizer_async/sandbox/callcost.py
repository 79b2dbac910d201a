"""What the sandbox costs: seeding time, memory per environment, CPU per call of a mix.

    python -m optimizer_async.sandbox.callcost --envs 2000 --rounds 1

Starts `serve --seed` in a child process (so only the sandbox's own CPU is counted, not
boto3's), times seeding until the "sandbox ready" line, reads the child's RSS, then drives
the optimizer's call mix with boto3 from this process and divides the calls by the CPU
seconds the child spent serving them. Linux only (reads /proc). A measuring tool, not a
test: its numbers depend on the machine, so no test asserts them.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.config import Config

from optimizer_async.definitions.environment_spec import ROLE_LOGS_POLICY_NAME
from optimizer_async.definitions.naming import EnvironmentNames
from optimizer_async.sandbox.server import ACCESS_KEY_ID, SECRET_ACCESS_KEY

Call = Callable[[dict[str, Any]], object]
_TICKS = os.sysconf("SC_CLK_TCK")
_ACCOUNT = "123456789012"


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, all its threads included."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _metric_queries(suffix: str, index: int) -> list[dict[str, Any]]:
    """The evidence reader's eight queries for one environment's function."""
    names = EnvironmentNames(suffix)
    function, group = names.function(), names.function_log_group()

    def metric(tag: str, namespace: str, metric: str, stat: str) -> dict[str, Any]:
        name, value = (
            ("LogGroupName", group) if namespace == "AWS/Logs" else ("FunctionName", function)
        )
        dimensions = [{"Name": name, "Value": value}]
        return {
            "Id": f"{tag}{index}",
            "MetricStat": {
                "Metric": {"Namespace": namespace, "MetricName": metric, "Dimensions": dimensions},
                "Period": 14 * 86_400,
                "Stat": stat,
            },
        }

    return [
        metric("i", "AWS/Lambda", "Invocations", "Sum"),
        metric("e", "AWS/Lambda", "Errors", "Sum"),
        metric("t", "AWS/Lambda", "Throttles", "Sum"),
        metric("p", "AWS/Lambda", "Duration", "p99"),
        metric("m", "AWS/Lambda", "Duration", "Maximum"),
        metric("d", "AWS/Lambda", "Duration", "Sum"),
        metric("c", "AWS/Lambda", "ConcurrentExecutions", "Maximum"),
        metric("b", "AWS/Logs", "IncomingBytes", "Sum"),
    ]


def _batch_calls(suffixes: Sequence[str], now: datetime) -> list[Call]:
    """What the evidence reader asks for up to 50 environments at once (4 calls + 1 query)."""
    start = now - timedelta(days=14)
    queries = [q for i, suffix in enumerate(suffixes) for q in _metric_queries(suffix, i)]
    queries.append(  # a metric moto answers from stored datapoints, not the model
        {
            "Id": "stored",
            "MetricStat": {
                "Metric": {"Namespace": "Custom/Sandbox", "MetricName": "Stored"},
                "Period": 3600,
                "Stat": "Sum",
            },
        }
    )
    groups = [EnvironmentNames(suffix).function_log_group() for suffix in suffixes]
    return [
        lambda c: c["cloudwatch"].get_metric_data(
            MetricDataQueries=queries, StartTime=start, EndTime=now
        ),
        lambda c: c["logs"].describe_log_groups(logGroupIdentifiers=groups),
        lambda c: c["logs"].get_query_results(
            queryId=c["logs"].start_query(
                logGroupNames=groups,
                startTime=int(start.timestamp()),
                endTime=int(now.timestamp()),
                queryString="filter @type = 'REPORT' | stats count(*) as reports by @log",
            )["queryId"]
        ),
    ]


def _environment_calls(suffix: str) -> list[Call]:
    """One environment's own calls (1 function): discovery, the steps' reads and writes."""
    names = EnvironmentNames(suffix)
    function, group, role = names.function(), names.function_log_group(), names.role
    bucket, secret = names.bucket(_ACCOUNT), names.database_url_secret
    alarm = {
        "AlarmName": f"{function}-errors",
        "Namespace": "AWS/Lambda",
        "MetricName": "Errors",
        "Dimensions": [{"Name": "FunctionName", "Value": function}],
        "Statistic": "Sum",
        "Period": 300,
        "EvaluationPeriods": 1,
        "Threshold": 1.0,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
    }
    policy = '{"Version": "2012-10-17", "Statement": []}'
    arn = f"arn:aws:lambda:us-east-1:{_ACCOUNT}:function:{function}"

    def queue(c: dict[str, Any]) -> object:
        url = c["sqs"].create_queue(QueueName=f"{function}-dlq")["QueueUrl"]
        c["sqs"].get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return c["sqs"].set_queue_attributes(
            QueueUrl=url, Attributes={"MessageRetentionPeriod": "1209600"}
        )

    return [
        lambda c: c["lambda"].get_function(FunctionName=function),
        lambda c: c["lambda"].get_function_concurrency(FunctionName=function),
        lambda c: c["lambda"].list_tags(Resource=arn),
        lambda c: c["cloudwatch"].describe_alarms(AlarmNames=[alarm["AlarmName"]]),
        lambda c: c["cloudwatch"].put_metric_alarm(**alarm),
        lambda c: c["cloudwatch"].describe_alarms(AlarmNamePrefix=function),
        lambda c: c["lambda"].put_function_concurrency(
            FunctionName=function, ReservedConcurrentExecutions=0
        ),
        lambda c: c["logs"].put_retention_policy(logGroupName=group, retentionInDays=30),
        lambda c: c["iam"].get_role_policy(RoleName=role, PolicyName=ROLE_LOGS_POLICY_NAME),
        lambda c: c["iam"].put_role_policy(
            RoleName=role, PolicyName="extra", PolicyDocument=policy
        ),
        lambda c: c["s3"].get_bucket_versioning(Bucket=bucket),
        lambda c: c["s3"].get_bucket_lifecycle_configuration(Bucket=bucket),
        lambda c: c["secretsmanager"].describe_secret(SecretId=secret),
        queue,
        lambda c: c["lambda"].update_function_configuration(FunctionName=function, Timeout=299),
        lambda c: c["lambda"].get_function_configuration(FunctionName=function),
    ]


_CALLS_PER_ENV = 18  # the queue's function makes three
_CALLS_PER_BATCH = 4  # StartQuery and GetQueryResults in one
_BATCH = 50


def _clients(endpoint: str) -> dict[str, Any]:
    config = Config(retries={"mode": "standard", "max_attempts": 1}, max_pool_connections=16)
    session = boto3.session.Session(
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        region_name="us-east-1",
    )
    services = ("lambda", "cloudwatch", "logs", "iam", "s3", "secretsmanager", "sqs")
    return {s: session.client(s, endpoint_url=endpoint, config=config) for s in services}  # type: ignore[call-overload]


def run_mix(endpoint: str, suffixes: Sequence[str], threads: int) -> tuple[int, int]:
    """Every environment's calls, plus ListFunctions paged; (calls made, calls failed)."""
    clients = _clients(endpoint)
    now = datetime.now(UTC)
    calls: list[Call] = [c for suffix in suffixes for c in _environment_calls(suffix)]
    batches = [suffixes[i : i + _BATCH] for i in range(0, len(suffixes), _BATCH)]
    calls += [c for batch in batches for c in _batch_calls(batch, now)]
    failed = 0

    def one(call: Call) -> int:
        try:
            call(clients)
        except Exception:  # an AWS error is a served call too; counted, not fatal
            return 1
        return 0

    with ThreadPoolExecutor(max_workers=threads) as pool:
        failed = sum(pool.map(one, calls))
    pages = 0
    for _ in clients["lambda"].get_paginator("list_functions").paginate():
        pages += 1
    made = len(suffixes) * _CALLS_PER_ENV + len(batches) * _CALLS_PER_BATCH + pages
    return made, failed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m optimizer_async.sandbox.callcost")
    parser.add_argument("--envs", type=int, default=200, help="environments to seed")
    parser.add_argument("--rounds", type=int, default=1, help="times to run the call mix")
    parser.add_argument("--threads", type=int, default=8, help="concurrent client threads")
    parser.add_argument("--profile", default="none", help="sandbox profile (none: no shaping)")
    args = parser.parse_args(argv)
    suffixes = [f"e{index}" for index in range(args.envs)]
    port = _free_port()
    command = [
        sys.executable, "-m", "optimizer_async.sandbox", "serve", "--port", str(port),
        "--profile", args.profile,
    ]  # fmt: skip
    if suffixes:
        command += ["--seed", ",".join(suffixes)]
    began = time.monotonic()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)  # noqa: S603 - our own module
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        if "sandbox ready" not in line:
            print(f"the sandbox did not start: {line!r}", file=sys.stderr)
            return 1
        seeded_s = time.monotonic() - began
        seed_cpu, rss = cpu_seconds(child.pid), rss_mb(child.pid)
        print(
            f"seeded {args.envs} environments in {seeded_s:.1f} s wall, {seed_cpu:.1f} s CPU; "
            f"RSS {rss:.0f} MB ({rss / max(1, args.envs):.2f} MB per environment, base included)"
        )
        endpoint = f"http://127.0.0.1:{port}"
        for round_ in range(args.rounds):
            before, started = cpu_seconds(child.pid), time.monotonic()
            made, failed = run_mix(endpoint, suffixes, args.threads)
            cpu = cpu_seconds(child.pid) - before
            wall = time.monotonic() - started
            print(
                f"round {round_ + 1}: {made} calls ({failed} answered with an error) in "
                f"{wall:.1f} s wall; sandbox CPU {cpu:.2f} s = {1000 * cpu / made:.2f} ms per "
                f"call = {made / cpu:.0f} calls/s per core; RSS {rss_mb(child.pid):.0f} MB"
            )
    finally:
        child.terminate()
        child.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
