"""Waits learned from the run itself: ask AWS once, when it is likely to be done.

Each poll of a function update, and each retry while IAM propagates a role policy, is a call
in a quota bucket shared by the whole run (and by every other tool in the account). How
long AWS takes is steady within a run, so the run learns it: the first waiter probes with
its backoff while the others wait for its lesson; from then on each waits the learned time
(the 90th percentile of the last waits, measured from the same starting point) and
usually needs a single call. The lesson is an upper bound (the moment a poll first saw the
change done), so a learned wait errs long, never into extra calls.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

import anyio

from optimizer_async.aws.clock import Clock

_QUANTILE: Final = 0.9
_WINDOW: Final = 64


class LearnedWait:
    """How long something took this run, on the run's clock (seconds)."""

    def __init__(self, quantile: float = _QUANTILE, window: int = _WINDOW) -> None:
        self._seen: deque[float] = deque(maxlen=window)
        self._quantile = quantile
        self._lesson: anyio.Event | None = None  # set once the first probe has finished

    @property
    def learned(self) -> float | None:
        """The learned wait, or None before anything was observed."""
        if not self._seen:
            return None
        ordered = sorted(self._seen)
        return ordered[min(len(ordered) - 1, math.ceil(self._quantile * len(ordered)) - 1)]

    def observe(self, seconds: float) -> None:
        self._seen.append(max(0.0, seconds))

    @asynccontextmanager
    async def paced(self, clock: Clock, since: float) -> AsyncIterator[None]:
        """Enter when the learned time since `since` has passed; the first caller of a run
        enters at once (it probes), the others meanwhile wait for its lesson."""
        if self._seen:
            await self._until(clock, since)
            yield
            return
        if self._lesson is not None:  # a probe is out: wait for what it learns
            await self._lesson.wait()
            await self._until(clock, since)
            yield
            return
        self._lesson = anyio.Event()
        try:
            yield
        finally:
            self._lesson.set()

    async def _until(self, clock: Clock, since: float) -> None:
        learned = self.learned
        if learned is not None:
            left = since + learned - clock.now()
            if left > 0:
                await clock.sleep(left)
