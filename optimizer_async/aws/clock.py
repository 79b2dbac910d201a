"""The optimizer's clock: where waiters and retries read the time and sleep.

Production uses the event loop's clock. Tests pass their own (one that moves a sandbox's
virtual clock forward instead of waiting), so a waiter's polls can be counted exactly
instead of depending on how fast the machine is.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

import anyio


class Clock(Protocol):
    def now(self) -> float:
        """Seconds on a monotonic clock."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Let `seconds` pass (and let other tasks run)."""
        ...

    def utcnow(self) -> datetime:
        """The UTC moment AWS's timestamps are in (metric windows, queries)."""
        ...


class EventLoopClock:
    """anyio's clock: real time, as the event loop sees it."""

    def now(self) -> float:
        return anyio.current_time()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)

    def utcnow(self) -> datetime:
        return datetime.now(UTC)


def next_minute(moment: datetime) -> datetime:
    """The first whole minute at or after `moment` (CloudWatch's metrics are per minute)."""
    floor = moment.replace(second=0, microsecond=0)
    return floor if floor == moment else floor + timedelta(minutes=1)
