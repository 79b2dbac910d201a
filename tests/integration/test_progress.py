"""Progress people can watch: a live display when stderr is a terminal, never on stdout."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from optimizer_async.aws.gateway import Aws, AwsSettings
from tests.conftest import REGION
from tests.integration.conftest import Unique

Seed = Callable[..., list[str]]


def _read_terminal(fd: int, deadline_s: float) -> str:
    """Everything written to the terminal until its last writer closes it."""
    chunks: list[bytes] = []
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if not ready:
            continue
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks).decode(errors="replace")


def test_a_run_on_a_terminal_shows_its_progress_and_stdout_is_the_report(
    seed: Seed, unique: Unique, endpoint_url: str, account_id: str, tmp_path: Path
) -> None:
    suffixes = seed(unique("a"), unique("b"))
    controller, terminal = pty.openpty()
    report = tmp_path / "stdout.json"
    argv = ["--suffix", ",".join(suffixes), "--dry-run", "--output", "json"]
    argv += ["--state-dir", str(tmp_path / "state"), "--log-level", "warning"]
    env = {**os.environ, "AWS_ENDPOINT_URL": endpoint_url, "COLUMNS": "200", "TERM": "xterm"}
    with report.open("w") as stdout:
        child = subprocess.Popen(
            [sys.executable, "-m", "optimizer_async", *argv],
            stdout=stdout, stderr=terminal, stdin=subprocess.DEVNULL, env=env,
        )  # fmt: skip
    os.close(terminal)
    try:
        shown = _read_terminal(controller, deadline_s=120)
        assert child.wait(timeout=30) == 0, shown[-2000:]
    finally:
        os.close(controller)
        if child.poll() is None:
            child.kill()

    assert "discovered" in shown
    assert "waiting on (quota bucket)" in shown
    assert f"{account_id} {REGION}" in shown
    last = shown.rsplit("account / region", 1)[-1]  # the display as the run ended
    assert last.count("2/2") == 2  # both environments discovered, and both planned
    document = json.loads(report.read_text())  # stdout: one JSON document and nothing else
    assert document["status"] == "planned"
    assert sorted(e["suffix"] for e in document["environments"]) == sorted(suffixes)


def test_without_a_terminal_there_is_no_display(
    seed: Seed, unique: Unique, endpoint_url: str, tmp_path: Path
) -> None:
    (suffix,) = seed(unique("a"))
    argv = ["--suffix", suffix, "--dry-run", "--output", "json", "--log-level", "warning"]
    done = subprocess.run(
        [sys.executable, "-m", "optimizer_async", *argv, "--state-dir", str(tmp_path)],
        env={**os.environ, "AWS_ENDPOINT_URL": endpoint_url},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "discovered" not in done.stderr
    assert json.loads(done.stdout)["status"] == "planned"


async def test_the_gateway_names_the_bucket_calls_queue_for(endpoint_url: str) -> None:
    """Three DescribeAlarms at one per 20 s: one goes, two wait in its bucket (progress
    shows it); the next would go 20 s on, far beyond the test's own pace."""
    settings = AwsSettings(
        region=REGION, endpoint_url=endpoint_url, quotas=(("cloudwatch.DescribeAlarms", 0.05),)
    )
    async with Aws.open(settings) as aws:
        assert aws.busiest_queue() is None
        await aws.cloudwatch.describe_alarms(AlarmNamePrefix="none-")  # the bucket's one call
        async with anyio.create_task_group() as group:
            for _ in range(2):
                group.start_soon(lambda: aws.cloudwatch.describe_alarms(AlarmNamePrefix="no-"))
            await anyio.wait_all_tasks_blocked()
            assert aws.busiest_queue() == ("cloudwatch.DescribeAlarms", 2)
            group.cancel_scope.cancel()
        assert aws.busiest_queue() is None  # a cancelled wait leaves the queue


@pytest.mark.parametrize("places", [1, 2])
def test_the_display_has_a_row_per_place_and_a_total(places: int) -> None:
    from rich.console import Console

    from optimizer_async.execution import progress

    rows = [
        progress.Place(
            f"11111111111{i}", REGION, progress.Counts("", 3, 3, 2, 5, 4, 1), lambda: None
        )
        for i in range(places)
    ]
    console = Console(width=200, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(progress.table(rows))
    text = console.export_text()
    assert text.count(f" {REGION} ") == places
    assert ("all " in text) == (places > 1)
    assert "3/3" in text
    assert "2/3" in text


async def test_elsewhere_a_progress_event_comes_every_interval() -> None:
    """Not on a terminal: `progress` log events with each place's counts (a shipped log)."""
    from structlog.testing import capture_logs

    from optimizer_async.execution import progress

    counts = progress.Counts("20261129T000000Z-abcdef", 4, discovered=4, planned=3, applied=7)
    place = progress.Place("123456789012", REGION, counts, lambda: ("lambda.GetFunction", 9))
    intervals: list[float] = []

    async def two_intervals(seconds: float) -> None:
        intervals.append(seconds)
        if len(intervals) > 2:
            await anyio.sleep_forever()  # the third interval never ends: two events

    with capture_logs() as events:
        async with anyio.create_task_group() as group:
            group.start_soon(progress.watch, [place], False, 5.0, two_intervals)
            await anyio.wait_all_tasks_blocked()
            group.cancel_scope.cancel()
    assert intervals == [5.0, 5.0, 5.0]
    assert len(events) == 2
    assert {e["event"] for e in events} == {"progress"}
    assert {e["run_id"] for e in events} == {"20261129T000000Z-abcdef"}
    assert events[0]["places"] == [
        {
            "account": "123456789012",
            "region": REGION,
            "environments": 4,
            "discovered": 4,
            "planned": 3,
            "applied": 7,
            "verified": 0,
            "failed": 0,
            "waiting_on": "lambda.GetFunction (9 queued)",
        }
    ]
