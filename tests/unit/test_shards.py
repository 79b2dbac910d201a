"""Shards by rendezvous hashing: every environment in exactly one shard, stable as
environments come and go; `--shard` parsed from the command line or the job runner."""

from __future__ import annotations

import pytest

from optimizer_async.fleet.shards import Shard, ShardError, key, owner, parse

KEYS = [key("123456789012", "us-east-1", f"pr-{n}") for n in range(400)]


@pytest.mark.parametrize("count", [1, 2, 3, 4])
def test_every_environment_is_in_exactly_one_shard(count: int) -> None:
    shards = [Shard(i, count) for i in range(count)]
    for item in KEYS:
        account, region, suffix = item.split("/")
        assert sum(shard.takes(account, region, suffix) for shard in shards) == 1
    sizes = [sum(owner(item, count) == i for item in KEYS) for i in range(count)]
    assert min(sizes) >= len(KEYS) / count * 0.75  # spread, not piled on one shard


@pytest.mark.parametrize("count", [2, 3, 4])
def test_a_new_environment_moves_no_other_and_a_new_shard_about_one_in_n(count: int) -> None:
    before = {item: owner(item, count) for item in KEYS}
    grown = {item: owner(item, count) for item in [*KEYS, key("1", "r", "new")]}
    assert all(grown[item] == shard for item, shard in before.items())
    more = {item: owner(item, count + 1) for item in KEYS}
    moved = [item for item in KEYS if more[item] != before[item]]
    assert all(more[item] == count for item in moved)  # only to the new shard
    assert len(moved) <= len(KEYS) / (count + 1) * 1.3


def test_parse_takes_an_index_or_the_job_runners() -> None:
    assert parse("0/4", {}) == Shard(0, 4)
    assert parse("auto/4", {"JOB_COMPLETION_INDEX": "3"}) == Shard(3, 4)
    assert parse("auto/8", {"AWS_BATCH_JOB_ARRAY_INDEX": "5"}) == Shard(5, 8)
    assert str(Shard(1, 3)) == "1/3"


@pytest.mark.parametrize(
    ("text", "environ", "message"),
    [
        ("4/4", {}, "the index counts from 0 to 3"),
        ("1-4", {}, "is not I/N"),
        ("0/0", {}, "N must be between 1 and"),
        ("auto/4", {}, "set I, or run where JOB_COMPLETION_INDEX or AWS_BATCH"),
        ("auto/4", {"JOB_COMPLETION_INDEX": "x"}, "JOB_COMPLETION_INDEX='x' is not a shard"),
        ("auto/4", {"JOB_COMPLETION_INDEX": "²"}, "JOB_COMPLETION_INDEX='²' is not a shard"),
    ],
)
def test_parse_refuses_what_names_no_shard(
    text: str, environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ShardError, match=message):
        parse(text, environ)
