"""Which read of a function is still the latest when verification comes."""

from __future__ import annotations

from dataclasses import replace

from optimizer_async.steps.latest_reads import LatestReads
from tests.unit.builders import baseline_function


def test_a_read_after_the_only_write_is_the_latest_once() -> None:
    latest, state = LatestReads(), baseline_function("dev").state
    latest.begin(state.name)
    mark = latest.mark(state.name)
    latest.saw(state, mark)
    latest.end(state.name)
    assert latest.take(state.name) == state
    assert latest.take(state.name) is None  # taken once


def test_a_write_under_way_or_begun_since_spoils_the_read() -> None:
    latest, state = LatestReads(), baseline_function("dev").state
    latest.begin(state.name)  # another write (the reservation) under way
    latest.begin(state.name)  # ours
    mark = latest.mark(state.name)
    latest.saw(state, mark)
    assert latest.take(state.name) is None

    latest = LatestReads()
    latest.begin(state.name)
    mark = latest.mark(state.name)
    latest.begin(state.name)  # began and ended while our read was out
    latest.end(state.name)
    latest.saw(state, mark)
    assert latest.take(state.name) is None


def test_a_later_write_forgets_the_read() -> None:
    latest, state = LatestReads(), baseline_function("dev").state
    latest.begin(state.name)
    latest.saw(replace(state, memory_mb=1024), latest.mark(state.name))
    latest.end(state.name)
    latest.begin(state.name)  # e.g. the reservation, after the update was read
    latest.end(state.name)
    assert latest.take(state.name) is None
