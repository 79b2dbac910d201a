"""A run's leases while it runs: a renewal that fails is tried again without touching the
run; a lease another run took meanwhile is given up, not taken back; every lease is given
back after the run, even when one give-back fails."""

from __future__ import annotations

from datetime import datetime

import anyio

from optimizer_async.aws.clock import EventLoopClock
from optimizer_async.records import leases
from optimizer_async.records.leases import Holder


class FlakyStore:
    """Takes every lease at first; then each renewal fails, or finds another holder."""

    def __init__(self, renewal: str) -> None:
        self.renewal = renewal
        self.taken: set[str] = set()
        self.attempts: dict[str, int] = {}
        self.released: list[str] = []
        self.renewed = anyio.Event()

    async def take(self, key: str, holder: Holder, now: datetime) -> Holder | None:
        if key not in self.taken:
            self.taken.add(key)
            return None
        self.attempts[key] = self.attempts.get(key, 0) + 1
        # Enough seen: two rounds of failures, or both leases found taken.
        if sum(self.attempts.values()) >= (4 if self.renewal == "fails" else 2):
            self.renewed.set()
        if self.renewal == "fails":
            raise OSError("the store did not answer")
        return Holder("someone-else", "h", 1, now.isoformat())

    async def release(self, key: str, holder: Holder) -> None:
        self.released.append(key)
        if key.endswith("a.json"):
            raise OSError("the store did not answer")


async def _hold(store: FlakyStore) -> list[str]:
    async with leases.holding(
        store, "123456789012", "us-east-1", ["a", "b"], "run-1", EventLoopClock(), lease_s=0.03
    ) as held:
        with anyio.fail_after(30):
            await store.renewed.wait()  # renewals went on while the run did
        return held.taken


async def test_failing_renewals_are_retried_and_never_break_the_run() -> None:
    store = FlakyStore("fails")
    assert await _hold(store) == ["a", "b"]
    assert all(n >= 2 for n in store.attempts.values())  # each tried again, not given up
    assert sorted(store.released) == [leases.lease_key("123456789012", "us-east-1", s)
                                      for s in ("a", "b")]  # fmt: skip


async def test_a_lease_taken_by_another_run_is_dropped_not_taken_back() -> None:
    store = FlakyStore("taken")
    await _hold(store)
    assert store.attempts == {  # once each: then no longer renewed (the renewals end)
        leases.lease_key("123456789012", "us-east-1", suffix): 1 for suffix in ("a", "b")
    }
