"""`--state-dir` naming a file (or a path under one) is bad input: one line, exit 2, before
any AWS call, for every command that keeps or reads run records."""

from __future__ import annotations

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
