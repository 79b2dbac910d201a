"""`make chaos`: the fault matrix and the crash suite, against the embedded sandbox.

Matrix: fault kinds (transient errors, lost connections and slow answers, answers lost after
the write committed) x rates x seeds, plus long InProgress windows, updates that end
`Failed` and slow IAM propagation. Each scenario seeds fresh environments, runs the
optimizer with the faults on, then checks:
- every change not applied and verified is reported with a reason (else: unreported);
- nothing is lost: every variable a function had is there byte for byte;
- nothing is duplicated: one queue, one of each alarm, no repeated inline policy;
- a second run, faults off, converges.
Crash suite: the optimizer in a child process is killed (SIGKILL) a seeded moment after its
first before-image is saved; then `rollback` restores every setting of its before-images.

Prints one JSON summary; exits 1 if anything was lost, duplicated or unreported.
`python -m tests.chaos.matrix [--seeds N] [--crashes N]`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optimizer_async import cli
from optimizer_async.definitions.naming import EnvironmentNames
from optimizer_async.sandbox.config import AFTER_COMMIT_KINDS, SandboxConfig
from optimizer_async.sandbox.seeder import Seeder
from optimizer_async.sandbox.server import ACCESS_KEY_ID, SECRET_ACCESS_KEY, EmbeddedSandbox
from tests.conftest import make_client
from tests.integration.test_rollback import assert_as_before, state_key

SUFFIXES = ("dev", "staging", "prod")
KINDS: dict[str, tuple[str, ...]] = {
    "transient": ("throttle", "internal_error", "unavailable"),
    "network": ("connection_reset", "slow"),
    "after-commit": AFTER_COMMIT_KINDS,
}
RATES = (0.05, 0.2)
SPECIAL: dict[str, dict[str, Any]] = {
    "in-progress-5s": {"update_s": 5.0},
    "updates-fail": {"update_failure_rate": 0.3},
    "iam-delay-10s": {"iam_propagation_s": 10.0},
}


@dataclass
class Summary:
    scenarios: int = 0
    runs: int = 0
    converged: int = 0
    failed_as_reported: int = 0
    converged_on_rerun: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    unreported: list[str] = field(default_factory=list)
    not_converged_on_rerun: list[str] = field(default_factory=list)
    crashes: int = 0
    crashes_before_any_write: int = 0  # killed before the first before-image: nothing to undo
    crashes_restored: int = 0

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.unreported or self.not_converged_on_rerun)


def _optimize(*args: str) -> tuple[int, dict[str, Any]]:
    out = io.StringIO()
    with tempfile.TemporaryDirectory() as logs, contextlib.redirect_stdout(out):
        code = cli.main([*args, "--output", "json", "--log-level", "error",
                         "--log-file", str(Path(logs) / "run.log")])  # fmt: skip
    text = out.getvalue()
    return code, json.loads(text) if text.strip() else {}


def _variables(endpoint: str) -> dict[str, dict[str, str]]:
    lam = make_client(endpoint, "lambda")
    return {
        EnvironmentNames(s).function(): lam.get_function_configuration(
            FunctionName=EnvironmentNames(s).function()
        )
        .get("Environment", {})
        .get("Variables", {})
        for s in SUFFIXES
    }


def _check(endpoint: str, before: dict[str, dict[str, str]], name: str, summary: Summary) -> None:
    after = _variables(endpoint)
    for function, variables in before.items():
        for key, value in variables.items():
            if after[function].get(key) != value:
                summary.lost.append(f"{name}: {function} variable {key}")
    sqs, cloudwatch = make_client(endpoint, "sqs"), make_client(endpoint, "cloudwatch")
    iam = make_client(endpoint, "iam")
    for suffix in SUFFIXES:
        names = EnvironmentNames(suffix)
        queues = sqs.list_queues(QueueNamePrefix=names.dead_letter_queue).get("QueueUrls", [])
        if len(queues) > 1:
            summary.duplicated.append(f"{name}: {len(queues)} queues for {suffix}")
        alarms = [a for page in cloudwatch.get_paginator("describe_alarms").paginate()
                  for a in page["MetricAlarms"]]  # fmt: skip
        names_seen = [a["AlarmName"] for a in alarms if a["AlarmName"].endswith(f"-{suffix}")]
        if len(names_seen) != len(set(names_seen)):
            summary.duplicated.append(f"{name}: repeated alarms for {suffix}")
        for policy in iam.list_role_policies(RoleName=names.role)["PolicyNames"]:
            document = iam.get_role_policy(RoleName=names.role, PolicyName=policy)
            statements = document["PolicyDocument"].get("Statement", [])
            texts = [json.dumps(statement, sort_keys=True) for statement in statements]
            if len(texts) != len(set(texts)):
                summary.duplicated.append(f"{name}: repeated statements in {policy}")
        watched = [
            json.dumps([a.get("MetricName"), a.get("Dimensions"), a.get("Metrics")], sort_keys=True)
            for a in alarms
            if a["AlarmName"].endswith(f"-{suffix}")
        ]
        if len(watched) != len(set(watched)):
            summary.duplicated.append(f"{name}: two alarms watch the same metric for {suffix}")


def _changes(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        change
        for env in report.get("environments", [])
        for change in [*env["changes"], *(c for fn in env["functions"] for c in fn["changes"])]
    ]


def scenario(sandbox: EmbeddedSandbox, name: str, faults: dict[str, Any], summary: Summary) -> None:
    sandbox.reset()
    Seeder(sandbox.endpoint_url, credentials=(ACCESS_KEY_ID, SECRET_ACCESS_KEY)).seed(SUFFIXES)
    before = _variables(sandbox.endpoint_url)
    summary.scenarios += 1
    with tempfile.TemporaryDirectory() as state, sandbox.configured(**faults):
        code, report = _optimize("--suffix", ",".join(SUFFIXES), "--state-dir", state)
    summary.runs += 1
    if not report:
        summary.unreported.append(f"{name}: exit {code} without a report")
    elif code == 0:
        summary.converged += 1
    else:
        unexplained = [
            f"{name}: {c['resource']} {c['setting']} {c['status']}"
            for c in _changes(report)
            if (c["status"], c["verified"]) != ("applied", True) and not c.get("error")
        ]
        envs = [e for e in report["environments"] if e["status"] == "failed"]
        if unexplained or not envs:
            summary.unreported += unexplained or [f"{name}: exit {code}, nothing failed"]
        else:
            summary.failed_as_reported += 1
    _check(sandbox.endpoint_url, before, name, summary)
    with tempfile.TemporaryDirectory() as state:
        code, _ = _optimize("--suffix", ",".join(SUFFIXES), "--state-dir", state)
    summary.runs += 1
    if code == 0:
        summary.converged_on_rerun += 1
    else:
        summary.not_converged_on_rerun.append(f"{name}: re-run exited {code}")
    _check(sandbox.endpoint_url, before, f"{name} (re-run)", summary)


def crash(sandbox: EmbeddedSandbox, seed: int, summary: Summary) -> None:
    """SIGKILL at a seeded moment mid-run; rollback restores what the images recorded."""
    sandbox.reset()
    Seeder(sandbox.endpoint_url, credentials=(ACCESS_KEY_ID, SECRET_ACCESS_KEY)).seed(SUFFIXES)
    delay = random.Random(seed).uniform(0.0, 3.0)  # after the first before-image is saved
    summary.crashes += 1
    with tempfile.TemporaryDirectory() as state, sandbox.configured(update_s=2.0):
        process = subprocess.Popen(
            [sys.executable, "-m", "optimizer_async", "--suffix", ",".join(SUFFIXES),
             "--state-dir", state, "--log-level", "error"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ),
        )  # fmt: skip
        images = Path(state) / "runs"
        deadline = time.monotonic() + 120
        while not list(images.glob("*/before-images/*.json")) and process.poll() is None:
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        time.sleep(delay)  # a seeded moment into the writes
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        runs = list((Path(state) / "runs").glob("*/before-images/*.json"))
        if not runs:  # it never saved a before-image: nothing was checked
            summary.crashes_before_any_write += 1
            summary.unreported.append(f"crash {seed}: no before-image was ever written")
            return
        run_id = runs[0].parents[1].name
        code, _ = _optimize("rollback", "--run-id", run_id, "--state-dir", state)
        key = state_key(Path(state))
        client = lambda service: make_client(sandbox.endpoint_url, service)  # noqa: E731
        try:
            for image_path in runs:
                assert_as_before(client, json.loads(image_path.read_text()), key)
        except AssertionError as error:
            summary.lost.append(f"crash {seed}: rollback left {error}")
            return
        if code == 0:
            summary.crashes_restored += 1
        else:
            summary.unreported.append(f"crash {seed}: rollback exited {code}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2, help="seeds per fault scenario (2)")
    parser.add_argument("--crashes", type=int, default=6, help="SIGKILL runs (6)")
    args = parser.parse_args(argv)
    summary = Summary()
    started = time.monotonic()
    with EmbeddedSandbox(SandboxConfig()) as sandbox:
        os.environ.update(
            AWS_ENDPOINT_URL=sandbox.endpoint_url,
            AWS_ACCESS_KEY_ID=ACCESS_KEY_ID,
            AWS_SECRET_ACCESS_KEY=SECRET_ACCESS_KEY,
            AWS_REGION="us-east-1",
        )
        os.environ.pop("ENVIRONMENT_SUFFIX", None)
        for kind, kinds in KINDS.items():
            for rate in RATES:
                for seed in range(args.seeds):
                    faults = {"fault_rate": rate, "fault_seed": seed, "fault_kinds": kinds}
                    scenario(sandbox, f"{kind} {rate:g} seed {seed}", faults, summary)
        for name, settings in SPECIAL.items():
            for seed in range(args.seeds):
                scenario(sandbox, f"{name} seed {seed}", {**settings, "fault_seed": seed}, summary)
        for seed in range(args.crashes):
            crash(sandbox, seed, summary)
    document = {
        **summary.__dict__,
        "ok": summary.ok,
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    print(json.dumps(document, indent=2))
    return 0 if summary.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
