"""`--details all|none|problems`: which environments the table shows in detail. A bad value
is bad input: one line, exit 2, before any AWS call (the SDK is never even imported)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from optimizer_async import cli
from optimizer_async.commands import apply, rollback, run


def test_details_is_an_option_of_runs_services_and_rollbacks() -> None:
    environ = {"AWS_REGION": "us-east-1"}
    assert cli.parse_config(["--suffix", "dev"], environ).details is None  # problems, or all of 3
    for value in ("all", "none", "problems"):
        config = cli.parse_config(["--suffix", "dev", "--details", value], environ)
        assert config.details == value
    serve = cli.parse_config(["serve", "--suffix", "dev", "--details", "all"], environ)
    assert serve.details == "all"
    for parser in (run.build_parser(), rollback.build_parser(), apply.build_parser()):
        assert "--details {problems,all,none}" in " ".join(parser.format_help().split())


def test_the_help_says_what_details_shows() -> None:
    helped = subprocess.run(
        [sys.executable, "-m", "optimizer_async", "--help"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    said = " ".join(helped.stdout.split())
    assert "--details {problems,all,none}" in said
    assert (
        "problems (failed, blocked, at risk or adjusted; the default, and all for up to 3)" in said
    )


@pytest.mark.parametrize("value", ["everything", "", "ALL"])
def test_a_bad_value_is_one_line_and_exit_2_before_any_aws_call(value: str) -> None:
    code = (
        "import sys; from optimizer_async import cli; "
        f"code = cli.main(['--suffix', 'dev', '--details', {value!r}]); "
        "assert 'botocore' not in sys.modules and 'aioboto3' not in sys.modules; "
        "sys.exit(code)"
    )
    environ = {**os.environ, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}  # nothing answers
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=environ
    )
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("lambda-optimizer: error: argument --details: invalid choice")
    assert done.stdout == ""
