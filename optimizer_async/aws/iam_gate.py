"""One probe per role while IAM propagates a new permission.

Right after the role policy is written, Lambda refuses the dead-letter queue until IAM has
propagated the permission (seconds). Every retry is an UpdateFunctionConfiguration in the
shared 15 requests/second control plane, so the functions sharing a role do not all retry:
the first one probes, the others wait until its update went through (or it gave up), then go.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio


class IamGate:
    def __init__(self) -> None:
        self._passed: dict[str, anyio.Event] = {}

    @asynccontextmanager
    async def through(self, role_name: str) -> AsyncIterator[None]:
        """Hold the body for the role's first update; later ones wait for it to finish."""
        passed = self._passed.get(role_name)
        if passed is None:  # the first: probe, then let everyone through, whatever happened
            passed = self._passed[role_name] = anyio.Event()
            try:
                yield
            finally:
                passed.set()
            return
        await passed.wait()
        yield
