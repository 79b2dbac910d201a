"""The AWS behaviours the tests rely on that an emulator may lack, and where each stands.

A test that relies on one is marked `@pytest.mark.aws_behaviour("key", ...)`; against
LocalStack (`make test-localstack`) a test relying on a behaviour LocalStack lacks is
skipped with the behaviour named (`-rs` lists every skip and its reason: nothing is skipped
silently), as is a test marked `sandbox_only` (it needs the sandbox's own controls: its
clock, faults, call counts, workload model, IAM enforcement, member accounts).

`python -m tests.conformance > docs/conformance.md` writes the table (behaviour, AWS
source, sandbox, LocalStack, the tests relying on it) from these entries and the marks;
`tests/unit/test_conformance.py` keeps the file equal to what this module writes.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

LOCALSTACK: Final = "LocalStack 4.14.0"  # the version docker-compose.yml and `make localstack` pin
_AWS: Final = "https://docs.aws.amazon.com"


@dataclass(frozen=True)
class Behaviour:
    key: str
    what: str  # what AWS does
    source: str  # where AWS documents it
    sandbox: str  # how the embedded sandbox does it
    localstack: str  # what LocalStack does
    localstack_has: bool  # whether LocalStack does it as AWS does
    optimizer: str = ""  # how the optimizer copes where an endpoint lacks it


BEHAVIOURS: Final[tuple[Behaviour, ...]] = (
    Behaviour(
        "logs-insights-statistics",
        "Logs Insights runs `filter`, `parse`, `fields` and `stats ... by` over the groups' "
        "events, Lambda's REPORT fields and JSON keys discovered",
        f"{_AWS}/AmazonCloudWatch/latest/logs/CWL_QuerySyntax.html",
        "runs the language over put events and the workload model's (sandbox/insights)",
        "ignores `filter` and `stats`: one `@ptr` row per event",
        False,
        "reads the reports event by event (FilterLogEvents)",
    ),
    Behaviour(
        "metric-percentiles",
        "GetMetricData computes a percentile (p99) over raw values; over statistic sets, "
        "no datapoint",
        f"{_AWS}/AmazonCloudWatch/latest/monitoring/cloudwatch_concepts.html#Percentiles",
        "computes it over put values and the model's distribution; none over statistic sets",
        "answers every percentile with a 500",
        False,
        "asks twice per run, then the maximum stands in for the p99",
    ),
    Behaviour(
        "metric-math",
        "GetMetricData computes metric math (`Expression`)",
        f"{_AWS}/AmazonCloudWatch/latest/monitoring/using-metric-math.html",
        "moto's evaluation",
        "answers a 500",
        False,
        "reads no metric math (its alarms use it; LocalStack never evaluates them)",
    ),
    Behaviour(
        "describe-log-groups-paging",
        "DescribeLogGroups answers at most `limit` (1-50) groups a page, with a nextToken, "
        "and only the `logGroupIdentifiers` asked for",
        f"{_AWS}/AmazonCloudWatchLogs/latest/APIReference/API_DescribeLogGroups.html",
        "moto's paging; identifiers by the sandbox (logs_group_identifiers)",
        "ignores `limit` (one page) and `logGroupIdentifiers` (every group of the region)",
        False,
        "keeps only the groups it asked for, and follows tokens while there are any",
    ),
    Behaviour(
        "dashboard-not-found",
        "GetDashboard of a missing dashboard answers ResourceNotFound (404)",
        f"{_AWS}/AmazonCloudWatch/latest/APIReference/API_GetDashboard.html",
        "moto's ResourceNotFound",
        "answers InvalidParameterValue (400)",
        False,
    ),
    Behaviour(
        "reserved-concurrency-zero",
        "GetFunction shows a reservation of 0 (the owner disabled the function)",
        f"{_AWS}/lambda/latest/dg/configuration-concurrency.html",
        "kept and shown (patches/lambda_concurrency)",
        "leaves `Concurrency` out when it is 0",
        False,
        "cannot tell it from no reservation there: it would reserve the target",
    ),
    Behaviour(
        "s3-conditional-delete",
        "DeleteObject with If-Match deletes only the version it names (412 otherwise)",
        f"{_AWS}/AmazonS3/latest/API/API_DeleteObject.html",
        "made atomic (patches/s3_conditional_writes)",
        "answers 501 NotImplemented",
        False,
        "a lease in a state bucket is then never given back: later runs find it held",
    ),
    Behaviour(
        "price-list-api",
        "The Price List API answers GetProducts for AWSLambda",
        f"{_AWS}/aws-cost-management/latest/APIReference/API_pricing_GetProducts.html",
        "from a dated copy of the AWSLambda price list (patches/price_list)",
        "not emulated",
        False,
        "--prices table (the default) needs no API",
    ),
    Behaviour(
        "lambda-environment-limit",
        "A function's environment variables total at most 4 KB (the compact JSON); an "
        "update over it is refused whole",
        f"{_AWS}/lambda/latest/dg/gettingstarted-limits.html",
        "enforced with Lambda's error (patches/lambda_environment_limit)",
        "enforced",
        True,
    ),
    Behaviour(
        "lambda-logging-config",
        "LoggingConfig (Text or JSON, a group of the owner's choice, shared or not) is "
        "kept; streams in a chosen group name the function",
        f"{_AWS}/lambda/latest/dg/monitoring-cloudwatchlogs-loggroups.html",
        "kept, validated and honoured by the model's lines",
        "kept",
        True,
    ),
)
BY_KEY: Final = {behaviour.key: behaviour for behaviour in BEHAVIOURS}
SANDBOX_CONTROLS: Final = "needs the embedded sandbox's own controls"


def lacking(keys: tuple[Any, ...]) -> list[Behaviour]:
    """Of these behaviours (a mark's arguments), those LocalStack lacks; an unknown key is
    an error in the test, not a behaviour."""
    unknown = [key for key in keys if key not in BY_KEY]
    if unknown:
        raise KeyError(f"no such AWS behaviour in tests/conformance.py: {', '.join(unknown)}")
    return [BY_KEY[key] for key in keys if not BY_KEY[key].localstack_has]


def skip_reason(keys: tuple[Any, ...]) -> str | None:
    missing = lacking(keys)
    if not missing:
        return None
    return f"{LOCALSTACK} lacks: " + "; ".join(f"{b.key} ({b.localstack})" for b in missing)


def _marks(obj: Any) -> list[Any]:
    found = getattr(obj, "pytestmark", [])
    return list(found) if isinstance(found, list) else [found]


def marked_tests() -> Iterator[tuple[str, tuple[str, ...]]]:
    """(test id, behaviour keys) for every test function of tests/ marked aws_behaviour."""
    import tests

    for info in pkgutil.walk_packages(tests.__path__, "tests."):
        if not info.name.rsplit(".", 1)[-1].startswith("test_"):
            continue
        module = importlib.import_module(info.name)
        shared = [m for m in _marks(module) if m.name == "aws_behaviour"]
        for name, obj in sorted(vars(module).items()):
            if not name.startswith("test_") or not callable(obj):
                continue
            marks = shared + [m for m in _marks(obj) if m.name == "aws_behaviour"]
            keys = tuple(key for mark in marks for key in mark.args)
            if keys:
                path = info.name.replace(".", "/") + ".py"
                yield f"{path}::{name}", keys


def table() -> str:
    relying: dict[str, list[str]] = {behaviour.key: [] for behaviour in BEHAVIOURS}
    for test, keys in marked_tests():
        for key in keys:
            relying[BY_KEY[key].key].append(f"`{test}`")
    lines = [
        "# Conformance: the AWS behaviours the tests rely on",
        "",
        "Generated by `python -m tests.conformance > docs/conformance.md` from",
        "`tests/conformance.py` and the tests' `aws_behaviour` marks (a test keeps it equal).",
        f"Against {LOCALSTACK} (`make test-localstack`) a test relying on a behaviour it lacks",
        "is skipped with the behaviour named, as is a test that " + SANDBOX_CONTROLS + ".",
        "",
        f"| behaviour | AWS | source | sandbox | {LOCALSTACK} | the optimizer without it | tests |",
        "|---|---|---|---|---|---|---|",
    ]
    for b in BEHAVIOURS:
        local = ("as AWS: " if b.localstack_has else "**lacks**: ") + b.localstack
        tests = "<br>".join(relying[b.key]) or "-"
        source = f"[docs]({b.source})"
        lines.append(
            f"| `{b.key}` | {b.what} | {source} | {b.sandbox} | {local} | {b.optimizer or '-'} "
            f"| {tests} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(table(), end="")
