"""The conformance table in the docs is the one the tests' marks make, and the marks name
only behaviours the table knows."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import conformance

DOC = Path(__file__).resolve().parents[2] / "docs" / "conformance.md"


def test_the_docs_table_is_generated_from_the_marks() -> None:
    assert DOC.read_text() == conformance.table(), (
        "docs/conformance.md is stale: python -m tests.conformance > docs/conformance.md"
    )


def test_every_mark_names_a_known_behaviour_and_localstack_gaps_skip_with_a_reason() -> None:
    marked = dict(conformance.marked_tests())
    assert marked, "no test is marked aws_behaviour"
    for keys in marked.values():
        conformance.lacking(keys)  # raises on an unknown key
    assert conformance.skip_reason(("lambda-environment-limit",)) is None
    reason = conformance.skip_reason(("metric-percentiles", "lambda-environment-limit"))
    assert reason == (
        "LocalStack 4.14.0 lacks: metric-percentiles (answers every percentile with a 500)"
    )
    with pytest.raises(KeyError, match="no such AWS behaviour"):
        conformance.lacking(("teleportation",))
