"""A plan file is data, never authority: each step verifies the changes a plan file holds
against what it would plan (`Step.verify`, called by `plan_check`), and the file's digest
ties it to its review (`plan_file`). No AWS here: plan documents made from hand-built
inventories, then edited as someone with the file could."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import pytest

from optimizer_async.definitions.targets import Targets
from optimizer_async.jsonio import json_text
from optimizer_async.records import plan_check, plan_file
from optimizer_async.steps.base import (
    ApiCall,
    ApplyContext,
    Change,
    FunctionStep,
    PlanContext,
    StepPlan,
)
from optimizer_async.steps.core import FUNCTION
from optimizer_async.steps.deployment_bucket import BUCKET
from optimizer_async.steps.evidence import REPORT_LINES
from optimizer_async.steps.inventory import EnvironmentInventory, FunctionInventory
from optimizer_async.steps.plan import Plan, plan_environment
from optimizer_async.steps.registry import REGISTRY, default_registry
from tests.unit.builders import REGION, baseline_environment, steady_report_lines, with_part

Document = dict[str, Any]
OTHER_ACCOUNT = "999999999999"
FN = "lambda-function-dev"


def _environment() -> EnvironmentInventory:
    """A baseline environment every step has something to do in; the function's memory
    use ~780 MB, as the issue's example."""
    env = baseline_environment("dev")
    env = with_part(
        env, BUCKET, replace(env.part(BUCKET), versioning="Suspended", lifecycle_rules=())
    )
    (fn,) = env.functions
    fn = with_part(fn, REPORT_LINES, steady_report_lines(memory_max_mb=780.0))
    return replace(env, functions=(fn,))


def _document(env: EnvironmentInventory | None = None, targets: Targets | None = None) -> Document:
    env, targets = env or _environment(), targets or Targets()
    steps = tuple(REGISTRY)
    plan = Plan((plan_environment(env, targets, steps),))
    return plan_file.plan_document("run-1", REGION, plan, {env.suffix: env}, steps, targets)


def _change(document: Document, step: str, setting: str | None = None) -> dict[str, Any]:
    changes = document["environments"]["dev"]["changes"]
    return next(c for c in changes if c["step"] == step and setting in (None, c["setting"]))


def test_an_untouched_plan_passes_and_every_step_verified_a_change_of_its_own() -> None:
    document = _document()
    assert plan_check.refusals(document) == []
    planned = {c["step"] for c in document["environments"]["dev"]["changes"]}
    assert planned == set(REGISTRY.names)  # so each step's verify was asked


def _add_statement(document: Document, statement: dict[str, Any]) -> None:
    _change(document, "role_policy")["after"]["Statement"].append(statement)


def _wildcard_action(document: Document) -> None:
    _change(document, "role_policy")["after"]["Statement"][0]["Action"] = "sqs:*"


def _policy_for_another_account(document: Document) -> None:
    basis = document["environments"]["dev"]["basis"]["role_policy"]
    basis["queue_arn"] = basis["queue_arn"].replace("123456789012", OTHER_ACCOUNT)
    statement = _change(document, "role_policy")["after"]["Statement"][0]
    statement["Resource"] = basis["queue_arn"]


def _set(step: str, setting: str, **fields: Any) -> Callable[[Document], None]:
    def edit(document: Document) -> None:
        _change(document, step, setting).update(fields)

    return edit


def _append(**change: Any) -> Callable[[Document], None]:
    def edit(document: Document) -> None:
        entry = {"before": None, "function": None, **change}
        document["environments"]["dev"]["changes"].append(entry)

    return edit


def _memory_used(mb: float) -> Callable[[Document], None]:
    """The recorded evidence edited to match a tampered MemorySize: still refused, the
    targets' floor holds (and plan.md showed the evidence the review approved)."""

    def edit(document: Document) -> None:
        (function,) = document["environments"]["dev"]["functions"]
        function["basis"]["function_configuration"]["report_lines"]["memory_max_mb"] = mb
        _change(document, "function_configuration", "MemorySize")["after"] = 64

    return edit


SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:database-url-prod-AbCdEf"
DLQ_ELSEWHERE = f"arn:aws:sqs:us-east-1:{OTHER_ACCOUNT}:lambda-dlq-dev"

