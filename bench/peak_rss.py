"""`python -m bench.peak_rss FILE MODULE ARGS...`: run MODULE as `__main__`, then write its
own peak RSS (VmHWM, kB) to FILE.

wait4's `ru_maxrss` cannot say: Linux carries the high-water mark of the memory a process
had before `exec` into it, so a client started by a large orchestrator reports the
orchestrator's peak. VmHWM belongs to the memory the module itself ran in.
"""

from __future__ import annotations

import atexit
import runpy
import sys
from pathlib import Path


def _write_high_water(out: Path) -> None:
    """Nothing where the kernel keeps no VmHWM: no figure rather than a wrong one."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            out.write_text(line.split()[1])


def main() -> None:
    out, module, *args = sys.argv[1:]
    atexit.register(_write_high_water, Path(out))
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
