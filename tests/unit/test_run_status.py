"""A run's status from its environments' (pure), its exit code, and shard fingerprints."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from optimizer_async.execution.results import (
    FAILING,
    STATUS_TEXT,
    ChangeOutcome,
    EnvironmentOutcome,
    FunctionOutcome,
    run_status,
)
from optimizer_async.fleet.shards import FINGERPRINT_PARTS, Fingerprint, differing
from optimizer_async.reporting.report import RunReport
from optimizer_async.steps.base import Change


@pytest.mark.parametrize(
    ("statuses", "flags", "expected"),
    [
        ({"planned", "unchanged"}, {"dry_run": True}, "planned"),
        ({"planned", "failed"}, {"dry_run": True}, "planned_with_failures"),
        ({"unchanged", "failed"}, {"dry_run": True}, "planned_with_failures"),
        ({"failed"}, {"dry_run": True}, "failed"),
        ({"unchanged"}, {"dry_run": True}, "nothing_to_do"),
        ({"changed", "unchanged"}, {"applied": True}, "converged"),
        ({"changed", "failed"}, {"applied": True}, "partly_applied"),
        ({"failed"}, {"applied": True}, "partly_applied"),  # its own changes half done
        ({"failed", "unchanged"}, {}, "failed"),
        ({"changed"}, {"applied": True, "rollback": True}, "rolled_back"),
        ({"changed", "failed"}, {"applied": True, "rollback": True}, "partly_applied"),
        ({"held"}, {}, "held"),
        ({"held"}, {"dry_run": True}, "held"),
        ({"held", "unchanged"}, {}, "nothing_to_do"),  # one done, one held: not a failure
        ({"held", "changed"}, {"applied": True}, "converged"),
        ({"held", "failed"}, {}, "failed"),
        (set(), {}, "nothing_to_do"),
        ({"changed", "failed"}, {"applied": True, "stopped": True}, "stopped"),
    ],
)
def test_run_status(statuses: set[str], flags: dict[str, bool], expected: str) -> None:
    stopped = flags.pop("stopped", False)
    assert run_status(statuses, stopped, **flags) == expected


def test_every_status_has_its_words_and_failing_ones_exit_1() -> None:
    assert set(STATUS_TEXT) >= {"running", "interrupted"} | FAILING
    assert len(set(STATUS_TEXT.values())) == len(STATUS_TEXT)  # no two read alike
    assert {"planned_with_failures", "partly_applied", "failed", "held"} == FAILING


def _report(*environments: EnvironmentOutcome, dry_run: bool = False) -> RunReport:
    return RunReport("r-1", dry_run, "us-east-1", datetime.now(UTC), 1.0, list(environments), {})


def _changed(
    suffix: str, status: str = "applied", verified: bool | None = True
) -> EnvironmentOutcome:
    change = Change("function_configuration", f"lambda-function-{suffix}", "MemorySize", 3008, 1024)
    outcome = ChangeOutcome(change, status, verified)  # type: ignore[arg-type]
    return EnvironmentOutcome(suffix, functions=[FunctionOutcome(f"fn-{suffix}", [outcome])])


def test_an_unverified_change_is_not_applied_and_held_environments_alone_exit_1() -> None:
    half = _report(_changed("dev"), _changed("qa", verified=False))
    assert (half.status, half.exit_code) == ("partly_applied", 1)
    none = _report(_changed("qa", verified=False))
    assert (none.status, none.exit_code) == ("failed", 1)
    held = _report(
        EnvironmentOutcome("dev", held_by="run x"), EnvironmentOutcome("qa", held_by="y")
    )
    assert (held.status, held.exit_code) == ("held", 1)
    some = _report(EnvironmentOutcome("dev", held_by="run x"), _changed("qa"))
    assert (some.status, some.exit_code) == ("converged", 0)
    undone = _report(_changed("dev"))
    undone.rollback_of = "20261127T000000Z-abcdef"
    assert (undone.status, undone.exit_code) == ("rolled_back", 0)


def _parts(**changes: object) -> dict[str, object]:
    values: dict[str, object] = {part: part for part in FINGERPRINT_PARTS}
    return {**values, **changes}


def test_a_fingerprint_names_the_parts_that_differ() -> None:
    one = Fingerprint.of(_parts()).to_json()
    assert differing(one, Fingerprint.of(_parts()).to_json()) == []
    other = Fingerprint.of(_parts(selection={"match": ["pr-1*"]}, candidates=["pr-1"]))
    assert differing(one, other.to_json()) == ["selection", "candidates"]
    assert one["sha256"] != other.to_json()["sha256"]
    with pytest.raises(ValueError, match="exactly the parts"):
        Fingerprint.of({"command": "run"})
    with pytest.raises(ValueError, match="exactly the parts"):
        Fingerprint.of(_parts(extra=1))