TAMPERED: list[tuple[str, Callable[[Document], None], str]] = [
    (
        "policy statement added",
        lambda d: _add_statement(d, {"Effect": "Allow", "Action": "*", "Resource": "*"}),
        "role_policy lambda-role-dev/lambda-optimizer-dev PolicyDocument: the document is not "
        'the one role_policy writes for dev: adds {"Action":"*","Effect":"Allow","Resource":"*"}',
    ),
    ("wildcard action", _wildcard_action, 'adds {"Action":"sqs:*"'),
    ("policy grants another account", _policy_for_another_account, f"of account {OTHER_ACCOUNT}"),
    (
        "policy on another environment's role",
        _set("role_policy", "PolicyDocument", resource="lambda-role-prod/lambda-optimizer-dev"),
        "is not the policy lambda-optimizer-dev on a role of dev's functions (lambda-role-dev)",
    ),
    (
        "policy deleted",
        _set("role_policy", "PolicyDocument", after=None),
        "the document is not the one role_policy writes",
    ),
    (
        "memory 128 against ~780 MB used",
        _set("function_configuration", "MemorySize", after=128),
        "MemorySize 128 is not what it plans: 1024 (max memory used 780 MB x 1.25 needs "
        ">= 1024 MB; target 1024 is safe)",
    ),
    ("memory under Lambda's range", _memory_used(10), "memory 64 MB is outside Lambda's"),
    (
        "memory as text",
        _set("function_configuration", "MemorySize", after="1024"),
        "MemorySize '1024' is not a whole number",
    ),
    (
        "timeout of a second",
        _set("function_configuration", "Timeout", after=1),
        "Timeout 1 is not what it plans: 30",
    ),
    (
        "an exec wrapper added",
        _append(
            step="function_configuration",
            function=FN,
            resource=FN,
            setting="Environment.Variables.AWS_LAMBDA_EXEC_WRAPPER",
            after="/opt/evil-wrapper",
        ),
        "AWS_LAMBDA_EXEC_WRAPPER is not a variable function_configuration adds (only "
        "DATABASE_URL_SECRET_ARN, API_KEY_SECRET_ARN)",
    ),
    (
        "another environment's secret",
        _set(
            "function_configuration",
            "Environment.Variables.DATABASE_URL_SECRET_ARN",
            after=SECRET,
        ),
        f"{SECRET} is not dev's secret:database-url-dev-??????",
    ),
    (
        "dead-letter queue of another account",
        _set("function_configuration", "DeadLetterConfig.TargetArn", after=DLQ_ELSEWHERE),
        f"{DLQ_ELSEWHERE} is a resource of account {OTHER_ACCOUNT}, not 123456789012",
    ),
    (
        "a setting no step writes",
        _append(
            step="function_configuration",
            function=FN,
            resource=FN,
            setting="Handler",
            after="evil.handler",
        ),
        "Handler is not a setting function_configuration writes",
    ),
    (
        "an unknown step",
        _append(step="evil_step", resource="x", setting="y", after=1),
        "evil_step x y: unknown step 'evil_step' (steps: dead_letter_queue, ",
    ),
    (
        "retention on another environment's log group",
        _set(
            "log_retention",
            "RetentionInDays",
            resource="/aws/lambda/lambda-function-prod",
            after=1,
        ),
        "'/aws/lambda/lambda-function-prod' is not the log group of lambda-function-dev",
    ),
    (
        "retention of a day",
        _set("log_retention", "RetentionInDays", after=1),
        "RetentionInDays 1 is not what it plans: 7",
    ),
    (
        "retention AWS does not take",
        _set("log_retention", "RetentionInDays", after=2),
        "log retention 2 days is not one CloudWatch Logs accepts",
    ),
    (
        "reservation under the peak",
        _set("reserved_concurrency", "ReservedConcurrentExecutions", after=5),
        "ReservedConcurrentExecutions 5 is not what it plans: 50",
    ),
    (
        "reservation deleted",
        _set("reserved_concurrency", "ReservedConcurrentExecutions", after=None),
        "ReservedConcurrentExecutions None is not a whole number",
    ),
    (
        "another function's alarm",
        _set("alarms", "MetricAlarm", resource="error-rate-lambda-function-prod"),
        "'error-rate-lambda-function-prod' is not an alarm of lambda-function-dev",
    ),
    (
        "an alarm that never fires",
        lambda d: _change(d, "alarms")["after"].update(threshold=100.0),
        "'threshold': 100.0} is not what it plans",
    ),
    (
        "another environment's queue",
        _set("dead_letter_queue", "Queue", resource="lambda-dlq-prod"),
        "'lambda-dlq-prod' is not dev's dead-letter queue lambda-dlq-dev",
    ),
    (
        "queue deleted",
        _set("dead_letter_queue", "Queue", after=None),
        "Queue None is not what it plans",
    ),
    (
        "another account's bucket",
        _set("deployment_bucket", "Versioning", resource=f"lambda-deployments-dev-{OTHER_ACCOUNT}"),
        "is not dev's deployment bucket lambda-deployments-dev-123456789012",
    ),
    (
        "versions kept ten years",
        _set("deployment_bucket", "NoncurrentVersionExpiration", after=3650),
        "NoncurrentVersionExpiration 3650 is not what it plans: 30",
    ),
    (
        "a function step's change without its function",
        _set("log_retention", "RetentionInDays", function=None),
        "log_retention changes a function; None is no function the plan recorded",
    ),
    (
        "a change given twice",
        lambda d: d["environments"]["dev"]["changes"].append(dict(_change(d, "alarms"))),
        "planned twice",
    ),
    (
        "the evidence removed",
        lambda d: d["environments"]["dev"]["functions"][0]["basis"].clear(),
        "cannot be verified: its recorded basis is malformed",
    ),
    (
        "a function of another environment",
        lambda d: d["environments"]["dev"]["functions"][0].update(name="lambda-function-prod"),
        "function 'lambda-function-prod' is not named {base}-dev",
    ),
    (
        "a role of another account",
        lambda d: d["environments"]["dev"]["functions"][0].update(
            role=f"arn:aws:iam::{OTHER_ACCOUNT}:role/lambda-role-dev"
        ),
        f"its role is a resource of account {OTHER_ACCOUNT}",
    ),
    (
        "the revision lock removed",
        lambda d: d["environments"]["dev"]["revisions"].clear(),
        "lambda-function-dev has no recorded RevisionId",
    ),
]


