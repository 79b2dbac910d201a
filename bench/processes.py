"""CPU time and peak memory of the processes under test, from the kernel's own counters.

A client runs as a child and is reaped with `os.wait4`, which returns exactly its CPU; its
peak RSS it reports itself (`bench.peak_rss`: wait4's counts the orchestrator's too).
The sandbox lives across phases: its CPU is read from /proc/PID/stat before and after each,
and its peak RSS (VmHWM) is reset per phase through /proc/PID/clear_refs where Linux allows.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

_TICKS: Final = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ChildRun:
    exit_code: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float | None  # None: the child never reached its exit (killed)
    stdout: str
    stderr: str  # its last lines, for a failure's reason


def run_child(
    argv: Sequence[str], env: Mapping[str, str], timeout_s: float, cwd: str | None = None
) -> ChildRun:
    """Run a client (`python -m MODULE ...`) to completion; its own CPU (from wait4) and
    peak RSS (its own VmHWM), not ours."""
    python, dash_m, *module_args = argv
    if dash_m != "-m":
        raise ValueError(f"not a module run: {' '.join(argv[:3])}")
    with (
        tempfile.TemporaryFile("w+") as out,
        tempfile.TemporaryFile("w+") as err,
        tempfile.TemporaryDirectory() as scratch,
    ):
        peak_file = Path(scratch) / "peak_kb"
        wrapped = [python, "-m", "bench.peak_rss", str(peak_file), *module_args]
        started = time.perf_counter()
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and modules
            wrapped, env=dict(env), cwd=cwd, stdout=out, stderr=err, text=True
        )
        deadline = started + timeout_s
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                process.kill()
                os.wait4(process.pid, 0)
                raise RuntimeError(f"{' '.join(argv[1:3])} did not finish in {timeout_s:.0f} s")
            time.sleep(0.02)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return ChildRun(
            exit_code=process.returncode,
            wall_s=wall,
            cpu_s=usage.ru_utime + usage.ru_stime,
            peak_rss_mb=_peak_mb(peak_file),
            stdout=out.read(),
            stderr=err.read()[-4000:],
        )


def _peak_mb(peak_file: Path) -> float | None:
    """What the child wrote at exit; None where it never got there."""
    try:
        return int(peak_file.read_text()) / 1024
    except (OSError, ValueError):
        return None


class Sandbox:
    """Counters of the long-lived sandbox process."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._proc = Path(f"/proc/{pid}")

    def cpu_s(self) -> float:
        fields = (self._proc / "stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime

    def _status_kb(self, key: str) -> int:
        for line in (self._proc / "status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        return 0

    def rss_mb(self) -> float:
        return self._status_kb("VmRSS") / 1024

    def peak_rss_mb(self) -> float:
        return self._status_kb("VmHWM") / 1024

    def reset_peak(self) -> None:
        with contextlib.suppress(OSError):  # else the peak covers the process's whole life
            (self._proc / "clear_refs").write_text("5")
