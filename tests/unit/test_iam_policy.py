"""The generated least-privilege policy, read as a document (no AWS here;
`tests/integration/test_iam_enforcement.py` runs the optimizer under it)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any, ClassVar

import pytest

from optimizer_async.aws.operations import iam_action, is_write
from optimizer_async.definitions.naming import InvalidNameError
from optimizer_async.permissions.iam_policy import (
    ACCOUNT_WIDE,
    MANAGED_POLICY_MAX_CHARS,
    PURPOSES,
    WILDCARDS,
    PolicyDocument,
    Purpose,
    policy,
    render,
    size,
)
from optimizer_async.steps.base import (
    ApiCall,
    ApplyContext,
    Change,
    FunctionStep,
    Permission,
    PlanContext,
    Step,
    StepPlan,
)
from optimizer_async.steps.core import CORE_READS, FUNCTION, FUNCTION_ARN
from optimizer_async.steps.inventory import FunctionInventory
from optimizer_async.steps.registry import REGISTRY

ACCOUNT = "123456789012"
REGION = "eu-west-1"
P = f"{REGION}:{ACCOUNT}"


def _policy(purpose: Purpose, *suffixes: str, **kwargs: Any) -> PolicyDocument:
    return policy(REGISTRY, purpose, account=ACCOUNT, region=REGION, suffixes=suffixes, **kwargs)


def _actions(document: PolicyDocument) -> set[str]:
    return {action for statement in document["Statement"] for action in statement["Action"]}


def _resources(document: PolicyDocument, action: str) -> set[str]:
    return {
        resource
        for statement in document["Statement"]
        if action in statement["Action"]
        for resource in statement["Resource"]
    }


def _calls(steps: Iterable[Step], purpose: Purpose) -> set[ApiCall]:
    """The calls a run of `purpose` may make: what each purpose reads and writes."""
    calls = set(CORE_READS)
    for step in steps:
        parts = (step.part,) if purpose == "rollback" else step.parts
        for part in parts:
            calls.update(part.reads)
        if purpose != "plan":
            calls.update(step.reads + step.writes)
    return calls


@pytest.mark.parametrize("purpose", PURPOSES)
def test_every_call_a_purpose_makes_is_allowed(purpose: Purpose) -> None:
    actions = _actions(_policy(purpose, "dev"))
    needed = {iam_action(c.service, c.operation) for c in _calls(REGISTRY, purpose)} - {None}
    assert needed <= actions, needed - actions
    assert "lambda:ListTags" in actions  # GetFunction shows tags only with it


def test_plan_holds_no_write_and_apply_holds_every_write() -> None:
    plan, apply = _actions(_policy("plan", "dev")), _actions(_policy("apply", "dev"))
    assert [action for action in plan if is_write(action.split(":")[1])] == []
    writes = {iam_action(call.service, call.operation) for step in REGISTRY for call in step.writes}
    assert writes <= apply
    assert plan < apply


def test_rollback_reads_no_evidence() -> None:
    actions = _actions(_policy("rollback", "dev"))
    for evidence in (
        "logs:StartQuery",
        "logs:GetQueryResults",
        "cloudwatch:GetMetricData",
        "lambda:GetAccountSettings",
        "secretsmanager:DescribeSecret",
    ):
        assert evidence not in actions
    assert {"lambda:GetFunction", "cloudwatch:DescribeAlarms", "logs:DescribeLogGroups"} <= actions
    assert _actions(_policy("rollback", "dev")) < _actions(_policy("apply", "dev"))


def test_exact_arns_for_a_suffix() -> None:
    document = _policy("apply", "dev")
    function = f"arn:aws:lambda:{P}:function:lambda-function-dev"
    group = f"arn:aws:logs:{P}:log-group:/aws/lambda/lambda-function-dev"
    expected = {
        "lambda:UpdateFunctionConfiguration": {function},
        "lambda:ListTags": {function},
        "sqs:CreateQueue": {f"arn:aws:sqs:{P}:lambda-dlq-dev"},
        "iam:PutRolePolicy": {f"arn:aws:iam::{ACCOUNT}:role/lambda-role-dev"},
        "s3:PutLifecycleConfiguration": {f"arn:aws:s3:::lambda-deployments-dev-{ACCOUNT}"},
        "cloudwatch:PutMetricAlarm": {
            f"arn:aws:cloudwatch:{P}:alarm:error-rate-lambda-function-dev",
            f"arn:aws:cloudwatch:{P}:alarm:duration-lambda-function-dev",
        },
        "secretsmanager:DescribeSecret": {
            f"arn:aws:secretsmanager:{P}:secret:database-url-dev-??????",
            f"arn:aws:secretsmanager:{P}:secret:api-key-dev-??????",
        },
        "logs:CreateLogGroup": {group, f"{group}:*"},
        "logs:StartQuery": {group, f"{group}:*"},
        "logs:DescribeLogGroups": {f"arn:aws:logs:{P}:log-group:*"},
        "cloudwatch:GetMetricData": {"*"},
    }
    for action, resources in expected.items():
        assert _resources(document, action) == resources, action
    kinds = ("function:", ":sqs:", ":role/", ":s3:::", ":alarm:", ":secret:")
    for statement in document["Statement"]:
        for resource in statement["Resource"]:
            if any(kind in resource for kind in kinds):
                assert "*" not in resource, resource


def test_each_environment_and_function_base_exactly() -> None:
    document = _policy("apply", "dev", "dev2", function_bases=("lambda-function", "worker"))
    assert _resources(document, "lambda:GetFunction") == {
        f"arn:aws:lambda:{P}:function:{base}-{suffix}"
        for base in ("lambda-function", "worker")
        for suffix in ("dev", "dev2")
    }
    assert _resources(document, "iam:GetRolePolicy") == {
        f"arn:aws:iam::{ACCOUNT}:role/lambda-role-dev",
        f"arn:aws:iam::{ACCOUNT}:role/lambda-role-dev2",
    }
    assert len(_resources(document, "cloudwatch:DescribeAlarms")) == 8  # 2 per function


def test_without_suffixes_the_policy_is_scoped_to_the_naming_pattern() -> None:
    document = _policy("apply")
    assert _resources(document, "lambda:UpdateFunctionConfiguration") == {
        f"arn:aws:lambda:{P}:function:lambda-function-*"
    }
    assert _resources(document, "sqs:SetQueueAttributes") == {f"arn:aws:sqs:{P}:lambda-dlq-*"}
    assert _resources(document, "iam:DeleteRolePolicy") == {
        f"arn:aws:iam::{ACCOUNT}:role/lambda-role-*"
    }
    assert _resources(document, "s3:PutBucketVersioning") == {
        f"arn:aws:s3:::lambda-deployments-*-{ACCOUNT}"
    }
    assert _resources(document, "cloudwatch:DeleteAlarms") == {
        f"arn:aws:cloudwatch:{P}:alarm:error-rate-lambda-function-*",
        f"arn:aws:cloudwatch:{P}:alarm:duration-lambda-function-*",
    }
    assert _resources(document, "secretsmanager:DescribeSecret") == {
        f"arn:aws:secretsmanager:{P}:secret:database-url-*-??????",
        f"arn:aws:secretsmanager:{P}:secret:api-key-*-??????",
    }
    # `*` matches `:log-stream:` too: the one pattern covers both forms of every group
    assert _resources(document, "logs:PutRetentionPolicy") == {
        f"arn:aws:logs:{P}:log-group:/aws/lambda/lambda-function-*"
    }


def test_any_account_and_region() -> None:
    document = policy(REGISTRY, "plan", account="*", region="*")
    assert _resources(document, "s3:GetBucketVersioning") == {"arn:aws:s3:::lambda-deployments-*-*"}
    assert _resources(document, "lambda:GetFunction") == {
        "arn:aws:lambda:*:*:function:lambda-function-*"
    }


@pytest.mark.parametrize("suffixes", [("dev",), ()])
@pytest.mark.parametrize("purpose", PURPOSES)
def test_wildcards_stand_only_where_documented(purpose: Purpose, suffixes: tuple[str]) -> None:
    exact = bool(suffixes)
    for statement in _policy(purpose, *suffixes, find_all=True)["Statement"]:
        actions, resources = set(statement["Action"]), statement["Resource"]
        if resources == ["*"]:
            assert actions <= set(WILDCARDS), statement
        elif any(resource.endswith(":log-group:*") for resource in resources):
            assert actions <= set(ACCOUNT_WIDE), statement
        elif exact:
            for resource in (r for r in resources if "*" in r):
                # a log group's `:*` form, next to its plain ARN in the same statement
                assert re.fullmatch(r"arn:aws:logs:[^*]+:log-group:[^*]+:\*", resource)
                assert resource.removesuffix(":*") in resources
    for action in (*WILDCARDS, *ACCOUNT_WIDE):  # the tables are not stale
        assert action in _actions(_policy("apply", *suffixes, live_prices=True, find_all=True))
    assert "pricing:GetProducts" not in _actions(_policy("apply", *suffixes))  # table prices
    assert "lambda:ListFunctions" not in _actions(_policy("apply", *suffixes))  # no --all
    assert "pricing:GetProducts" not in _actions(_policy("rollback", live_prices=True))


@pytest.mark.parametrize("purpose", PURPOSES)
def test_statements_are_merged_named_and_ordered(purpose: Purpose) -> None:
    document = _policy(purpose, "dev", "staging")
    statements = document["Statement"]
    sids = [statement["Sid"] for statement in statements]
    assert len(set(sids)) == len(sids)
    assert all(re.fullmatch(r"[A-Za-z0-9]+", sid) for sid in sids)
    pairs = [(a, r) for s in statements for a in s["Action"] for r in s["Resource"]]
    assert len(set(pairs)) == len(pairs)  # no grant twice
    scopes = [frozenset(statement["Resource"]) for statement in statements]
    kinds = [sid.startswith("Write") for sid in sids]
    assert len(set(zip(kinds, scopes, strict=True))) == len(statements)  # one per set
    for statement in statements:
        writes = {is_write(action.split(":")[1]) for action in statement["Action"]}
        assert writes == {statement["Sid"].startswith("Write")}
        assert statement["Action"] == sorted(statement["Action"])
        assert statement["Resource"] == sorted(statement["Resource"])
    assert kinds == sorted(kinds)  # reads first
    assert render(document) == render(_policy(purpose, "dev", "staging"))
    reads = {s["Sid"]: s["Action"] for s in statements}
    assert reads["ReadFunctions"] == ["lambda:GetFunction", "lambda:ListTags"]


def test_render_is_json_with_two_space_indent() -> None:
    document = _policy("plan", "dev")
    text = render(document)
    assert json.loads(text) == document
    assert text.splitlines()[1] == '  "Version": "2012-10-17",'
    assert document["Version"] == "2012-10-17"
    assert {statement["Effect"] for statement in document["Statement"]} == {"Allow"}


def test_size_as_iam_counts_it() -> None:
    document = _policy("apply", "dev", "staging", "prod")
    assert size(document) == len(re.sub(r"\s", "", render(document)))
    assert size(document) <= MANAGED_POLICY_MAX_CHARS
    assert size(_policy("apply")) <= MANAGED_POLICY_MAX_CHARS


class _Tagger(FunctionStep):
    """A step defined only here: its own permission lands in the policy, expanded."""

    name: ClassVar[str] = "tagger"
    part = FUNCTION
    writes = (ApiCall("lambda", "TagResource"),)
    permissions = (Permission("lambda:TagResource", FUNCTION_ARN),)

    def plan(self, ctx: PlanContext, function: FunctionInventory) -> StepPlan:
        return StepPlan()

    async def apply(
        self, ctx: ApplyContext, function: FunctionInventory, changes: tuple[Change, ...]
    ) -> None:
        raise AssertionError("never applied here")

    def current(self, ctx: PlanContext, function: FunctionInventory, change: Change) -> Any:
        return None


def test_a_step_outside_the_registry_brings_its_permissions() -> None:
    document = policy([_Tagger()], "apply", account=ACCOUNT, region=REGION, suffixes=["dev"])
    assert _resources(document, "lambda:TagResource") == {
        f"arn:aws:lambda:{P}:function:lambda-function-dev"
    }
    assert _actions(document) == {"lambda:GetFunction", "lambda:ListTags", "lambda:TagResource"}


class _Unknown(_Tagger):
    permissions = (Permission("lambda:TagResource", "arn:aws:lambda:::{nonsense}"),)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="purpose"):
        policy(REGISTRY, "undo", account=ACCOUNT, region=REGION)  # type: ignore[arg-type]
    with pytest.raises(InvalidNameError):
        policy(REGISTRY, "plan", account=ACCOUNT, region=REGION, suffixes=["Dev"])
    with pytest.raises(InvalidNameError):
        policy(REGISTRY, "plan", account="1234", region=REGION)
    with pytest.raises(ValueError, match="nonsense"):
        policy([_Unknown()], "apply", account=ACCOUNT, region=REGION, suffixes=["dev"])
