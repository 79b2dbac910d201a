"""`python -m optimizer_async.sandbox serve` works as a standalone AWS endpoint."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import IO, Any

from botocore.exceptions import EndpointConnectionError

from tests.conftest import make_client

# Bounds how long a broken server can hang a test; never a claim about speed.
_DEADLINE_S = 120.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(port: int, stderr: IO[str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "optimizer_async.sandbox", "serve", "--port", str(port), *args],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0


def test_serve_seeds_and_answers_until_killed(tmp_path: Path) -> None:
    port = _free_port()
    with (tmp_path / "stderr").open("w+") as stderr:
        process = _serve(port, stderr, "--seed", "dev")
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            stderr.seek(0)
            assert f"AWS_ENDPOINT_URL=http://127.0.0.1:{port}" in line, stderr.read()
            lam = make_client(f"http://127.0.0.1:{port}", "lambda")
            config = lam.get_function(FunctionName="lambda-function-dev")["Configuration"]
            assert config["MemorySize"] == 3008
            assert lam.list_functions()["Functions"]  # still serving after answering
            assert process.poll() is None
        finally:
            _stop(process)


def test_the_first_answer_already_shows_the_seeded_account(tmp_path: Path) -> None:
    """A script that only waits for the port must never see a half-seeded account."""
    port = _free_port()
    with (tmp_path / "stderr").open("w+") as stderr:
        process = _serve(port, stderr, "--seed", "dev")
        try:
            lam = make_client(f"http://127.0.0.1:{port}", "lambda", attempts=1, connect_timeout=5)
            first = _first_answer(lambda: lam.list_functions(), process, stderr)
            names = [function["FunctionName"] for function in first["Functions"]]
            assert "lambda-function-dev" in names
        finally:
            _stop(process)


def _first_answer(call: Any, process: subprocess.Popen[str], stderr: IO[str]) -> Any:
    """`call()`'s first answer, retrying only while the port refuses connections."""
    deadline = time.monotonic() + _DEADLINE_S
    while True:
        try:
            return call()
        except EndpointConnectionError:
            if process.poll() is not None:
                stderr.seek(0)
                raise AssertionError(f"serve exited early: {stderr.read()}") from None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_profile_mix_is_given_to_the_seeded_functions_in_order(tmp_path: Path) -> None:
    port = _free_port()
    mix = "steady,memory-hungry,slow,bursty,idle"
    with (tmp_path / "stderr").open("w+") as stderr:
        process = _serve(
            port, stderr, "--seed", "a,b,c", "--functions-per-env", "2", "--profile-mix", mix
        )
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            stderr.seek(0)
            assert "AWS_ENDPOINT_URL=" in line, stderr.read()
            url = f"http://127.0.0.1:{port}/_sandbox/workload?region=us-east-1"
            with urllib.request.urlopen(url, timeout=30) as response:
                assigned = json.loads(response.read())
        finally:
            _stop(process)
    assert assigned == {
        "lambda-function-a": "steady",
        "lambda-function2-a": "memory-hungry",
        "lambda-function-b": "slow",
        "lambda-function2-b": "bursty",
        "lambda-function-c": "idle",
        "lambda-function2-c": "steady",  # the mix cycles
    }


def test_bad_arguments_exit_2() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "optimizer_async.sandbox", "serve", "--seed", "Not_Valid"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: environment suffix 'Not_Valid' must be lower-case letters, digits and inner hyphens"
    )
    result = subprocess.run(
        [sys.executable, "-m", "optimizer_async.sandbox", "serve", "--profile-mix", "steady,busy"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(
            "error: unknown workload profile 'busy': choose from default, steady, memory-hungry"
        )
    )


def test_quota_overrides() -> None:
    """`--quota BUCKET=RATE`, repeatable, raises quotas as the optimizer's option does."""
    from optimizer_async.sandbox.__main__ import _config, _parser

    args = _parser().parse_args(
        ["serve", "--quota", "lambda.GetFunction=250", "--quota", "logs.DescribeLogGroups=20"]
    )
    assert _config(args).quotas == (("lambda.GetFunction", 250.0), ("logs.DescribeLogGroups", 20.0))
    result = subprocess.run(
        [sys.executable, "-m", "optimizer_async.sandbox", "serve", "--quota", "lambda.GetFunction"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: a quota is BUCKET=RATE, not 'lambda.GetFunction'"
    ]
