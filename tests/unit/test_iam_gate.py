from __future__ import annotations

import anyio

from optimizer_async.aws.iam_gate import IamGate


def test_first_through_probes_others_wait_then_go_together() -> None:
    events: list[str] = []

    async def main() -> None:
        gate = IamGate()

        async def update(name: str, role: str, probe_s: float) -> None:
            async with gate.through(role):
                events.append(f"{name} in")
                await anyio.sleep(probe_s)
                events.append(f"{name} out")

        async with anyio.create_task_group() as group:
            group.start_soon(update, "a", "role-1", 0.05)
            await anyio.sleep(0.01)
            group.start_soon(update, "b", "role-1", 0.01)
            group.start_soon(update, "c", "role-1", 0.01)
            group.start_soon(update, "x", "role-2", 0.01)  # another role never waits

    anyio.run(main)
    assert events.index("a out") < events.index("b in")
    assert events.index("a out") < events.index("c in")
    assert events.index("x in") < events.index("a out")
    assert events.index("c in") < events.index("b out")  # after the probe they run together


def test_a_failed_probe_still_lets_the_others_try() -> None:
    tried: list[str] = []

    async def main() -> None:
        gate = IamGate()

        async def probe() -> None:
            try:
                async with gate.through("role"):
                    await anyio.sleep(0.02)
                    raise RuntimeError("gave up")
            except RuntimeError:
                tried.append("probe failed")

        async def other() -> None:
            async with gate.through("role"):
                tried.append("other tried")

        async with anyio.create_task_group() as group:
            group.start_soon(probe)
            await anyio.sleep(0.005)
            group.start_soon(other)

    anyio.run(main)
    assert tried == ["probe failed", "other tried"]
