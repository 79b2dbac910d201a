"""`--state-dir` naming a file (or a path under one), or a directory a command that writes
records cannot write in, is bad input: one line, exit 2, before any AWS call. A record in it
that is not one (cut short, edited) is named in one line too."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from optimizer_async.cli import main
from optimizer_async.sandbox.server import EmbeddedSandbox

pytestmark = pytest.mark.sandbox_only("the sandbox's call counts")


@pytest.mark.parametrize(
    ("command", "under"),
    [
        (["--suffix", "dev", "--dry-run"], False),
        (["--suffix", "dev"], True),
        (["runs"], False),
        (["rollback", "--run-id", "20261127T000000Z-abcdef"], False),
        (["savings", "--run-id", "20261127T000000Z-abcdef"], True),
        (["serve", "--suffix", "dev"], False),
    ],
)
def test_a_state_dir_that_is_a_file_is_refused_before_any_call(
    sandbox: EmbeddedSandbox,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    command: list[str],
    under: bool,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", sandbox.endpoint_url)
    monkeypatch.delenv("ENVIRONMENT_SUFFIX", raising=False)
    state = tmp_path / "state"
    state.write_text("not a directory\n")
    given = state / "deeper" if under else state
    sandbox.reset_stats()
    code = main([*command, "--state-dir", str(given)])
    captured = capsys.readouterr()
    assert code == 2
    (line,) = captured.err.strip().splitlines()
    says = f"{state} is a file, not a directory"
    assert line == f"lambda-optimizer: error: --state-dir {given}" + (
        f": {says}" if under else " is a file, not a directory"
    )
    assert captured.out == ""
    assert sandbox.stats()["total"] == 0
    assert state.read_text() == "not a directory\n"  # left as it was


def _as_user(argv: list[str]) -> list[str]:
    """`argv` without root's power to write anywhere (CAP_DAC_OVERRIDE), so that a
    directory's mode means what it says even where the tests run as root."""
    if os.geteuid() != 0:
        return argv
    setpriv = shutil.which("setpriv")
    assert setpriv, "running as root, the test needs util-linux's setpriv to drop DAC powers"
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search", *argv]


@pytest.mark.parametrize(
    ("command", "refused"),
    [
        (["--suffix", "dev", "--dry-run"], True),  # its fingerprint key, and its record
        (["--suffix", "dev"], True),
        (["serve", "--suffix", "dev"], True),
        (["runs"], False),  # reads only
        (["savings", "--run-id", "20261127T000000Z-abcdef"], False),
    ],
)
def test_a_state_dir_it_cannot_write_is_refused_before_any_call(
    sandbox: EmbeddedSandbox, tmp_path: Path, command: list[str], refused: bool
) -> None:
    state = tmp_path / "state"
    (state / "runs" / "20261127T000000Z-abcdef").mkdir(parents=True)
    state.chmod(0o555)
    environ = {k: v for k, v in os.environ.items() if k != "ENVIRONMENT_SUFFIX"}
    environ["AWS_ENDPOINT_URL"] = sandbox.endpoint_url
    sandbox.reset_stats()
    argv = [sys.executable, "-m", "optimizer_async", *command, "--state-dir", str(state)]
    done = subprocess.run(_as_user(argv), capture_output=True, text=True, env=environ,
                          timeout=120, check=False)  # fmt: skip
    if refused:
        assert (done.returncode, done.stdout) == (2, ""), done.stderr
        assert done.stderr == f"lambda-optimizer: error: --state-dir {state} is not writable\n"
        assert sandbox.stats()["total"] == 0
    else:  # past the state dir's check: `runs` lists nothing, `savings` finds no record
        assert "is not writable" not in done.stderr
        assert done.returncode == (0 if command == ["runs"] else 2), done.stderr


@pytest.mark.parametrize(
    ("key", "content", "says"),
    [
        ("run.json", b"garbage", "is not a readable record (Expecting value: line 1"),
        ("run.json", b"[1, 2]", "is not a readable record (a JSON list, not an object)"),
        ("run.json", b'{"run_id": 5}', "is not the record of run 20261127T000000Z-abcdef"),
        ("before-images/dev.json", b"\xff\xfe", "is not a readable record ("),
        ("before-images/dev.json", b"{}", "is not a before-image of its environment"),
    ],
)
def test_a_record_that_is_not_one_is_named_in_one_line(
    sandbox: EmbeddedSandbox,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    key: str,
    content: bytes,
    says: str,
) -> None:
    """What we wrote earlier is input too: a record cut short, edited or of another run is
    refused naming its file (exit 2), for `runs` and for a rollback alike, and nothing is
    written."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", sandbox.endpoint_url)
    run_id = "20261127T000000Z-abcdef"
    state = tmp_path / "state"
    where = state / "runs" / run_id / key
    where.parent.mkdir(parents=True)
    where.write_bytes(content)
    command = (
        ["runs"]
        if key == "run.json"
        else ["rollback", "--run-id", run_id, "--dry-run", "--log-level", "warning"]
    )
    sandbox.reset_stats()
    code = main([*command, "--state-dir", str(state)])
    captured = capsys.readouterr()
    assert (code, captured.out) == (2, "")
    (line,) = captured.err.strip().splitlines()
    assert line.startswith(f"lambda-optimizer: error: {where} {says}")
    assert sandbox.stats()["writes"] == 0
