"""`report merge` joins only shards of one run: each shard's report carries a fingerprint of
its run (command, selection, steps, targets, guardrails, prices, shard count, the candidates
it judged), and shards whose fingerprints differ are refused in one line naming the parts
that differ (exit 2). A report without a fingerprint is refused too."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from optimizer_async.commands import report_merge
from optimizer_async.runs.configs import MergeConfig
from tests.integration.conftest import Optimize, Unique
from tests.integration.test_shards import merge_reports

Seed = Callable[..., list[str]]


class Shards:
    """Shard runs of `--all --dry-run`, each report kept in a file."""

    def __init__(self, optimize: Optimize, tmp_path: Path) -> None:
        self.optimize, self.tmp_path, self.made = optimize, tmp_path, 0

    def __call__(self, shard: str, *args: str) -> Path:
        code, report = self.optimize("--all", "--dry-run", "--shard", shard, *args)
        assert code == 0, report
        self.made += 1
        path = self.tmp_path / f"shard-{self.made}.json"
        path.write_text(json.dumps(report))
        return path


@pytest.fixture
def shards(optimize: Optimize, tmp_path: Path) -> Shards:
    return Shards(optimize, tmp_path)


def _refused(capsys: pytest.CaptureFixture[str], *paths: Path) -> str:
    code, out, err = merge_reports(capsys, *paths)
    assert (code, out) == (2, "")
    (line,) = err.strip().splitlines()
    assert line.startswith("lambda-optimizer: error: ")
    return line


def test_shards_of_two_fleets_are_refused_and_one_fleets_merge(
    seed: Seed, shards: Shards, unique: Unique, capsys: pytest.CaptureFixture[str]
) -> None:
    ones = seed(*(unique(f"pr-1{n}") for n in range(3)))
    twos = seed(*(unique(f"pr-2{n}") for n in range(3)))
    token = ones[0].split("-")[0]
    two = [shards(f"{i}/3", "--match", f"{token}-pr-2*") for i in range(3)]
    one = [shards(f"{i}/3", "--match", f"{token}-pr-1*") for i in range(3)]

    line = _refused(capsys, two[0], one[1], two[2])
    assert "the reports are not shards of one run: shard 1/3 (run " in line
    assert line.endswith(" in selection, candidates")  # the globs, and so what they found

    for fleet, suffixes in ((two, twos), (one, ones)):  # each fleet's own shards: as before
        code, out, err = merge_reports(capsys, *fleet)
        assert code == 0, err
        merged = json.loads(out)
        assert [env["suffix"] for env in merged["environments"]] == sorted(suffixes)
        assert merged["status"] == "planned"


@pytest.mark.parametrize(
    ("args", "part"),
    [
        (("--guardrails", "strict"), "guardrails"),
        (("--lookback-days", "7"), "guardrails"),
        (("--targets", "TARGETS"), "targets"),
        (("--free-tier",), "prices"),
        (("--skip", "alarms"), "steps"),
    ],
)
def test_shards_run_with_other_settings_are_refused_naming_the_setting(
    seed: Seed,
    shards: Shards,
    unique: Unique,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    part: str,
) -> None:
    (dev,) = seed(unique("dev"))
    targets = tmp_path / "targets.toml"
    targets.write_text("[function]\nmemory_mb = 512\n")
    match = ("--match", dev)
    first = shards("0/2", *match)
    other = shards("1/2", *match, *(str(targets) if a == "TARGETS" else a for a in args))
    line = _refused(capsys, first, other)
    assert line.endswith(f"differs from shard 0/2 (run {_run_id(first)}) in {part}"), line


def test_a_fleet_that_changed_between_shards_is_refused_by_its_candidates(
    seed: Seed, shards: Shards, unique: Unique, capsys: pytest.CaptureFixture[str]
) -> None:
    dev, _ = seed(unique("dev"), unique("staging"))
    glob = ("--match", f"{dev.split('-')[0]}-*")
    before = shards("0/2", *glob)
    seed(unique("qa"))  # a stack deployed while the shards ran
    after = shards("1/2", *glob)
    line = _refused(capsys, before, after)
    assert line.endswith(" in candidates"), line  # the same command line, another fleet


def test_a_report_without_a_fingerprint_is_refused_in_one_line(
    seed: Seed, shards: Shards, unique: Unique, capsys: pytest.CaptureFixture[str]
) -> None:
    (dev,) = seed(unique("dev"))
    paths = [shards(f"{i}/2", "--match", dev) for i in range(2)]
    old = _document(paths[1])
    del old["shard"]["fingerprint"]  # as reports were written before fingerprints
    paths[1].write_text(json.dumps(old))
    line = _refused(capsys, *paths)
    assert f"{paths[1]} has no fingerprint of its run (written by an earlier" in line


def test_a_merged_report_its_file_cannot_take_is_still_printed(
    seed: Seed, shards: Shards, unique: Unique, capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:  # fmt: skip
    (suffix,) = seed(unique("pr-3"))
    token = suffix.split("-")[0]
    reports = tuple(shards(f"{i}/2", "--match", f"{token}-pr-3*") for i in range(2))
    blocked = tmp_path / "a-file"
    blocked.write_text("")  # what was a directory when the options were checked is a file now
    capsys.readouterr()
    target = blocked / "merged.json"
    code = report_merge.COMMAND.execute(MergeConfig(reports=reports, report_file=target))
    out, err = capsys.readouterr()
    assert code == 1
    assert [env["suffix"] for env in json.loads(out)["environments"]] == [suffix]
    (line,) = err.strip().splitlines()
    assert line == f"lambda-optimizer: cannot write {target}: Not a directory"


def _document(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def _run_id(path: Path) -> str:
    return str(_document(path)["run_id"])
