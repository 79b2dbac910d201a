from __future__ import annotations

import re
from pathlib import Path

import pytest

from optimizer_async.aws import limits
from optimizer_async.definitions import baseline


def test_target_is_a_real_optimisation_of_baseline() -> None:
    base, target = baseline.BASELINE, baseline.TARGET
    assert target.memory_mb < base.memory_mb
    assert target.timeout_s < base.timeout_s
    assert base.reserved_concurrency is None
    assert target.reserved_concurrency == 50
    assert base.log_retention_days is None
    assert target.log_retention_days == 7
    assert (base.tracing_mode, target.tracing_mode) == ("PassThrough", "Active")


@pytest.mark.parametrize(
    "changes",
    [
        {"memory_mb": 127},
        {"memory_mb": 10_241},
        {"timeout_s": 0},
        {"timeout_s": 901},
        {"log_retention_days": 8},
        {"reserved_concurrency": 901},
        {"tracing_mode": "On"},
    ],
)
def test_settings_outside_aws_limits_are_refused(changes: dict[str, object]) -> None:
    values = {**baseline.TARGET.__dict__, **changes}
    with pytest.raises(ValueError, match=r"outside|not one|must be"):
        baseline.FunctionSettings(**values)


def test_function_bases_never_collide_with_a_hyphenated_suffix() -> None:
    bases = baseline.function_bases(3)
    assert bases == ("lambda-function", "lambda-function2", "lambda-function3")
    names = {f"{base}-dev" for base in bases}
    assert "lambda-function-2-dev" not in names


def test_retention_list_is_sorted_and_contains_the_target() -> None:
    assert list(limits.LOG_RETENTION_DAYS) == sorted(limits.LOG_RETENTION_DAYS)
    assert baseline.TARGET.log_retention_days in limits.LOG_RETENTION_DAYS


def test_the_secret_cache_priced_is_the_handlers() -> None:
    """Secret reads are priced at the handler's cache lifetime: the two must agree."""
    handler = Path(__file__).resolve().parents[2] / "lambda" / "function" / "handler.py"
    found = re.search(r"^SECRET_CACHE_SECONDS = (\d+)$", handler.read_text(), re.MULTILINE)
    assert found is not None
    assert int(found.group(1)) == baseline.HANDLER_SECRET_CACHE_S
