"""`python -m optimizer_async.sandbox serve` works as a standalone AWS endpoint."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

from tests.conftest import make_client


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_seeds_and_answers_until_killed() -> None:
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "optimizer_async.sandbox",
            "serve",
            "--port",
            str(port),
            "--seed",
            "dev",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert f"AWS_ENDPOINT_URL=http://127.0.0.1:{port}" in line, (
            process.stderr.read() if process.stderr else ""
        )
        lam = make_client(f"http://127.0.0.1:{port}", "lambda")
        config = lam.get_function(FunctionName="lambda-function-dev")["Configuration"]
        assert config["MemorySize"] == 3008
        time.sleep(0.2)
        assert process.poll() is None  # still serving
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0


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