@pytest.mark.parametrize(
    ("edit", "refusal"), [case[1:] for case in TAMPERED], ids=[case[0] for case in TAMPERED]
)
def test_a_change_its_step_would_not_plan_is_refused_with_the_reason(
    edit: Callable[[Document], None], refusal: str
) -> None:
    document = _document()
    edit(document)
    found = plan_check.refusals(document)
    assert any(refusal in line for line in found), found
    assert all(line.startswith("dev: ") for line in found)


def test_a_policy_refusal_names_what_it_adds_and_lacks() -> None:
    document = _document()
    _wildcard_action(document)
    (line,) = plan_check.refusals(document)
    assert 'adds {"Action":"sqs:*"' in line
    assert 'lacks {"Action":"sqs:SendMessage"' in line


def test_guardrails_off_in_the_plan_lets_the_targets_through_as_planned() -> None:
    """What the plan's own targets allow passes: the check re-runs the arithmetic, it does
    not second-guess the reviewed guardrail mode (plan.md shows it)."""
    targets = Targets(guardrails=replace(Targets().guardrails, mode="off"))
    env = _environment()
    (fn,) = env.functions
    env = replace(
        env, functions=(with_part(fn, REPORT_LINES, steady_report_lines(memory_max_mb=2000.0)),)
    )
    document = _document(env, targets)
    assert _change(document, "function_configuration", "MemorySize")["after"] == 1024
    assert plan_check.refusals(document) == []
    strict = copy.deepcopy(document)
    strict["targets"]["guardrails"]["mode"] = "adjust"
    assert any("MemorySize 1024 is not what it plans: 2560" in line
               for line in plan_check.refusals(strict))  # fmt: skip


class _Tagger(FunctionStep):
    """A step that says nothing about verifying: the default must refuse its changes."""

    name: ClassVar[str] = "tagger"
    part = FUNCTION
    writes = (ApiCall("lambda", "TagResource"),)
    permissions = ()

    def plan(self, ctx: PlanContext, function: FunctionInventory) -> StepPlan:
        return StepPlan((Change(self.name, function.name, "Tags", None, {"a": "b"}),))

    async def apply(
        self, ctx: ApplyContext, function: FunctionInventory, changes: tuple[Change, ...]
    ) -> None:
        raise AssertionError("never applied here")

    def current(self, ctx: PlanContext, function: FunctionInventory, change: Change) -> Any:
        return None


