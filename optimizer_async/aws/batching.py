"""Coalesce many single-key reads into few batched AWS calls.

Discovery runs one task per environment and function; each asks for "its" alarm or log
group. A `BatchLoader` gathers the keys asked for within a short window and fetches them
with one call per batch (DescribeAlarms takes 100 names, DescribeLogGroups 50 identifiers,
GetMetricData 500 queries), so the per-environment code stays simple while the calls stay
few under tight quotas (DescribeAlarms: 9/s, DescribeLogGroups: 10/s).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import Generic, TypeVar

import anyio

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

Fetch = Callable[[Sequence[K]], Awaitable[Mapping[K, V]]]


class _Pending(Generic[K, V]):
    def __init__(self) -> None:
        self.keys: dict[K, None] = {}
        self.arrived = anyio.Event()  # set, then replaced, whenever a key joins
        self.done = anyio.Event()
        self.results: dict[K, V] = {}
        self.error: BaseException | None = None


class BatchLoader(Generic[K, V]):
    """`await loader.load(key)` -> the value, or None if the fetch did not return the key.

    The first caller leads: it waits until no key has joined for `quiet_s`, the batch is
    full, or `max_wait_s` has passed, then fetches for everyone who joined.
    """

    def __init__(
        self, fetch: Fetch[K, V], max_batch: int, quiet_s: float = 0.02, max_wait_s: float = 0.25
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._fetch = fetch
        self._max_batch = max_batch
        self._quiet_s = quiet_s
        self._max_wait_s = max_wait_s
        self._pending: _Pending[K, V] | None = None

    async def load(self, key: K) -> V | None:
        pending = self._pending
        if pending is None:
            pending = self._pending = _Pending()
            pending.keys[key] = None
            # Shielded: the followers' results must not depend on the leader being cancelled.
            with anyio.CancelScope(shield=True):
                await self._gather(pending)
                self._pending = None
                await self._run(pending)
        else:
            pending.keys[key] = None
            pending.arrived.set()
            await pending.done.wait()
        if pending.error is not None:
            raise pending.error
        return pending.results.get(key)

    async def _gather(self, pending: _Pending[K, V]) -> None:
        with anyio.move_on_after(self._max_wait_s):
            while len(pending.keys) < self._max_batch:
                with anyio.move_on_after(self._quiet_s) as quiet:
                    await pending.arrived.wait()
                if quiet.cancelled_caught:
                    return  # nobody joined for a while: go
                pending.arrived = anyio.Event()

    async def _run(self, pending: _Pending[K, V]) -> None:
        keys = list(pending.keys)
        try:
            for start in range(0, len(keys), self._max_batch):
                pending.results.update(await self._fetch(keys[start : start + self._max_batch]))
        except Exception as error:  # every waiter of the batch sees the failure
            pending.error = error
        finally:
            pending.done.set()
