"""The generated least-privilege policies, proven by running the optimizer under them.

The sandbox authorises every request against the IAM policies of the user whose key signed
it (`EmbeddedSandbox.enforcing_iam`; `sandbox/patches/iam_authorization.py`). Environments
are seeded and users created with the sandbox's own credentials first; then the optimizer
runs as a user holding exactly the policy `iam_policy.policy` generates for its purpose:
`plan` for `--dry-run`, `apply` for a run, `rollback` for `rollback --run-id`. Each succeeds,
and without any one statement of its policy each fails with AccessDenied for an action of
that statement.

What this proves is bounded by the evaluator (see the module docstrings of `iam_policy` and
of the patch): moto's policy evaluation with the ARN AWS evaluates per request. It does not
evaluate Conditions (none are generated) or NotResource, knows only user identity policies
(no resource policies, boundaries or SCPs), models dependent permissions only for
tag-on-create and a function's role (`iam:PassRole`), demands both ARN forms of a log group
(AWS's denials show either), and leaves S3 and STS to moto's own checks.
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from optimizer_async.aws import errors
from optimizer_async.aws.operations import iam_action, is_write
from optimizer_async.commands.iam_policy import document as iam_policy_document
from optimizer_async.definitions.naming import EnvironmentNames
from optimizer_async.permissions.iam_policy import (
    PURPOSES,
    PolicyDocument,
    Purpose,
    caller_policy,
    policy,
    render,
)
from optimizer_async.sandbox.seeder import Seeder
from optimizer_async.sandbox.server import EmbeddedSandbox
from optimizer_async.steps.registry import REGISTRY, declared_calls
from tests.conftest import REGION, ClientFactory
from tests.integration.conftest import Optimize
from tests.integration.test_organisation import member_credentials
from tests.integration.test_state_bucket import safe_bucket

pytestmark = pytest.mark.sandbox_only("IAM enforced by the sandbox")
Seed = Callable[..., list[str]]
ACCOUNT = "123456789012"  # moto's account: every key the sandbox issues belongs to it
_users = itertools.count()


def _policy(purpose: Purpose, *suffixes: str) -> PolicyDocument:
    return policy(REGISTRY, purpose, account=ACCOUNT, region=REGION, suffixes=suffixes)


def _user(client: ClientFactory, document: PolicyDocument) -> tuple[str, str]:
    """A new IAM user holding only `document` (a managed policy, as IAM sizes allow);
    its access key. Made with the sandbox's credentials, so before enforcement."""
    iam, name = client("iam"), f"optimizer-{next(_users)}"
    iam.create_user(UserName=name)
    arn = iam.create_policy(PolicyName=name, PolicyDocument=render(document))["Policy"]["Arn"]
    iam.attach_user_policy(UserName=name, PolicyArn=arn)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return str(key["AccessKeyId"]), str(key["SecretAccessKey"])


@contextlib.contextmanager
def _as(
    sandbox: EmbeddedSandbox, monkeypatch: pytest.MonkeyPatch, key: tuple[str, str]
) -> Iterator[None]:
    """Run the optimizer as the key's user, every request authorised by its policies."""
    with monkeypatch.context() as patch, sandbox.enforcing_iam():
        patch.setenv("AWS_ACCESS_KEY_ID", key[0])
        patch.setenv("AWS_SECRET_ACCESS_KEY", key[1])
        yield


def _drift(client: ClientFactory, suffix: str, *, queue: bool, log_group: bool = True) -> None:
    """Give every write of a run a reason: (`log_group`) the log group gone, bucket
    versioning suspended, its lifecycle rules gone, and (`queue`) a queue with the wrong
    retention."""
    names = EnvironmentNames(suffix)
    if log_group:
        client("logs").delete_log_group(logGroupName=names.function_log_group())
    s3, bucket = client("s3"), names.bucket(ACCOUNT)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    s3.delete_bucket_lifecycle(Bucket=bucket)
    if queue:
        client("sqs").create_queue(
            QueueName=names.dead_letter_queue, Attributes={"MessageRetentionPeriod": "60"}
        )


