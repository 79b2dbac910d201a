"""A plan file is data, never authority, and is bound to its review.

Someone with the file between review and apply edits it as the issue did (a statement added
to the role policy, MemorySize 128 against ~780 MB used, an exec wrapper variable, the
retention pointed at another environment's log group), recomputing its sha256 as they
would: `apply` refuses the whole plan (exit 2, a line per refusal) before any AWS call.
`--expect-sha256` pins the digest the review showed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from optimizer_async import cli
from optimizer_async.definitions.naming import EnvironmentNames
from optimizer_async.records import plan_file
from optimizer_async.sandbox.server import EmbeddedSandbox
from tests.conftest import ClientFactory
from tests.integration.conftest import Optimize, Unique

pytestmark = pytest.mark.sandbox_only("counts the calls apply makes")

Seed = Callable[..., list[str]]
Document = dict[str, Any]
Edit = Callable[[Document, str, str], None]
OTHER_ACCOUNT = "999999999999"


@pytest.fixture
def planned(
    seed: Seed, optimize: Optimize, unique: Unique, tmp_path: Path
) -> tuple[str, str, Path, Path]:
    """`dev` planned (its function uses about 780 MB: the `slow` profile) into plan.json and
    plan.md; `qa`, another environment, left alone."""
    dev, qa = seed(unique("dev"), unique("qa"), profiles=("slow",))
    plan, markdown = tmp_path / "plan.json", tmp_path / "plan.md"
    code, dry = optimize(
        "--suffix", dev, "--dry-run", "--plan-out", str(plan), "--report-file", str(markdown)
    )
    assert code == 0, dry
    return dev, qa, plan, markdown


def _apply(capsys: pytest.CaptureFixture[str], tmp_path: Path, *args: str) -> tuple[int, str]:
    """`lambda-optimizer apply ...` -> (exit code, stderr)."""
    capsys.readouterr()
    options = ["--output", "json", "--state-dir", str(tmp_path / "state"), "--log-level",
               "warning", "--log-file", str(tmp_path / "optimizer.log")]  # fmt: skip
    code = cli.main(["apply", *options, *args])
    return code, capsys.readouterr().err


def _change(document: Document, suffix: str, step: str, setting: str) -> dict[str, Any]:
    changes = document["environments"][suffix]["changes"]
    return next(c for c in changes if c["step"] == step and c["setting"] == setting)


def _added_statement(document: Document, dev: str, qa: str) -> None:
    policy = _change(document, dev, "role_policy", "PolicyDocument")["after"]
    policy["Statement"].append({"Effect": "Allow", "Action": "*", "Resource": "*"})


def _wildcard_action(document: Document, dev: str, qa: str) -> None:
    policy = _change(document, dev, "role_policy", "PolicyDocument")["after"]
    policy["Statement"][0]["Action"] = "sqs:*"


def _memory_128(document: Document, dev: str, qa: str) -> None:
    _change(document, dev, "function_configuration", "MemorySize")["after"] = 128


def _exec_wrapper(document: Document, dev: str, qa: str) -> None:
    function = EnvironmentNames(dev).function()
    document["environments"][dev]["changes"].append(
        {
            "step": "function_configuration",
            "function": function,
            "resource": function,
            "setting": "Environment.Variables.AWS_LAMBDA_EXEC_WRAPPER",
            "before": None,
            "after": "/opt/evil-wrapper",
        }
    )


def _other_log_group(document: Document, dev: str, qa: str) -> None:
    change = _change(document, dev, "log_retention", "RetentionInDays")
    change.update(resource=EnvironmentNames(qa).function_log_group(), after=1)


def _other_account(document: Document, dev: str, qa: str) -> None:
    change = _change(document, dev, "function_configuration", "DeadLetterConfig.TargetArn")
    change["after"] = change["after"].replace(document["environments"][dev]["account_id"],
                                              OTHER_ACCOUNT)  # fmt: skip


def _unknown_step(document: Document, dev: str, qa: str) -> None:
    document["environments"][dev]["changes"].append(
        {
            "step": "evil_step",
            "function": None,
            "resource": "x",
            "setting": "y",
            "before": None,
            "after": 1,
        }
    )


def _unwritten_setting(document: Document, dev: str, qa: str) -> None:
    function = EnvironmentNames(dev).function()
    document["environments"][dev]["changes"].append(
        {
            "step": "function_configuration",
            "function": function,
            "resource": function,
            "setting": "Handler",
            "before": None,
            "after": "evil.handler",
        }
    )


TAMPERED: list[tuple[Edit, str]] = [
    (_added_statement, 'adds {"Action":"*","Effect":"Allow","Resource":"*"}'),
    (_wildcard_action, 'adds {"Action":"sqs:*"'),
    (_memory_128, "MemorySize 128 is not what it plans: 1024 (max memory used"),
    (_exec_wrapper, "AWS_LAMBDA_EXEC_WRAPPER is not a variable function_configuration adds"),
    (_other_log_group, "is not the log group of"),
    (_other_account, f"is a resource of account {OTHER_ACCOUNT}"),
    (_unknown_step, "unknown step 'evil_step'"),
    (_unwritten_setting, "Handler is not a setting function_configuration writes"),
]


@pytest.mark.parametrize(
    ("edit", "refusal"), TAMPERED, ids=[edit.__name__.strip("_") for edit, _ in TAMPERED]
)
def test_a_tampered_plan_is_refused_whole_before_any_aws_call(
    planned: tuple[str, str, Path, Path],
    sandbox: EmbeddedSandbox,
    client: ClientFactory,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    edit: Edit,
    refusal: str,
) -> None:
    dev, qa, plan, _ = planned
    document = json.loads(plan.read_text())
    edit(document, dev, qa)
    plan.write_text(json.dumps(plan_file.sealed(document)))  # the digest recomputed, as one would
    sandbox.reset_stats()

    code, err = _apply(capsys, tmp_path, str(plan))

    assert code == 2
    header, *lines = err.strip().splitlines()
    assert "refused whole, nothing applied" in header
    assert len(lines) == 1, err  # one line per refusal: only the edited change is refused
    assert lines[0].startswith(f"{dev}: ")
    assert refusal in lines[0], err
    assert (sandbox.stats()["total"], sandbox.stats()["writes"]) == (0, 0)
    qa_group = EnvironmentNames(qa).function_log_group()
    (group,) = client("logs").describe_log_groups(logGroupNamePrefix=qa_group)["logGroups"]
    assert "retentionInDays" not in group  # the other environment untouched


def test_an_edit_that_keeps_the_old_digest_is_refused(
    planned: tuple[str, str, Path, Path],
    sandbox: EmbeddedSandbox,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    dev, qa, plan, _ = planned
    document = json.loads(plan.read_text())
    _other_log_group(document, dev, qa)
    plan.write_text(json.dumps(document))
    sandbox.reset_stats()
    code, err = _apply(capsys, tmp_path, str(plan))
    assert code == 2
    assert "its content does not match its sha256" in err
    assert sandbox.stats()["total"] == 0


def test_apply_pinned_to_the_reviewed_digest(
    planned: tuple[str, str, Path, Path],
    sandbox: EmbeddedSandbox,
    optimize: Optimize,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """plan.md shows the digest and the command pinned to it; a one-byte edit (even with
    its digest recomputed) is refused; the reviewed file applies, its digest in the run's
    record and report."""
    _, _, plan, markdown = planned
    reviewed = plan.read_bytes()
    digest = json.loads(reviewed)["sha256"]
    assert digest == plan_file.digest(json.loads(reviewed))
    assert f"lambda-optimizer apply {plan} --expect-sha256 {digest}" in markdown.read_text()

    plan.write_bytes(reviewed.replace(b'"created_at": "2', b'"created_at": "3', 1))  # one byte
    sandbox.reset_stats()
    assert _apply(capsys, tmp_path, str(plan), "--expect-sha256", digest)[0] == 2
    plan.write_text(json.dumps(plan_file.sealed(json.loads(plan.read_text()))))
    code, err = _apply(capsys, tmp_path, str(plan), "--expect-sha256", digest)
    assert code == 2
    assert f"not the {digest} --expect-sha256 pins" in err
    for bad in ("not-hex", digest[:-1], digest + "0"):
        assert _apply(capsys, tmp_path, str(plan), "--expect-sha256", bad)[0] == 2
    assert sandbox.stats()["total"] == 0

    plan.write_bytes(reviewed)
    code, applied = optimize("apply", str(plan), "--expect-sha256", digest.upper())
    assert code == 0, applied
    assert applied["plan_sha256"] == digest
    record = json.loads((tmp_path / "state" / "runs" / applied["run_id"] / "run.json").read_text())
    assert record["plan_sha256"] == digest
    assert {e["status"] for e in applied["environments"]} == {"changed"}


def test_apply_never_writes_over_its_plan_and_a_dry_apply_says_it_only_checked(
    planned: tuple[str, str, Path, Path],
    sandbox: EmbeddedSandbox,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    _, _, plan, _ = planned
    reviewed = plan.read_bytes()
    sandbox.reset_stats()
    for option in ("--report-file", "--log-file"):
        capsys.readouterr()
        code = cli.main(["apply", str(plan), option, str(plan)])
        err = capsys.readouterr().err
        assert code == 2
        assert f"the plan file and {option} name the same file {plan}" in err
    assert plan.read_bytes() == reviewed
    assert sandbox.stats()["total"] == 0

    capsys.readouterr()
    state = ["--state-dir", str(tmp_path / "state"), "--log-level", "warning"]
    assert cli.main(["apply", str(plan), "--dry-run", "--output", "table", *state]) == 0
    out = " ".join(capsys.readouterr().out.split())  # as wrapped to the terminal's width
    digest = json.loads(reviewed)["sha256"]
    assert f"checked plan {plan}, sha256 {digest}" in out
    assert "applied plan" not in out
    assert sandbox.stats()["writes"] == 0


def test_a_plan_file_naming_a_key_twice_is_refused(
    planned: tuple[str, str, Path, Path],
    sandbox: EmbeddedSandbox,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    _, _, plan, _ = planned
    text = plan.read_text()
    plan.write_text(text.replace('"kind": ', '"kind": "lambda-optimizer plan", "kind": ', 1))
    sandbox.reset_stats()
    code, err = _apply(capsys, tmp_path, str(plan))
    assert code == 2
    assert "key 'kind' is given twice" in err
    assert sandbox.stats()["total"] == 0


def test_the_review_shows_every_change_whole(planned: tuple[str, str, Path, Path]) -> None:
    """plan.md: the digest, the policy as a diff of statements, the variables by name and
    full value (ARNs are not secrets), the targets apply holds the changes to."""
    dev, _, plan, markdown = planned
    document = json.loads(plan.read_text())
    text = markdown.read_text()
    assert f"sha256 {document['sha256']}" in text
    assert '+ {"Action":"sqs:SendMessage","Effect":"Allow","Resource":"arn:aws:sqs:' in text
    assert '"Action":["xray:PutTraceSegments","xray:PutTelemetryRecords"]' in text
    variables = document["environments"][dev]["functions"][0]["basis"]["function_configuration"]
    for name, arn in variables["variables"].items():
        assert f"env {name}:" in text
        assert f"- after: `{arn}`" in text
    assert '"guardrails": {"concurrency_peak_factor": 1.5' in text
    assert "policy (3 statements)" in text  # the table's cell, beside the whole document
