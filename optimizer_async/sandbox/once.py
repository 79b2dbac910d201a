"""A cache that builds each value once, however many server threads ask for it at the same time.

`functools.cache` lets every thread that misses build the value for itself. The first burst
of a run meets empty caches on up to a hundred server threads at once, and each of them built
moto's Lambda router (0.13 s of CPU) for itself: a cold sandbox spent over a minute of CPU on
the first 100 GetFunction calls of a dry run. Here the first caller builds while the others
wait for its value; a hit costs one uncontended lock.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


def built_once(func: Callable[P, R]) -> Callable[P, R]:
    """`func` memoised by its (hashable) arguments, each value built by one thread."""
    cached = functools.cache(func)
    lock = threading.RLock()  # re-entrant: a builder may ask for another of its own values

    @functools.wraps(func)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        with lock:
            return cached(*args, **kwargs)  # type: ignore[arg-type]

    return call
