from __future__ import annotations

from collections.abc import Mapping, Sequence

import anyio
import anyio.lowlevel
import pytest

from optimizer_async.aws.batching import BatchLoader, fetch_batches, run_each


async def test_concurrent_loads_share_batches() -> None:
    calls: list[list[int]] = []

    async def fetch(keys: Sequence[int]) -> Mapping[int, str]:
        calls.append(list(keys))
        return {k: f"v{k}" for k in keys if k != 7}

    loader: BatchLoader[int, str] = BatchLoader(fetch, max_batch=4)
    results: dict[int, str | None] = {}

    async def one(key: int) -> None:
        results[key] = await loader.load(key)

    async with anyio.create_task_group() as group:
        for key in range(10):
            group.start_soon(one, key)
    assert results[3] == "v3"
    assert results[7] is None
    assert sorted(len(c) for c in calls) == [2, 4, 4]
    assert sorted(k for c in calls for k in c) == list(range(10))


async def test_a_failed_fetch_fails_every_waiter_of_the_batch() -> None:
    async def fetch(keys: Sequence[int]) -> Mapping[int, str]:
        raise RuntimeError("boom")

    loader: BatchLoader[int, str] = BatchLoader(fetch, max_batch=10)
    errors: list[str] = []

    async def one(key: int) -> None:
        try:
            await loader.load(key)
        except RuntimeError as error:
            errors.append(str(error))

    async with anyio.create_task_group() as group:
        for key in range(3):
            group.start_soon(one, key)
    assert errors == ["boom", "boom", "boom"]


async def test_a_load_after_a_batch_went_starts_the_next_batch() -> None:
    calls: list[list[str]] = []

    async def fetch(keys: Sequence[str]) -> Mapping[str, int]:
        calls.append(list(keys))
        return {k: len(k) for k in keys}

    loader: BatchLoader[str, int] = BatchLoader(fetch, max_batch=10)
    assert await loader.load("a") == 1
    assert await loader.load("bb") == 2
    assert calls == [["a"], ["bb"]]


def test_max_batch_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        BatchLoader(lambda keys: None, max_batch=0)  # type: ignore[arg-type, return-value]


async def test_fetch_batches_makes_exact_batches_of_distinct_keys() -> None:
    calls: list[list[int]] = []

    async def fetch(keys: Sequence[int]) -> Mapping[int, str]:
        calls.append(list(keys))
        return {k: f"v{k}" for k in keys if k != 7}

    found = await fetch_batches([*range(10), 3, 3], 4, fetch)

    assert sorted(calls) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert found[3] == "v3"
    assert 7 not in found  # not returned: left out, as a loader answers None


async def test_fetch_batches_gives_a_failed_batch_its_own_error() -> None:
    async def fetch(keys: Sequence[int]) -> Mapping[int, int]:
        if 5 in keys:
            raise RuntimeError("refused")
        return {k: k for k in keys}

    found = await fetch_batches(range(8), 4, fetch)

    assert [found[k] for k in range(4)] == [0, 1, 2, 3]
    assert all(isinstance(found[k], RuntimeError) for k in range(4, 8))
    with pytest.raises(ValueError, match="max_batch"):
        await fetch_batches([1], 0, fetch)


async def test_run_each_calls_every_item_with_at_most_so_many_at_once() -> None:
    running, most, seen = 0, 0, []

    async def call(item: int) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await anyio.lowlevel.checkpoint()
        seen.append(item)
        running -= 1

    await run_each(range(25), call, 4)

    assert sorted(seen) == list(range(25))
    assert most == 4
    with pytest.raises(ValueError, match="at_once"):
        await run_each([1], call, 0)
