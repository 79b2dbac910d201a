"""Strict JSON: a key given twice is refused at any depth; everything else reads as json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from optimizer_async.jsonio import strict_json


def test_a_key_given_twice_is_refused_at_any_depth() -> None:
    with pytest.raises(strict_json.DuplicateKey, match="'dry_run' is given twice"):
        strict_json.loads('{"dry_run": true, "dry_run": false}')
    with pytest.raises(ValueError, match="'a' is given twice"):
        strict_json.loads('{"outer": [{"a": 1, "a": 2}]}')


def test_other_json_reads_as_the_standard_reader_reads_it() -> None:
    text = '{"a": [1, 2.5, null, true], "b": {"c": "d"}, "e": "\\u00e9"}'
    assert strict_json.loads(text) == json.loads(text)
    with pytest.raises(json.JSONDecodeError):
        strict_json.loads("{not json")


def test_a_report_to_merge_naming_a_key_twice_is_refused(tmp_path: Path) -> None:
    from optimizer_async.organisations import merge

    shard = tmp_path / "s0.json"
    shard.write_text('{"schema_version": 1, "status": "converged", "status": "failed"}')
    with pytest.raises(merge.MergeError, match="'status' is given twice"):
        merge.load([shard])