def test_a_step_that_does_not_verify_refuses_by_default() -> None:
    registry = default_registry()
    registry.register(_Tagger())
    env = _environment()
    steps = tuple(registry)
    plan = Plan((plan_environment(env, Targets(), steps),))
    document = plan_file.plan_document("run-1", REGION, plan, {"dev": env}, steps, Targets())
    found = plan_check.refusals(document, registry)
    assert found == [f"dev: tagger {FN} Tags: tagger does not verify changes read from a plan file"]


def test_apply_refuses_an_environment_whose_functions_moved_since_the_plan() -> None:
    """The changes were checked against the recorded role and log group: a function that
    has another now (a redeploy) is not the one reviewed."""
    document = _document()
    record = document["environments"]["dev"]
    live = _environment()
    assert plan_check.moved_since(record, live) is None
    (fn,) = live.functions
    moved = replace(fn, state=replace(fn.state, log_group="/shared/logs"))
    found = plan_check.moved_since(record, replace(live, functions=(moved,)))
    assert found is not None
    assert "log group is /shared/logs now" in found


# --- the file: digest, pinning, strict JSON -----------------------------------------------


def _write(path: Path, document: Document) -> Path:
    path.write_text("".join(json_text.chunks(document, sort_keys=True)))
    return path


def test_the_digest_is_of_the_canonical_content_and_survives_writing(tmp_path: Path) -> None:
    document = _document()
    body = {k: v for k, v in document.items() if k != "sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert document["sha256"] == plan_file.digest(document)
    assert plan_file.canonical(document) == text.encode()
    loaded = plan_file.load(_write(tmp_path / "plan.json", document), document["sha256"])
    assert loaded == document


def test_a_one_byte_edit_is_refused_and_so_is_a_resealed_one_when_pinned(tmp_path: Path) -> None:
    document = _document()
    pinned = document["sha256"]
    path = _write(tmp_path / "plan.json", document)
    text = path.read_text()
    path.write_text(text.replace('"run_id": "run-1"', '"run_id": "run-2"'))  # one byte
    with pytest.raises(plan_file.PlanFileError, match="does not match its sha256"):
        plan_file.load(path)
    edited = plan_file.sealed({**document, "run_id": "run-2"})  # the digest recomputed too
    _write(path, edited)
    assert plan_file.load(path)["run_id"] == "run-2"  # unpinned: a consistent file
    with pytest.raises(plan_file.PlanFileError, match=f"not the {pinned} --expect-sha256 pins"):
        plan_file.load(path, pinned)


def test_a_refused_plan_is_one_line_per_refusal(tmp_path: Path) -> None:
    document = _document()
    _set("log_retention", "RetentionInDays", after=1)(document)
    _append(step="evil_step", resource="x", setting="y", after=1)(document)
    path = _write(tmp_path / "plan.json", plan_file.sealed(document))
    with pytest.raises(plan_file.PlanFileError) as refused:
        plan_file.load(path)
    header, *lines = str(refused.value).splitlines()
    assert header.startswith(f"plan file {path}: refused whole, nothing applied: 2 ")
    assert [line.split(": ", 2)[:2] for line in lines] == [
        ["dev", f"log_retention /aws/lambda/{FN} RetentionInDays"],
        ["dev", "evil_step x y"],
    ]


def test_a_key_given_twice_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "plan.json", _document())
    text = path.read_text()
    path.write_text(
        text.replace('"region": "us-east-1",', '"region": "us-east-1", "region": "us-west-2",', 1)
    )
    with pytest.raises(plan_file.PlanFileError, match="key 'region' is given twice"):
        plan_file.load(path)


@pytest.mark.parametrize("text", ["abc", "g" * 64, "a" * 63, ""])
def test_a_pin_that_is_not_a_sha256_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a SHA-256"):
        plan_file.check_sha256(text)
    assert plan_file.check_sha256("AB" * 32) == "ab" * 32
