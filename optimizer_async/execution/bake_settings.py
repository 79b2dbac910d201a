"""`--bake`: how long to watch the functions a run changed, how often, and what counts as
worse (the bake itself is `bake.py`; this is light enough for the command line to build)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BakeSettings:
    """How long to watch changed functions, how often, and what counts as worse."""

    duration_s: float
    poll_s: float = 300.0
    error_rate_points: float = 1.0  # percentage points over the function's own error rate
    throttle_rate_points: float = 1.0  # percentage points over its own throttle rate
    min_invocations: int = 20  # fewer in the window so far: too few to judge a rate

    def __post_init__(self) -> None:
        if not self.duration_s > 0 or not self.poll_s > 0:
            raise ValueError("a bake needs a positive duration and poll interval")
