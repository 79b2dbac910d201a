from __future__ import annotations

import pytest

from optimizer_async.definitions.naming import (
    MAX_SUFFIX_LENGTH,
    EnvironmentNames,
    InvalidNameError,
    parse_suffixes,
    validate_function_base,
    validate_suffix,
)


@pytest.mark.parametrize("suffix", ["dev", "pr-123", "a", "x" * MAX_SUFFIX_LENGTH, "0staging9"])
def test_valid_suffixes(suffix: str) -> None:
    assert validate_suffix(suffix) == suffix


@pytest.mark.parametrize(
    ("suffix", "reason"),
    [
        ("", "empty"),
        ("Dev", "lower-case"),
        ("-dev", "inner hyphens"),
        ("dev-", "inner hyphens"),
        ("dev_1", "lower-case"),
        ("dev.1", "lower-case"),
        ("x" * (MAX_SUFFIX_LENGTH + 1), "longer than"),
    ],
)
def test_invalid_suffixes(suffix: str, reason: str) -> None:
    with pytest.raises(InvalidNameError, match=reason):
        validate_suffix(suffix)


def test_longest_suffix_still_makes_a_valid_bucket_name() -> None:
    bucket = EnvironmentNames("x" * MAX_SUFFIX_LENGTH).bucket("123456789012")
    assert len(bucket) == 63


def test_parse_suffixes_splits_dedupes_and_keeps_order() -> None:
    assert parse_suffixes(["dev, staging", "dev", " prod ,,"]) == ("dev", "staging", "prod")
    with pytest.raises(InvalidNameError):
        parse_suffixes(["dev,BAD"])


def test_every_name_carries_the_suffix() -> None:
    names = EnvironmentNames("pr-7")
    assert names.function() == "lambda-function-pr-7"
    assert names.function_log_group() == "/aws/lambda/lambda-function-pr-7"
    assert names.role == "lambda-role-pr-7"
    assert names.layer == "shared-deps-pr-7"
    assert names.bucket("123456789012") == "lambda-deployments-pr-7-123456789012"
    assert names.database_url_secret == "database-url-pr-7"
    assert names.api_key_secret == "api-key-pr-7"
    assert names.dead_letter_queue == "lambda-dlq-pr-7"
    assert names.optimizer_policy == "lambda-optimizer-pr-7"
    assert names.tags["environment-suffix"] == "pr-7"


def test_bucket_needs_a_real_account_id() -> None:
    with pytest.raises(InvalidNameError):
        EnvironmentNames("dev").bucket("12345")


def test_function_base_validation() -> None:
    assert validate_function_base("orders_api-v2") == "orders_api-v2"
    for bad in ("", "-x", "a b", "x" * 40):
        with pytest.raises(InvalidNameError):
            validate_function_base(bad)
