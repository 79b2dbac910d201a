"""The optimizer and Lambda as it is today, on the sandbox and on LocalStack alike: an owner's
reservation of 0 kept, Lambda's 4 KB limit on environment variables respected, memory
evidence from functions that log in the JSON format or to a group they share, and a run
that leaves the process's signal handlers as it found them."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

import pytest

from optimizer_async.aws.limits import MAX_ENVIRONMENT_BYTES, environment_size
from optimizer_async.sandbox.seeder import Seeder
from tests.aws_data import put_metrics, put_reports, usage
from tests.integration.conftest import Optimize, Unique

Seed = Callable[..., list[str]]


def _functions(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {fn["name"]: fn for env in report["environments"] for fn in env["functions"]}


def _settled(lam: Any, function: str) -> dict[str, Any]:
    """The function once no update is in progress (bounded: an emulator's updates settle
    in moments)."""
    for _ in range(200):
        config: dict[str, Any] = lam.get_function_configuration(FunctionName=function)
        if config.get("LastUpdateStatus") != "InProgress":
            return config
        time.sleep(0.05)
    raise AssertionError(f"{function} is still updating")


@pytest.mark.aws_behaviour("reserved-concurrency-zero")
def test_a_reservation_of_zero_survives_a_run_and_is_said(
    seed: Seed, unique: Unique, optimize: Optimize, client: Callable[..., Any]
) -> None:
    (suffix,) = seed(unique("off"))
    function = f"lambda-function-{suffix}"
    lam = client("lambda")
    lam.put_function_concurrency(FunctionName=function, ReservedConcurrentExecutions=0)
    code, report = optimize("--suffix", suffix)
    assert code == 0, report
    outcome = _functions(report)[function]
    assert "reserved concurrency 0 kept: the function is disabled by its owner" in outcome["notes"]
    assert not [c for c in outcome["changes"] if c["setting"] == "ReservedConcurrentExecutions"]
    live = lam.get_function(FunctionName=function)
    assert live["Concurrency"] == {"ReservedConcurrentExecutions": 0}


@pytest.mark.aws_behaviour("lambda-environment-limit")
def test_variables_that_would_pass_4_kb_are_held_back_and_the_rest_applied(
    seed: Seed, unique: Unique, optimize: Optimize, client: Callable[..., Any]
) -> None:
    (suffix,) = seed(unique("big"))
    function = f"lambda-function-{suffix}"
    lam = client("lambda")
    variables = dict(_settled(lam, function)["Environment"]["Variables"])
    variables["PADDING"] = ""
    variables["PADDING"] = "x" * (4_056 - environment_size(variables))
    assert environment_size(variables) == 4_056  # the two ARNs would take it past 4 KB
    lam.update_function_configuration(FunctionName=function, Environment={"Variables": variables})
    _settled(lam, function)

    code, report = optimize("--suffix", suffix)
    outcome = _functions(report)[function]
    held = [c for c in outcome["changes"] if c["status"] == "blocked"]
    assert {c["setting"] for c in held} == {
        "Environment.Variables.DATABASE_URL_SECRET_ARN",
        "Environment.Variables.API_KEY_SECRET_ARN",
    }
    assert all(f"over Lambda's {MAX_ENVIRONMENT_BYTES:,}-byte limit" in c["error"] for c in held)
    assert code == 1  # asked for, not done: said, and the exit code says so
    applied = {c["setting"]: c["after"] for c in outcome["changes"] if c["status"] == "applied"}
    assert applied["MemorySize"] == 1024
    config = _settled(lam, function)
    assert config["MemorySize"] == 1024
    assert config["Environment"]["Variables"] == variables  # untouched, byte for byte


@pytest.fixture
def logging_fleet(endpoint_url: str, client: Callable[..., Any], unique: Unique) -> dict[str, str]:
    """Three functions: one logging JSON to its own group, two sharing a group of their
    owner's choice (Text). Role -> function."""
    roles = {role: unique(role) for role in ("json", "left", "right")}
    seeder = Seeder(endpoint_url, sandbox_control=False, profiles=("idle",))
    functions = {env.suffix: env.functions[0] for env in seeder.seed(list(roles.values()))}
    named = {role: functions[suffix] for role, suffix in roles.items()}
    lam, logs = client("lambda"), client("logs")
    shared = f"/apps/{unique('shared')}"
    logs.create_log_group(logGroupName=shared)
    lam.update_function_configuration(
        FunctionName=named["json"], LoggingConfig={"LogFormat": "JSON"}
    )
    for role in ("left", "right"):
        lam.update_function_configuration(
            FunctionName=named[role], LoggingConfig={"LogFormat": "Text", "LogGroup": shared}
        )
    for function in named.values():
        _settled(lam, function)
    used = {
        "json": usage(60, (300, 1_500), (5.0, 50.0), 3),
        "left": usage(40, (100, 1_800), (5.0, 50.0), 3),
        "right": usage(70, (100, 420), (5.0, 50.0), 3),
    }
    put_reports(logs, f"/aws/lambda/{named['json']}", used["json"], json_format=True)
    put_reports(logs, shared, used["left"], owner=named["left"])
    put_reports(logs, shared, used["right"], owner=named["right"])
    for role, function in named.items():
        put_metrics(client("cloudwatch"), function, used[role])
    return named


@pytest.mark.aws_behaviour("lambda-logging-config")
def test_json_format_and_shared_group_functions_each_get_their_own_memory(
    logging_fleet: dict[str, str], optimize: Optimize
) -> None:
    suffixes = [f.removeprefix("lambda-function-") for f in logging_fleet.values()]
    code, report = optimize("--suffix", ",".join(suffixes), "--dry-run")
    assert code == 0, report
    functions = _functions(report)
    expected = {"json": (60, 1_500, 1_920), "left": (40, 1_800, 2_304), "right": (70, 420, 1_024)}
    for role, (reports, used, memory) in expected.items():
        outcome = functions[logging_fleet[role]]
        lines = outcome["evidence"]["report_lines"]
        assert (lines["reports"], lines["memory_max_mb"]) == (reports, used), (role, lines)
        planned = {c["setting"]: c["after"] for c in outcome["changes"]}
        assert planned["MemorySize"] == memory, role  # max x 1.25 in 64 MB steps, or 1024


def test_a_run_leaves_the_processes_signal_handlers_as_it_found_them(
    seed: Seed, unique: Unique, optimize: Optimize
) -> None:
    def ours(signum: int, frame: FrameType | None) -> None:  # pragma: no cover - never sent
        raise AssertionError("not expected")

    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGTERM, ours)
    try:
        (suffix,) = seed(unique("sig"))
        code, _ = optimize("--suffix", suffix, "--dry-run")
        assert code == 0
        assert signal.getsignal(signal.SIGTERM) is ours
        assert signal.getsignal(signal.SIGINT) is before[signal.SIGINT]
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)
