"""Few batched AWS calls for many keys (DescribeAlarms takes 100 names, DescribeLogGroups
50 identifiers, GetMetricData 500 queries): the calls stay few under tight quotas
(DescribeAlarms: 9/s, DescribeLogGroups: 10/s).

Two ways in. `fetch_batches` is for a caller that holds every key at once (discovery's
bulk reads): exact batches, a few at a time, never a task per key - thousands of waiting
tasks cost megabytes, and so do requests built long before the gateway lets them go.
`BatchLoader` is for callers that each hold one key (a single function's re-read): it
gathers the keys asked for within a short window, so concurrent callers still share
calls, at the price of batches that depend on timing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping, Sequence
from typing import Final, Generic, TypeVar

import anyio

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
T = TypeVar("T")

Fetch = Callable[[Sequence[K]], Awaitable[Mapping[K, V]]]


BATCHES_AT_ONCE: Final = 10  # a batch's request is built when it starts: ~1 MB for 500 queries


async def run_each(items: Iterable[T], call: Callable[[T], Awaitable[None]], at_once: int) -> None:
    """`call` every item, at most `at_once` at a time. Waiting work stays an item, not a
    task (a few KB each) or a built request: `at_once` tasks take the items in turn. The
    gateway paces the calls, so more at once would only wait longer."""
    if at_once < 1:
        raise ValueError("at_once must be at least 1")
    pending = iter(items)

    async def worker() -> None:
        for item in pending:  # shared: each worker takes the next item
            await call(item)

    async with anyio.create_task_group() as group:
        for _ in range(at_once):
            group.start_soon(worker)


async def fetch_batches(
    keys: Iterable[K], max_batch: int, fetch: Fetch[K, V], at_once: int = BATCHES_AT_ONCE
) -> dict[K, V | Exception]:
    """Fetch the distinct keys in batches of `max_batch`, in their order, `at_once` batches
    at a time. A key the fetch did not return is left out; a failed batch's keys map to its
    error, so one batch does not sink the others."""
    if max_batch < 1:
        raise ValueError("max_batch must be at least 1")
    distinct = list(dict.fromkeys(keys))
    found: dict[K, V | Exception] = {}

    async def one(batch: Sequence[K]) -> None:
        try:
            found.update(await fetch(batch))
        except Exception as error:
            found.update(dict.fromkeys(batch, error))

    batches = (distinct[i : i + max_batch] for i in range(0, len(distinct), max_batch))
    await run_each(batches, one, at_once)
    return found


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
