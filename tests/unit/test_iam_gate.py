"""The IAM gate, driven by events rather than sleeps: the order is decided by the test."""

from __future__ import annotations

import anyio

from optimizer_async.aws.clock import EventLoopClock
from optimizer_async.aws.iam_gate import IamGate


async def test_first_through_probes_others_wait_then_go_together() -> None:
    gate = IamGate(EventLoopClock())
    events: list[str] = []
    probing, release = anyio.Event(), anyio.Event()

    async def probe() -> None:
        async with gate.through("role-1"):
            events.append("a in")
            probing.set()
            await release.wait()
            events.append("a out")

    async def follower(name: str, role: str) -> None:
        async with gate.through(role):
            events.append(f"{name} in")

    async with anyio.create_task_group() as group:
        group.start_soon(probe)
        await probing.wait()
        for name, role in (("b", "role-1"), ("c", "role-1"), ("x", "role-2")):
            group.start_soon(follower, name, role)
        await anyio.wait_all_tasks_blocked()
        assert events == ["a in", "x in"]  # another role never waits; role-1 waits for a
        release.set()
    assert events[2:] == ["a out", "b in", "c in"]


async def test_a_failed_probe_still_lets_the_others_try() -> None:
    gate = IamGate(EventLoopClock())
    tried: list[str] = []
    probing = anyio.Event()

    async def probe() -> None:
        try:
            async with gate.through("role"):
                probing.set()
                await anyio.wait_all_tasks_blocked()
                raise RuntimeError("gave up")
        except RuntimeError:
            tried.append("probe failed")

    async def other() -> None:
        async with gate.through("role"):
            tried.append("other tried")

    async with anyio.create_task_group() as group:
        group.start_soon(probe)
        await probing.wait()
        group.start_soon(other)
    assert tried == ["probe failed", "other tried"]
