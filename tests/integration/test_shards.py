"""`--shard I/N` and `report merge`: N shard runs together cover every environment once,
and their merged report is the report of one run over all of them (ids, times and API call
counts aside)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from optimizer_async import cli
from tests.integration.conftest import Optimize, Unique

Seed = Callable[..., list[str]]
_RUN_ONLY = ("run_id", "started_at", "elapsed_s", "api_calls", "shard", "merged_from")


def merge_reports(capsys: pytest.CaptureFixture[str], *paths: Path) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli.main(["report", "merge", *map(str, paths)])
    out, err = capsys.readouterr()
    return code, out, err


def comparable(report: dict[str, Any]) -> Any:
    """The report without what differs from run to run: ids, times, call counts, and the
    Logs Insights query each function's REPORT lines came from (`scan`: its id, the log
    groups it read together and the bytes it scanned are the run's, as its calls are)."""

    def without_ids(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: without_ids(v) for k, v in value.items() if k != "scan"}
        return [without_ids(v) for v in value] if isinstance(value, list) else value

    return without_ids({key: value for key, value in report.items() if key not in _RUN_ONLY})


def test_shards_cover_every_environment_once_and_merge_into_one_runs_report(
    seed: Seed,
    optimize: Optimize,
    unique: Unique,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    suffixes = seed(*(unique(f"pr-{n}") for n in range(6)), functions_per_env=1)
    ours = ["--all", "--match", f"{suffixes[0].split('-')[0]}-*", "--dry-run", "--free-tier"]
    code, whole = optimize(*ours)
    assert code == 0
    assert [e["suffix"] for e in whole["environments"]] == sorted(suffixes)

    reads = whole["api_calls"]["by_operation"]["lambda"]["GetFunction"]
    for count in range(1, 5):
        paths, taken, read = [], [], 0
        for index in range(count):
            code, part = optimize(*ours, "--shard", f"{index}/{count}")
            assert code == 0
            assert part["shard"]["of"] == part["shard"]["environments"]  # it found its own
            taken += part["shard"]["environments"]
            read += part["api_calls"]["by_operation"]["lambda"].get("GetFunction", 0)
            paths.append(tmp_path / f"{count}-{index}.json")
            paths[-1].write_text(json.dumps(part))
        assert sorted(taken) == sorted(suffixes)  # every environment, exactly once
        assert read == reads  # each candidate read by one shard only

        code, out, err = merge_reports(capsys, *reversed(paths))  # in any order
        assert code == 0, err
        merged = json.loads(out)
        assert comparable(merged) == comparable(whole)
        assert merged["merged_from"] == [json.loads(p.read_text())["run_id"] for p in paths]


def test_merge_refuses_an_incomplete_or_foreign_set_in_one_line(
    seed: Seed,
    optimize: Optimize,
    unique: Unique,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (suffix,) = seed(unique("dev"))
    reports = {}
    for name, extra in {"0of2": ("--shard", "0/2"), "plain": ()}.items():
        code, report = optimize("--suffix", suffix, "--dry-run", *extra)
        assert code == 0
        reports[name] = tmp_path / f"{name}.json"
        reports[name].write_text(json.dumps(report))

    cut = json.loads(reports["0of2"].read_text())
    del cut["shard"]["money_lines"], cut["account"]
    reports["cut"] = tmp_path / "cut.json"
    reports["cut"].write_text(json.dumps(cut))
    for paths, message in [
        ((reports["cut"],), "cut.json is not a whole shard report: no account, shard.money_lines"),
        ((reports["0of2"],), "shard(s) 1/2 missing"),
        ((reports["0of2"], reports["0of2"]), "shard(s) 0/2 given twice"),
        ((reports["plain"],), "is not a shard's report (a run with --shard I/N)"),
        ((tmp_path / "none.json",), "none.json: No such file or directory"),
    ]:
        code, out, err = merge_reports(capsys, *paths)
        assert code == 2
        assert out == ""
        assert err.count("\n") == 1
        assert err.startswith("lambda-optimizer: error: ")
        assert message in err
        assert "cannot be read" not in err  # said plainly, not wrapped as unreadable
