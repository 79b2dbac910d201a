"""Reviewed plans applied exactly as reviewed: `--dry-run --plan-out`, then `apply PLAN`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from optimizer_async.definitions.naming import EnvironmentNames
from optimizer_async.records import plan_file
from tests.conftest import ClientFactory
from tests.integration.conftest import Optimize, Unique
from tests.integration.test_optimizer import assert_optimised

Seed = Callable[..., list[str]]


def _changes(report: dict[str, Any], suffix: str) -> list[dict[str, Any]]:
    (env,) = [e for e in report["environments"] if e["suffix"] == suffix]
    return [*env["changes"], *(c for fn in env["functions"] for c in fn["changes"])]


def test_a_plan_applied_ends_as_a_direct_run_and_applies_once(
    seed: Seed, optimize: Optimize, client: ClientFactory, unique: Unique, tmp_path: Path
) -> None:
    (dev,) = seed(unique("dev"))
    plan, markdown = tmp_path / "plan.json", tmp_path / "plan.md"
    code, dry = optimize(
        "--suffix", dev, "--dry-run", "--plan-out", str(plan), "--report-file", str(markdown)
    )
    assert (code, dry["api_calls"]["writes"], dry["plan_out"]) == (0, 0, str(plan))
    assert f"lambda-optimizer apply {plan}" in markdown.read_text()  # what the PR shows
    document = json.loads(plan.read_text())
    assert document["kind"] == "lambda-optimizer plan"
    assert document["schema_version"] == 2
    function = EnvironmentNames(dev).function()
    assert document["environments"][dev]["revisions"][function]  # the fingerprint
    assert dry["plan_sha256"] == document["sha256"] == plan_file.digest(document)

    code, applied = optimize("apply", str(plan))
    assert code == 0, json.dumps(applied, indent=1)
    assert applied["command"] == "apply"
    assert applied["plan_sha256"] == document["sha256"]
    planned = {(c["resource"], c["setting"]) for c in _changes(dry, dev)}
    done = {(c["resource"], c["setting"]) for c in _changes(applied, dev)}
    assert done == planned
    assert all((c["status"], c["verified"]) == ("applied", True) for c in _changes(applied, dev))
    assert_optimised(client, dev)
    code, direct = optimize("--suffix", dev)  # what a direct run would still do: nothing
    assert (code, direct["status"], direct["api_calls"]["writes"]) == (0, "nothing_to_do", 0)
    code, again = optimize("apply", str(plan))
    assert (code, again["status"], again["api_calls"]["writes"]) == (0, "nothing_to_do", 0)


def test_a_resource_changed_since_the_plan_is_refused_the_others_applied(
    seed: Seed, optimize: Optimize, client: ClientFactory, unique: Unique, tmp_path: Path
) -> None:
    dev, staging = seed(unique("dev"), unique("staging"))
    plan = tmp_path / "plan.json"
    assert optimize("--suffix", f"{dev},{staging}", "--dry-run", "--plan-out", str(plan))[0] == 0
    function = EnvironmentNames(dev).function()
    lam = client("lambda")
    lam.update_function_configuration(FunctionName=function, Description="hotfix")
    lam.get_waiter("function_updated_v2").wait(FunctionName=function)

    code, applied = optimize("apply", str(plan))
    assert code == 1
    (fn,) = next(e for e in applied["environments"] if e["suffix"] == dev)["functions"]
    refused = [c for c in fn["changes"] if c["step"] == "function_configuration"]
    assert {c["status"] for c in refused} == {"blocked"}
    assert "changed since the plan" in refused[0]["error"]
    assert "RevisionId moved" in refused[0]["error"]
    assert lam.get_function(FunctionName=function)["Configuration"]["MemorySize"] == 3008
    others = [c for c in fn["changes"] if c["step"] != "function_configuration"]
    assert others
    assert all(c["status"] == "applied" for c in others)
    assert_optimised(client, staging)


def test_apply_never_adds_what_the_plan_did_not_contain(
    seed: Seed, optimize: Optimize, client: ClientFactory, unique: Unique, tmp_path: Path
) -> None:
    (dev,) = seed(unique("dev"))
    plan = tmp_path / "plan.json"
    code, _ = optimize(
        "--suffix", dev, "--dry-run", "--only", "log_retention", "--plan-out", str(plan)
    )
    assert code == 0
    code, applied = optimize("apply", str(plan))
    assert code == 0
    assert applied["steps"] == ["log_retention"]
    writes = {
        op
        for service in applied["api_calls"]["by_operation"].values()
        for op in service
        if not op.startswith(("Get", "Describe", "List"))
    }
    assert writes == {"PutRetentionPolicy"}
    assert (
        client("lambda").get_function(FunctionName=EnvironmentNames(dev).function())[
            "Configuration"
        ]["MemorySize"]
        == 3008
    )
