"""A client's peak RSS is its own: never the memory of the (large) process that started it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from bench.processes import run_child

_MB = 1024 * 1024


def _env(tmp_path: Path) -> dict[str, str]:
    here = str(Path(__file__).resolve().parents[2])  # the checkout, for `bench.peak_rss`
    return {**os.environ, "PYTHONPATH": os.pathsep.join((here, str(tmp_path)))}


def test_a_small_child_of_a_large_parent_reports_its_own_small_peak(tmp_path: Path) -> None:
    held = bytearray(300 * _MB)  # zero pages: touch one byte in each so they count
    for offset in range(0, len(held), 4096):
        held[offset] = 1
    (tmp_path / "small_child.py").write_text("print('ok')\n")
    child = run_child([sys.executable, "-m", "small_child"], _env(tmp_path), 60.0)
    assert (child.exit_code, child.stdout) == (0, "ok\n")
    assert child.peak_rss_mb is not None
    assert child.peak_rss_mb < 150
    del held


def test_a_child_that_grows_reports_that_growth(tmp_path: Path) -> None:
    (tmp_path / "large_child.py").write_text(
        "block = bytearray(200 * 1024 * 1024)\n"
        "for offset in range(0, len(block), 4096):\n"
        "    block[offset] = 1\n"
    )
    child = run_child([sys.executable, "-m", "large_child"], _env(tmp_path), 60.0)
    assert child.exit_code == 0
    assert child.peak_rss_mb is not None
    assert child.peak_rss_mb >= 200


def test_a_child_that_never_reaches_its_exit_has_no_peak(tmp_path: Path) -> None:
    (tmp_path / "killed_child.py").write_text("import os, signal\nos.kill(os.getpid(), 9)\n")
    child = run_child([sys.executable, "-m", "killed_child"], _env(tmp_path), 60.0)
    assert child.exit_code == -9
    assert child.peak_rss_mb is None
