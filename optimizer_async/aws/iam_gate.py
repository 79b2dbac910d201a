"""One probe per role while IAM propagates a new permission, and a wait learned across roles.

Right after the role policy is written, Lambda refuses the dead-letter queue until IAM has
propagated the permission (seconds). Every retry is an UpdateFunctionConfiguration in the
shared 15 requests/second control plane, so the functions sharing a role do not all retry:
the first one probes, the others wait until its update went through (or it gave up), then go.
Across roles the run learns how long propagation takes from the moment a policy was
written (aws/learned.py): the first role's probe retries, later roles' probes first wait
that long and are then usually accepted at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from optimizer_async.aws.clock import Clock
from optimizer_async.aws.learned import LearnedWait


class IamGate:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._passed: dict[str, anyio.Event] = {}
        self._written: dict[str, float] = {}
        self.propagation = LearnedWait()

    def written(self, role_name: str) -> None:
        """The run has just written a policy of this role: propagation starts now."""
        self._written[role_name] = self._clock.now()

    @asynccontextmanager
    async def through(self, role_name: str) -> AsyncIterator[None]:
        """Hold the body for the role's first update; later ones wait for it to finish."""
        passed = self._passed.get(role_name)
        if passed is not None:
            await passed.wait()
            yield
            return
        # The first: probe, then let everyone through, whatever happened.
        passed = self._passed[role_name] = anyio.Event()
        try:
            written = self._written.get(role_name)
            if written is None:  # not written by this run: nothing to wait for
                yield
                return
            async with self.propagation.paced(self._clock, written):
                yield
            self.propagation.observe(self._clock.now() - written)
        finally:
            passed.set()
