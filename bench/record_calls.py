"""`python -m bench.record_calls FILE MODULE ARGS...`: run MODULE as `__main__`, keeping every
AWS call its gateway makes (service, region, operation, parameters) to FILE, pickled as made.

`bench.sdk_reference` replays the file with aioboto3 alone: the same operations with the same
parameters and answers, so the SDK's CPU it measures is the SDK's share of this very run and
what is left of the run's CPU is the optimizer's own. Each call is pickled into a buffered
file as it is made, so the run holds no more memory than without it (its peak RSS is
measured too); the pickling is counted in the run's CPU, so the optimizer's share it leaves
is, if anything, high.
"""

from __future__ import annotations

import atexit
import pickle
import runpy
import sys
from pathlib import Path
from typing import Any, BinaryIO

from optimizer_async.aws.gateway import Aws

Call = tuple[str, str, str, dict[str, Any]]  # service, region, operation, parameters


def _keeping(out: BinaryIO) -> None:
    attempt = Aws._attempt

    async def kept(
        self: Aws, client: Any, service: str, operation: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        call = (service, client.meta.region_name, operation, params)
        out.write(pickle.dumps(call, protocol=pickle.HIGHEST_PROTOCOL))
        return await attempt(self, client, service, operation, params)

    Aws._attempt = kept  # type: ignore[method-assign]


def read(path: Path) -> list[Call]:
    """The calls a recorded run made, in the order it made them."""
    calls: list[Call] = []
    with path.open("rb") as recorded:
        while True:
            try:
                calls.append(pickle.load(recorded))  # noqa: S301 - our own file
            except EOFError:
                return calls


def main() -> None:
    out, module, *args = sys.argv[1:]
    recorded = Path(out).open("wb")  # noqa: SIM115 - open until the module exits
    _keeping(recorded)
    atexit.register(recorded.close)
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
