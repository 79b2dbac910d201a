"""Learned waits on a virtual clock: who probes, who waits, and for how long."""

from __future__ import annotations

from datetime import UTC, datetime

import anyio
import anyio.lowlevel

from optimizer_async.aws.iam_gate import IamGate
from optimizer_async.aws.learned import LearnedWait


class VirtualClock:
    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds
        await anyio.lowlevel.checkpoint()

    def utcnow(self) -> datetime:
        return datetime(2026, 1, 1, tzinfo=UTC)


def test_the_learned_wait_is_the_90th_percentile_of_the_last_waits() -> None:
    learned = LearnedWait()
    assert learned.learned is None
    for count in range(1, 11):
        learned.observe(float(count))
    assert learned.learned == 9.0
    small = LearnedWait(window=3)
    for seconds in (100.0, 1.0, 2.0, 3.0):
        small.observe(seconds)
    assert small.learned == 3.0  # the oldest wait has left the window


async def test_the_first_probes_at_once_the_others_wait_for_its_lesson() -> None:
    clock, learned = VirtualClock(), LearnedWait()
    order: list[tuple[str, float]] = []
    probing, done = anyio.Event(), anyio.Event()

    async def probe() -> None:
        async with learned.paced(clock, since=0.0):
            order.append(("probe in", clock.now()))
            probing.set()
            await done.wait()
        learned.observe(2.5)

    async def follower(since: float) -> None:
        async with learned.paced(clock, since=since):
            order.append((f"follower since {since:g} in", clock.now()))

    async with anyio.create_task_group() as group:
        group.start_soon(probe)
        await probing.wait()
        group.start_soon(follower, 0.5)
        await anyio.wait_all_tasks_blocked()
        assert order == [("probe in", 0.0)]  # the follower waits for the lesson
        done.set()
    assert order[1] == ("follower since 0.5 in", 3.0)  # 0.5 + the learned 2.5
    assert clock.sleeps == [3.0]


async def test_a_wait_already_over_does_not_sleep() -> None:
    clock, learned = VirtualClock(), LearnedWait()
    learned.observe(1.0)
    clock.t = 5.0
    async with learned.paced(clock, since=1.0):
        pass
    assert clock.sleeps == []


async def test_a_later_role_waits_the_learned_propagation_since_its_policy_was_written() -> None:
    clock = VirtualClock()
    gate = IamGate(clock)
    gate.written("role-1")
    async with gate.through("role-1"):
        clock.t += 4.0  # the probe retried until IAM propagated, 4 s after the write
    assert gate.propagation.learned == 4.0
    clock.t = 10.0
    gate.written("role-2")
    clock.t = 11.0
    async with gate.through("role-2"):
        assert clock.now() == 14.0  # 10 + the learned 4 s: one attempt, no retries
    async with gate.through("role-3"):  # no policy written by this run: nothing to wait for
        assert clock.now() == 14.0
