"""`--accounts`: one run over an organisation's accounts and regions, each account's role
assumed, each place (account, region) with quota limiters of its own, one report grouped by
account and region; an account whose role cannot be assumed fails alone; the whole run can
be rolled back, each place in its own account and region.

Sandbox only: the organisation's member accounts are made through the sandbox's controls.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from optimizer_async.sandbox.config import SandboxConfig
from optimizer_async.sandbox.seeder import Seeder
from optimizer_async.sandbox.server import EmbeddedSandbox
from tests.integration.conftest import Optimize
from tests.integration.test_shards import comparable, merge_reports

pytestmark = pytest.mark.sandbox_only("member accounts made by the sandbox's controls")

CALLER = "123456789012"  # the sandbox's own credentials' account: the organisation's tooling
ROLE = "LambdaOptimizer"
EXTERNAL_ID = "org-7f3a"  # a test's external id
# (account, name, external id): B's trust policy asks for an external id.
MEMBERS = (("111111111111", "payments", None), ("222222222222", "search", EXTERNAL_ID),
           ("333333333333", "tools", None))  # fmt: skip
REGIONS = ("us-east-1", "eu-west-1")
# What each place holds: the same suffix in two accounts is two environments.
SEEDED = {
    ("111111111111", "us-east-1"): ("dev", "pr-1"),
    ("111111111111", "eu-west-1"): ("eu",),
    ("222222222222", "us-east-1"): ("dev",),
    ("222222222222", "eu-west-1"): ("pr-2",),
    ("333333333333", "us-east-1"): ("stage",),
    ("333333333333", "eu-west-1"): (),
}
DECOYS_AT = ("111111111111", "us-east-1")  # `dev-old` tagged dev, `bare` untagged


def member_credentials(
    endpoint: str, role_arn: str, external_id: str | None
) -> tuple[str, str, str]:
    sts = boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1")
    if external_id:
        answer = sts.assume_role(RoleArn=role_arn, RoleSessionName="seed", ExternalId=external_id)
    else:
        answer = sts.assume_role(RoleArn=role_arn, RoleSessionName="seed")
    credentials = answer["Credentials"]
    return credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"]


def _retag(seeder_client: Any, function: str, suffix: str | None) -> None:
    arn = seeder_client.get_function(FunctionName=function)["Configuration"]["FunctionArn"]
    if suffix is None:
        seeder_client.untag_resource(Resource=arn, TagKeys=["environment-suffix"])
    else:
        seeder_client.tag_resource(Resource=arn, Tags={"environment-suffix": suffix})


Organisation = Callable[..., Path]


@pytest.fixture
def organisation(sandbox: EmbeddedSandbox, tmp_path: Path) -> Organisation:
    """Three member accounts x two regions, seeded as SEEDED says, with decoys in two places;
    returns the accounts file (more entries can be added: `organisation(extra=[...])`)."""
    endpoint = sandbox.endpoint_url
    entries = []
    for account, name, external_id in MEMBERS:
        arn = sandbox.add_account(account, ROLE, trusted_account=CALLER, external_id=external_id)
        credentials = member_credentials(endpoint, arn, external_id)
        for region in REGIONS:
            suffixes = SEEDED[account, region]
            decoys = ("dev-old", "bare") if (account, region) == DECOYS_AT else ()
            if suffixes or decoys:
                seeder = Seeder(endpoint, region, credentials=credentials)
                seeder.seed([*suffixes, *decoys])
                lam = boto3.client(
                    "lambda",
                    endpoint_url=endpoint,
                    region_name=region,
                    aws_access_key_id=credentials[0],
                    aws_secret_access_key=credentials[1],
                    aws_session_token=credentials[2],
                )
                if decoys:
                    _retag(lam, "lambda-function-dev-old", "dev")  # a leftover of dev
                    _retag(lam, "lambda-function-bare", None)  # no stack tagged it
        entry: dict[str, Any] = {"account_id": account, "name": name, "role": arn,
                                 "regions": list(REGIONS)}  # fmt: skip
        if external_id:
            entry["external_id"] = external_id
        entries.append(entry)
    sandbox.configure(SandboxConfig(rate_limits=True))  # AWS's quotas, per account and region
    sandbox.reset_stats()

    def write(extra: list[dict[str, Any]] = ()) -> Path:  # type: ignore[assignment]
        path = tmp_path / "accounts.yaml"
        path.write_text(json.dumps({"accounts": [*entries, *extra]}))  # JSON is YAML
        return path

    return write


def _places(report: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(p["account"], p["region"]): p for p in report["places"]}


def test_one_run_optimises_every_account_and_region_and_finds_only_the_seeded(
    organisation: Organisation, optimize: Optimize, sandbox: EmbeddedSandbox
) -> None:
    code, report = optimize("--all", "--accounts", str(organisation()))

    assert code == 0, report
    assert report["kind"] == "organisation"
    assert report["status"] == "converged"
    places = _places(report)
    assert set(places) == set(SEEDED)
    for (account, region), suffixes in SEEDED.items():
        place = places[account, region]
        assert place["error"] is None
        run = place["report"]
        assert (run["account"], run["region"]) == (account, region)
        assert run["found"]["environments"] == sorted(suffixes)
        assert {e["status"] for e in run["environments"]} <= {"changed"}
        assert len(run["environments"]) == len(suffixes)
    why = {
        c["function"]: (c["taken"], c["reason"])
        for c in places[DECOYS_AT]["report"]["found"]["candidates"]
    }
    assert why["lambda-function-dev-old"] == (
        False,
        "environment-suffix tag is 'dev', not 'dev-old'",
    )
    assert not why["lambda-function-bare"][0]
    # Per-account totals: each account's places, summed.
    totals = {a["account"]: a for a in report["accounts"]}
    for account, _, _ in MEMBERS:
        mine = [p for (a, _), p in places.items() if a == account]
        assert totals[account]["environments"] == sum(
            len(p["report"]["environments"]) for p in mine
        )
        assert totals[account]["monthly_usd"] == pytest.approx(
            sum(p["report"]["savings"]["monthly_usd"] for p in mine), abs=0.02
        )
    assert report["savings"]["monthly_usd"] == pytest.approx(
        sum(a["monthly_usd"] for a in report["accounts"]), abs=0.02
    )
    # Each account's quota buckets are its own: three accounts' alarms went into us-east-1
    # side by side, each at its account's full PutMetricAlarm rate, and none was throttled.
    for account, _, _ in MEMBERS:
        stats = sandbox.stats(account=account)
        assert stats["total"] > 0
        assert stats["by_outcome"].get("throttled", 0) == 0, (account, stats["by_outcome"])
        alarms = sum(row["count"] for row in stats["calls"] if row["operation"] == "PutMetricAlarm")
        assert alarms == 2 * sum(len(SEEDED[account, r]) for r in REGIONS)
    # Every call the run made is counted once: the caller's and each member's.
    counted = sum(sandbox.stats(account=a)["total"] for a in (CALLER, *(m[0] for m in MEMBERS)))
    assert report["api_calls"]["total"] == counted


def test_an_account_whose_role_cannot_be_assumed_fails_alone(
    organisation: Organisation,
    sandbox: EmbeddedSandbox,
    tmp_path: Path,
) -> None:
    accounts = organisation(
        extra=[
            {
                "account_id": "444444444444",
                "name": "retired",
                "role": f"arn:aws:iam::444444444444:role/{ROLE}",
                "regions": ["us-east-1"],
            }
        ]
    )

    # As people run it: a process of its own, where the SDK's logging would reach stderr.
    done = subprocess.run(
        [sys.executable, "-m", "optimizer_async", "--all", "--accounts", str(accounts),
         "--dry-run", "--output", "json", "--state-dir", str(tmp_path / "state"),
         "--log-format", "json"],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "AWS_ENDPOINT_URL": sandbox.endpoint_url},
    )  # fmt: skip
    code, err, report = done.returncode, done.stderr, json.loads(done.stdout)

    assert code == 1
    assert "Traceback" not in err  # the SDK's own log of the refusal stays out of stderr
    assert all(json.loads(line) for line in err.splitlines())  # one JSON event per line
    assert report["status"] == "planned_with_failures"  # a dry run: the others were planned
    assert not any(key.startswith("sts.GetCallerIdentity") for key in report["api_calls"]["failed"])
    places = _places(report)
    refused = places["444444444444", "us-east-1"]
    assert refused["report"] is None
    assert refused["error"].startswith(f"cannot assume arn:aws:iam::444444444444:role/{ROLE}")
    assert "AccessDenied" in refused["error"]
    others = [p for key, p in places.items() if key != ("444444444444", "us-east-1")]
    assert len(others) == len(SEEDED)
    assert all(p["error"] is None and p["status"] in ("planned", "nothing_to_do") for p in others)
    assert sandbox.stats(account="444444444444")["total"] == 0


def test_a_wrong_external_id_is_refused_and_never_shown(
    organisation: Organisation, optimize: Optimize, tmp_path: Path
) -> None:
    path = organisation()
    text = path.read_text().replace(EXTERNAL_ID, "not-the-right-one")
    path.write_text(text)

    code, report = optimize("--all", "--accounts", str(path), "--dry-run")

    assert code == 1
    search = _places(report)["222222222222", "us-east-1"]
    assert "AccessDenied" in search["error"]
    written = json.dumps(report) + (tmp_path / "optimizer.log").read_text()
    assert "not-the-right-one" not in written
    assert EXTERNAL_ID not in written


def test_an_organisation_run_is_rolled_back_place_by_place(
    organisation: Organisation, optimize: Optimize, tmp_path: Path
) -> None:
    accounts = str(organisation())
    code, report = optimize("--all", "--accounts", accounts)
    assert code == 0

    one_place = _places(report)[DECOYS_AT]["run_id"]
    refusals = [
        optimize("rollback", "--run-id", report["run_id"])[0],  # no --accounts
        # a place's own run, with the caller's credentials: another account's records
        optimize("rollback", "--run-id", one_place)[0],
        optimize("savings", "--run-id", report["run_id"])[0],  # ask each place's run
    ]
    code, listed = optimize("runs")
    # As if killed before its end: the organisation's record names none of its places' runs.
    record = tmp_path / "state" / "runs" / report["run_id"] / "run.json"
    killed = json.loads(record.read_text())
    unnamed = [{**place, "run_id": None} for place in killed["places"]]
    record.write_text(json.dumps({**killed, "status": "running", "places": unnamed}))
    code, undone = optimize("rollback", "--run-id", report["run_id"], "--accounts", accounts)

    assert refusals == [2, 2, 2]
    recorded = {run["run_id"]: run for run in listed["runs"]}[report["run_id"]]
    assert recorded["environments_recorded"] == sum(map(len, SEEDED.values()))
    assert code == 0
    assert undone["rollback_of"] == report["run_id"]
    changed = {key for key, p in _places(report).items() if p["report"]["environments"]}
    assert set(_places(undone)) == changed
    code, again = optimize("--all", "--accounts", accounts, "--dry-run")
    assert code == 0
    for key, place in _places(again).items():
        planned = {e["status"] for e in place["report"]["environments"]}
        assert planned <= {"planned"}, key  # back at the baseline: everything to do again
        assert len(place["report"]["environments"]) == len(SEEDED[key])
    records = [
        json.loads(p.read_text()) for p in (tmp_path / "state" / "runs").glob("*/before-images/*")
    ]
    assert {(r["account_id"], r["region"]) for r in records} == {
        key for key, suffixes in SEEDED.items() if suffixes
    }


def test_organisation_shards_merge_into_the_one_runs_report(
    organisation: Organisation,
    optimize: Optimize,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    accounts = str(organisation())
    ours = ("--all", "--accounts", accounts, "--dry-run", "--free-tier")
    code, whole = optimize(*ours)
    assert code == 0
    paths, taken = [], []
    for index in range(3):
        code, part = optimize(*ours, "--shard", f"{index}/3")
        assert code == 0
        taken += [
            (p["account"], p["region"], suffix)
            for p in part["places"]
            for suffix in p["report"]["shard"]["environments"]
        ]
        paths.append(tmp_path / f"{index}.json")
        paths[-1].write_text(json.dumps(part))
    every = [(a, r, s) for (a, r), suffixes in SEEDED.items() for s in suffixes]
    assert sorted(taken) == sorted(every)  # each (account, region, suffix) exactly once

    code, out, err = merge_reports(capsys, *reversed(paths))

    assert code == 0, err
    merged = json.loads(out)
    assert merged["kind"] == "organisation"
    assert merged["merged_from"] == [json.loads(p.read_text())["run_id"] for p in paths]
    for name in ("status", "accounts", "savings", "notes"):
        assert merged[name] == whole[name], name
    assert [comparable(p["report"]) for p in merged["places"]] == [
        comparable(p["report"]) for p in whole["places"]
    ]
    # A place one shard could not run: what the other shards did there still stands.
    broken = json.loads(paths[1].read_text())
    lost = [e["suffix"] for e in broken["places"][0]["report"]["environments"]]
    broken["places"][0] |= {"report": None, "status": "failed", "error": "AccessDenied: no"}
    paths[1].write_text(json.dumps(broken))
    code, out, err = merge_reports(capsys, *paths)
    assert code == 1, err
    place = json.loads(out)["places"][0]
    assert place["status"] == "failed"
    assert place["error"] == "shard 1/3: AccessDenied: no"
    kept = sorted(e["suffix"] for e in place["report"]["environments"])
    assert kept == sorted(set(SEEDED[place["account"], place["region"]]) - set(lost))


def test_a_plan_is_applied_only_in_the_account_and_region_it_was_made_for(
    sandbox: EmbeddedSandbox,
    seed: Callable[..., list[str]],
    optimize: Optimize,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (home,) = seed("home")  # in the caller's own account
    plan = tmp_path / "plan.json"
    code, _ = optimize("--suffix", home, "--dry-run", "--plan-out", str(plan))
    assert code == 0
    document = json.loads(plan.read_text())
    assert document["environments"][home]["account_id"] == CALLER
    assert document["environments"][home]["region"] == "us-east-1"
    arn = sandbox.add_account("111111111111", ROLE, trusted_account=CALLER)
    key, secret, token = member_credentials(sandbox.endpoint_url, arn, None)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("AWS_SESSION_TOKEN", token)
    sandbox.reset_stats()

    code, _ = optimize("apply", str(plan))

    assert code == 2  # refused before any write: the plan is another account's
    assert sandbox.stats()["writes"] == 0


def test_an_organisations_plan_is_reviewed_then_applied_place_by_place(
    organisation: Organisation, optimize: Optimize, tmp_path: Path, sandbox: EmbeddedSandbox
) -> None:
    accounts = str(organisation())
    plan = tmp_path / "plan.json"
    code, planned = optimize("--all", "--accounts", accounts, "--dry-run", "--plan-out", str(plan))
    assert code == 0
    assert planned["plan_out"] == str(plan)
    document = json.loads(plan.read_text())
    assert document["kind"] == "lambda-optimizer organisation plan"
    held = {
        (p["account"], p["region"]): sorted(p["plan"]["environments"]) for p in document["places"]
    }
    assert held == {key: sorted(suffixes) for key, suffixes in SEEDED.items()}
    assert sandbox.stats()["writes"] == 0

    twice = tmp_path / "twice.json"
    twice.write_text(json.dumps({**document, "places": document["places"][:1] * 2}))
    refusals = [
        optimize("apply", str(twice), "--accounts", accounts)[0],  # one place planned twice
        optimize("apply", str(plan))[0],  # whose accounts? the file says
    ]
    assert refusals == [2, 2]
    refused = 2
    code, applied = optimize("apply", str(plan), "--accounts", accounts)

    assert refused == 2
    assert code == 0, applied
    assert applied["applied_plan"] == str(plan)
    for key, place in _places(applied).items():
        run = place["report"]
        assert (run["account"], run["region"]) == key
        assert sorted(e["suffix"] for e in run["environments"]) == sorted(SEEDED[key])
        assert {e["status"] for e in run["environments"]} <= {"changed"}
    code, again = optimize("--all", "--accounts", accounts, "--dry-run")
    assert code == 0
    assert again["status"] == "nothing_to_do"
