from __future__ import annotations

from collections.abc import Mapping, Sequence

import anyio
import pytest

from optimizer_async.aws.batching import BatchLoader


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