def _denied(sandbox: EmbeddedSandbox) -> set[str]:
    """The IAM actions of the calls the sandbox refused with AccessDenied."""
    return {
        str(iam_action(row["service"], row["operation"]))
        for row in sandbox.stats()["calls"]
        if row["outcome"].startswith("error:AccessDenied")
    }


def _run(optimize: Optimize, purpose: Purpose, suffixes: str, run_id: str) -> tuple[int, Any]:
    if purpose == "plan":
        return optimize("--suffix", suffixes, "--dry-run")
    if purpose == "apply":
        return optimize("--suffix", suffixes)
    return optimize("rollback", "--run-id", run_id)


def test_each_purpose_succeeds_with_exactly_its_policy(
    sandbox: EmbeddedSandbox,
    seed: Seed,
    optimize: Optimize,
    client: ClientFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A dry run, a run and its rollback over two drifted environments, each as a user
    holding only its purpose's policy: nothing is denied, and every declared write is made."""
    dev, staging = seed("dev", "staging")
    _drift(client, dev, queue=False)  # the run creates dev's queue, corrects staging's
    # Staging keeps its log group: its rollback removes a retention, dev's deletes the group.
    _drift(client, staging, queue=True, log_group=False)
    keys = {purpose: _user(client, _policy(purpose, dev, staging)) for purpose in PURPOSES}
    sandbox.reset_stats()

    with _as(sandbox, monkeypatch, keys["plan"]):
        code, planned = optimize("--suffix", f"{dev},{staging}", "--dry-run")
    assert code == 0, planned
    with _as(sandbox, monkeypatch, keys["apply"]):
        code, run = optimize("--suffix", f"{dev},{staging}")
    assert code == 0, run
    with _as(sandbox, monkeypatch, keys["rollback"]):
        code, undone = optimize("rollback", "--run-id", run["run_id"])
    assert code == 0, undone
    assert _denied(sandbox) == set()
    made = {(row["service"], row["operation"]) for row in sandbox.stats()["calls"]}
    writes = {(c.service, c.operation) for c in declared_calls(REGISTRY) if is_write(c.operation)}
    assert writes <= made, writes - made  # every write the policies allow was needed


def test_the_plan_policy_cannot_apply(
    sandbox: EmbeddedSandbox,
    seed: Seed,
    optimize: Optimize,
    client: ClientFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The dry run's policy reads everything a run reads and writes nothing."""
    (dev,) = seed("dev")
    key = _user(client, _policy("plan", dev))
    sandbox.reset_stats()
    with _as(sandbox, monkeypatch, key):
        code, _ = optimize("--suffix", dev)
    assert code != 0
    denied = _denied(sandbox)
    assert denied
    assert all(is_write(action.split(":")[1]) for action in denied), denied


def test_one_environments_policy_is_denied_another(
    sandbox: EmbeddedSandbox,
    seed: Seed,
    optimize: Optimize,
    client: ClientFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Resources are checked, not only actions: staging's policy reads nothing of dev."""
    (dev,) = seed("dev")
    key = _user(client, _policy("plan", "staging"))
    sandbox.reset_stats()
    with _as(sandbox, monkeypatch, key):
        code, report = optimize("--suffix", dev, "--dry-run")
    assert code != 0, report
    assert "lambda:GetFunction" in _denied(sandbox)


def test_the_suffix_tag_lock_holds_only_with_list_tags(
    sandbox: EmbeddedSandbox,
    seed: Seed,
    optimize: Optimize,
    client: ClientFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """GetFunction shows tags only to a caller allowed lambda:ListTags: without it a
    function tagged for another environment would be taken as this one's."""
    (dev,) = seed("dev")
    lam = client("lambda")
    found = lam.get_function(FunctionName=EnvironmentNames(dev).function())["Configuration"]
    lam.tag_resource(Resource=found["FunctionArn"], Tags={"environment-suffix": "prod"})
    full = _policy("plan", dev)
    blind: PolicyDocument = {
        "Version": full["Version"],
        "Statement": [
            {**s, "Action": [a for a in s["Action"] if a != "lambda:ListTags"]}
            for s in full["Statement"]
        ],
    }
    seeing, not_seeing = _user(client, full), _user(client, blind)
    with _as(sandbox, monkeypatch, seeing):
        code, locked = optimize("--suffix", dev, "--dry-run")
    assert code != 0
    assert "tagged for another environment" in locked["environments"][0]["error"]
    with _as(sandbox, monkeypatch, not_seeing):
        code, taken = optimize("--suffix", dev, "--dry-run")
    assert taken["environments"][0]["error"] is None
    assert taken["environments"][0]["changes"]  # the wrong environment's function, planned


def _cases() -> list[Any]:
    return [
        pytest.param(purpose, statement["Sid"], id=f"{purpose}-without-{statement['Sid']}")
        for purpose in PURPOSES
        for statement in _policy(purpose, "dev")["Statement"]
    ]


@pytest.mark.parametrize(("purpose", "sid"), _cases())
def test_without_any_one_statement_the_run_is_denied(
    purpose: Purpose,
    sid: str,
    sandbox: EmbeddedSandbox,
    seed: Seed,
    optimize: Optimize,
    client: ClientFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each statement is needed: without it the run is refused an action of that statement,
    and of no other. A refused read of evidence may leave the run going, degraded: then
    the report says AccessDenied."""
    (dev,) = seed("dev")
    _drift(client, dev, queue=False)
    run_id = ""
    if purpose == "rollback":  # a run to undo, made with the sandbox's own credentials
        applied, run = optimize("--suffix", dev)
        assert applied == 0, run
        run_id = run["run_id"]
    full = _policy(purpose, dev)
    (removed,) = [s for s in full["Statement"] if s["Sid"] == sid]
    reduced: PolicyDocument = {
        "Version": full["Version"],
        "Statement": [s for s in full["Statement"] if s["Sid"] != sid],
    }
    key = _user(client, reduced)
    sandbox.reset_stats()

    code: int | None
    report: Any
    with _as(sandbox, monkeypatch, key):
        try:
            code, report = _run(optimize, purpose, dev, run_id)
        except Exception as error:  # an account-level read's failure escapes the command
            code, report = None, errors.describe(error)

    denied = _denied(sandbox)
    assert denied & set(removed["Action"]), (denied, removed["Action"])
    assert denied <= set(removed["Action"])  # the rest of the policy was enough for the rest
    assert code != 0 or "AccessDenied" in str(report), report


def test_the_printed_policy_covers_run_records_in_a_state_bucket(
    sandbox: EmbeddedSandbox,
    seed: Seed,
    optimize: Optimize,
    client: ClientFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`iam-policy --state-bucket`: a run and its rollback keep their records in the bucket
    under the printed policy; without the bucket's statements the run refuses to start."""
    (dev,) = seed("dev")
    bucket = safe_bucket(client, "optimizer-state")
    where = f"s3://{bucket}/team-a"
    argv = ["--suffix", dev, "--account", ACCOUNT, "--region", REGION]
    with_bucket = iam_policy_document([*argv, "--state-bucket", where], {})
    without = iam_policy_document(argv, {})
    sandbox.reset_stats()

    with _as(sandbox, monkeypatch, _user(client, without)):
        code, _ = optimize("--suffix", dev, "--state-bucket", where)
    assert code != 0
    assert "s3:GetBucketVersioning" in _denied(sandbox)
    assert (
        client("lambda").get_function(FunctionName=EnvironmentNames(dev).function())[
            "Configuration"
        ]["MemorySize"]
        == 3008
    )  # nothing written without a place for its before-image

    sandbox.reset_stats()
    with _as(sandbox, monkeypatch, _user(client, with_bucket)):
        code, run = optimize("--suffix", dev, "--state-bucket", where)
        assert code == 0, run
        code, undone = optimize("rollback", "--run-id", run["run_id"], "--state-bucket", where)
        assert code == 0, undone
    assert _denied(sandbox) == set()
    keys = client("s3").list_objects_v2(Bucket=bucket, Prefix="team-a/")["Contents"]
    assert any(key["Key"].endswith(f"before-images/{dev}.json") for key in keys)


def test_all_needs_list_functions_and_nothing_more(
    sandbox: EmbeddedSandbox,
    seed: Seed,
    optimize: Optimize,
    client: ClientFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`iam-policy --for plan --all`: a dry run over every environment it finds succeeds
    under the printed policy; the same policy without `--all` is refused ListFunctions."""
    dev, staging = seed("dev", "staging")
    argv = ["--for", "plan", "--account", ACCOUNT, "--region", REGION]
    finding, not_finding = iam_policy_document([*argv, "--all"], {}), iam_policy_document(argv, {})
    sandbox.reset_stats()

    with _as(sandbox, monkeypatch, _user(client, finding)):
        code, report = optimize("--all", "--dry-run")
    assert code == 0, report
    assert report["found"]["environments"] == [dev, staging]
    assert _denied(sandbox) == set()

    refused: int | None
    answer: Any
    with _as(sandbox, monkeypatch, _user(client, not_finding)):
        try:
            refused, answer = optimize("--all", "--dry-run")
        except Exception as error:  # the region's list is read before any environment
            refused, answer = None, errors.describe(error)
    assert refused != 0, answer
    assert _denied(sandbox) == {"lambda:ListFunctions"}


def test_an_organisation_run_starts_as_a_principal_that_may_only_assume_the_roles(
    sandbox: EmbeddedSandbox,
    optimize: Optimize,
    client: ClientFactory,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """`iam-policy --accounts FILE`: the caller may assume exactly the file's roles; each
    role holds its own account's policy. A dry run over the member succeeds as that caller,
    and a caller allowed another role only is denied AssumeRole."""
    member = "111111111111"
    arn = sandbox.add_account(member, "LambdaOptimizer", trusted_account=ACCOUNT)
    credentials = member_credentials(sandbox.endpoint_url, arn, None)
    Seeder(sandbox.endpoint_url, REGION, credentials=credentials).seed(["dev"])
    member_iam = boto3.client(
        "iam",
        endpoint_url=sandbox.endpoint_url,
        region_name=REGION,
        aws_access_key_id=credentials[0],
        aws_secret_access_key=credentials[1],
        aws_session_token=credentials[2],
    )
    own = policy(REGISTRY, "plan", account=member, region=REGION, suffixes=("dev",))
    member_iam.put_role_policy(
        RoleName="LambdaOptimizer", PolicyName="lambda-optimizer", PolicyDocument=render(own)
    )
    accounts = tmp_path / "accounts.yaml"
    accounts.write_text(json.dumps({"accounts": [{"account_id": member, "role": arn}]}))
    allowed = iam_policy_document(["--accounts", str(accounts)], {})
    assert allowed["Statement"] == [
        {"Sid": "ReadRoles", "Effect": "Allow", "Action": ["sts:AssumeRole"], "Resource": [arn]}
    ]
    other = caller_policy([arn.replace("LambdaOptimizer", "Other")])
    keys = {"allowed": _user(client, allowed), "other": _user(client, other)}
    sandbox.reset_stats()

    with _as(sandbox, monkeypatch, keys["allowed"]):
        code, report = optimize("--suffix", "dev", "--accounts", str(accounts), "--dry-run")
    assert code == 0, report
    assert _denied(sandbox) == set()
    (place,) = report["places"]
    assert place["report"]["environments"][0]["status"] == "planned"
    with _as(sandbox, monkeypatch, keys["other"]):
        code, report = optimize("--suffix", "dev", "--accounts", str(accounts), "--dry-run")
    assert code == 1
    assert _denied(sandbox) == {"sts:AssumeRole"}
    assert "not authorized to perform: sts:AssumeRole" in report["places"][0]["error"]
