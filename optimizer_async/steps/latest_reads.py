"""A function as read after its last write, so that verification need not read it again.

Verification re-reads every part a run changed. The function itself was just read anyway:
the waiter's last GetFunction after the configuration update shows the update settled, and
the whole function with it. When no other write to the function was under way or began
since that update, that answer is the re-read, and the GetFunction bucket carries one read
per function fewer. A later write to the function forgets it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Final

from optimizer_async.steps.inventory import FunctionState

SHARED_NAME: Final = "latest-reads"  # its name among a run's shared objects (ReadContext)


@dataclass(frozen=True)
class Mark:
    """A function's writes when a read began: those started, those still under way."""

    started: int
    under_way: int


class LatestReads:
    def __init__(self) -> None:
        self._started: Counter[str] = Counter()
        self._under_way: Counter[str] = Counter()
        self._seen: dict[str, FunctionState] = {}

    def begin(self, function: str) -> None:
        """A write to the function starts: what was read of it is no longer the latest."""
        self._started[function] += 1
        self._under_way[function] += 1
        self._seen.pop(function, None)

    def end(self, function: str) -> None:
        self._under_way[function] -= 1

    def mark(self, function: str) -> Mark:
        """Taken by a writer between its own write and its read of the result."""
        return Mark(self._started[function], self._under_way[function])

    def saw(self, state: FunctionState, mark: Mark) -> None:
        """Keep the read if the writer's was the only write under way and none began since."""
        now = self.mark(state.name)
        if mark.under_way == 1 and now == mark:
            self._seen[state.name] = state

    def take(self, function: str) -> FunctionState | None:
        """The latest read, once (verification's re-read)."""
        return self._seen.pop(function, None)
