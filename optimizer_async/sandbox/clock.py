"""The sandbox's clock: every quota refill, update window, IAM delay and injected wait reads it.

The sandbox runs on the machine's monotonic clock. Tests install a `ManualClock` instead, so
that what they observe depends on the virtual time they advance, not on how fast (or how
loaded) the machine is: a quota grants exactly its burst, a window closes exactly when told.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """Seconds on a monotonic scale (the origin means nothing), and a way to wait."""

    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The machine's clock: `time.monotonic` and `time.sleep`. The sandbox's default."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class ManualClock:
    """Virtual time that moves only when told: by `advance`, or by `sleep`, which returns at once.

    Every sleep is recorded, so a test can assert the exact delays the sandbox would have
    waited. Thread-safe: the sandbox answers requests from worker threads. Time starts at 0;
    install it on a freshly reset sandbox, since windows that another clock opened are
    meaningless on this one.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._sleeps: list[float] = []
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("sleep length must be non-negative")
        with self._lock:
            self._now += seconds
            self._sleeps.append(seconds)

    def advance(self, seconds: float) -> None:
        """Let `seconds` pass (not recorded as a sleep: nobody waited)."""
        if seconds < 0:
            raise ValueError("time does not run backwards")
        with self._lock:
            self._now += seconds

    @property
    def sleeps(self) -> tuple[float, ...]:
        """Every sleep so far, in order."""
        with self._lock:
            return tuple(self._sleeps)
