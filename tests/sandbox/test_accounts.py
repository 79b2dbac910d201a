"""Several AWS accounts in one sandbox, as an AWS Organizations user has them.

STS AssumeRole decides as AWS does (the role exists, its trust policy allows the caller,
the external id, the session's name and duration); the credentials it hands out act in
the role's account; quotas, counts, the workload model and its metrics are per account.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.core.models import DEFAULT_ACCOUNT_ID

from optimizer_async.definitions.naming import EnvironmentNames
from optimizer_async.sandbox.accounts import DEFAULT_ACCOUNT, KeyAccounts
from optimizer_async.sandbox.clock import ManualClock
from optimizer_async.sandbox.seeder import Seeder
from optimizer_async.sandbox.server import EmbeddedSandbox
from optimizer_async.sandbox.stats import CallStats
from optimizer_async.sandbox.workload.model import FunctionConfig, FunctionModel
from optimizer_async.sandbox.workload.profiles import profile_for
from tests.conftest import REGION, make_client
from tests.sandbox.helpers import (
    control,
    evidence,
    make_function,
    make_queue,
    make_role,
    model_now,
    send_message_policy,
)

MEMBER = "210987654321"
THIRD = "345678901234"
ROLE = "LambdaOptimizer"
EXTERNAL_ID = "org-secret-4711"
Credentials = tuple[str, str, str]


def as_caller(
    sandbox: EmbeddedSandbox,
    credentials: tuple[str, ...],
    service: str,
    region: str = REGION,
    **config: Any,
) -> Any:
    """A boto3 client signing with the given credentials (no retries)."""
    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=sandbox.endpoint_url,
        region_name=region,
        aws_access_key_id=credentials[0],
        aws_secret_access_key=credentials[1],
        aws_session_token=credentials[2] if len(credentials) > 2 else None,
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}, **config),
    )


def assume(sts: Any, role_arn: str, **extra: Any) -> dict[str, Any]:
    answer: dict[str, Any] = sts.assume_role(
        RoleArn=role_arn, RoleSessionName=extra.pop("session", "test-session"), **extra
    )
    return answer


def credentials_of(answer: dict[str, Any]) -> Credentials:
    given = answer["Credentials"]
    return (given["AccessKeyId"], given["SecretAccessKey"], given["SessionToken"])


def own_sts(sandbox: EmbeddedSandbox, **config: Any) -> Any:
    """STS with the sandbox's own credentials (the default account's caller)."""
    return make_client(sandbox.endpoint_url, "sts", attempts=1, **config)


def refusal(error: pytest.ExceptionInfo[ClientError]) -> tuple[int, str, str]:
    response = error.value.response
    return (
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Code"],
        response["Error"]["Message"],
    )


def denied_message(caller: str, role_arn: str) -> str:
    return f"User: {caller} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"


DEFAULT_CALLER = f"arn:aws:sts::{DEFAULT_ACCOUNT}:user/moto"


def member(sandbox: EmbeddedSandbox, account: str = MEMBER, **extra: Any) -> Credentials:
    """Stand up a member account and return its role's credentials for the default caller."""
    role_arn = sandbox.add_account(account, ROLE, external_id=extra.get("ExternalId"))
    return credentials_of(assume(own_sts(sandbox), role_arn, **extra))


def post_control(sandbox: EmbeddedSandbox, route: str, payload: Any) -> tuple[int, Any]:
    """A control call whose refusal is read, not raised."""
    try:
        return 200, control(sandbox, "POST", route, payload)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


# --- AssumeRole ------------------------------------------------------------------------


def test_default_credentials_act_in_the_default_account(sandbox: EmbeddedSandbox) -> None:
    assert DEFAULT_ACCOUNT == DEFAULT_ACCOUNT_ID == "123456789012"
    identity = own_sts(sandbox).get_caller_identity()
    assert (identity["Account"], identity["Arn"]) == (DEFAULT_ACCOUNT, DEFAULT_CALLER)


def test_assume_a_member_role(sandbox: EmbeddedSandbox, clock: ManualClock) -> None:
    role_arn = sandbox.add_account(MEMBER, ROLE)
    assert role_arn == f"arn:aws:iam::{MEMBER}:role/{ROLE}"
    now = model_now(sandbox)
    answer = assume(
        own_sts(sandbox), role_arn, session="lambda-optimizer-run1", DurationSeconds=900
    )
    session_arn = f"arn:aws:sts::{MEMBER}:assumed-role/{ROLE}/lambda-optimizer-run1"
    assert answer["AssumedRoleUser"]["Arn"] == session_arn
    # Expiry on the sandbox's model time: a test advancing the clock sees it come.
    assert answer["Credentials"]["Expiration"] == now + timedelta(seconds=900)
    clock.advance(901.0)
    assert model_now(sandbox) > answer["Credentials"]["Expiration"]

    identity = as_caller(sandbox, credentials_of(answer), "sts").get_caller_identity()
    assert (identity["Account"], identity["Arn"]) == (MEMBER, session_arn)
    assert identity["UserId"].endswith(":lambda-optimizer-run1")


def test_a_role_that_does_not_exist_is_access_denied(sandbox: EmbeddedSandbox) -> None:
    sandbox.add_account(MEMBER, ROLE)
    sts = own_sts(sandbox)
    for missing in (
        f"arn:aws:iam::{MEMBER}:role/NoSuchRole",
        f"arn:aws:iam::{THIRD}:role/{ROLE}",  # the name exists, in another account
    ):
        with pytest.raises(ClientError) as refused:
            assume(sts, missing)
        assert refusal(refused) == (403, "AccessDenied", denied_message(DEFAULT_CALLER, missing))
    assert sandbox.stats()["by_outcome"] == {"error:AccessDenied": 2}


def test_a_caller_the_trust_policy_does_not_name_is_refused(sandbox: EmbeddedSandbox) -> None:
    role_arn = sandbox.add_account(MEMBER, ROLE, trusted_account=THIRD)
    with pytest.raises(ClientError) as refused:
        assume(own_sts(sandbox), role_arn)
    assert refusal(refused) == (403, "AccessDenied", denied_message(DEFAULT_CALLER, role_arn))

    # The trusted account's callers may.
    third = member(sandbox, THIRD)
    answer = assume(as_caller(sandbox, third, "sts"), role_arn)
    assert answer["AssumedRoleUser"]["Arn"].startswith(f"arn:aws:sts::{MEMBER}:assumed-role/")


def test_principals_by_exact_arn_and_an_explicit_deny(sandbox: EmbeddedSandbox) -> None:
    iam = make_client(sandbox.endpoint_url, "iam")
    keys = {}
    for name in ("alice", "bob", "carol"):
        iam.create_user(UserName=name)
        key = iam.create_access_key(UserName=name)["AccessKey"]
        keys[name] = (key["AccessKeyId"], key["SecretAccessKey"])
    user = f"arn:aws:iam::{DEFAULT_ACCOUNT}:user/"
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": [user + "alice", user + "bob"]},
             "Action": "sts:AssumeRole"},
            {"Effect": "Deny", "Principal": {"AWS": user + "bob"}, "Action": "sts:*"},
        ],
    }  # fmt: skip
    role_arn = iam.create_role(RoleName="exact", AssumeRolePolicyDocument=json.dumps(trust))[
        "Role"
    ]["Arn"]
    assert assume(as_caller(sandbox, keys["alice"], "sts"), role_arn)["Credentials"]
    for name in ("bob", "carol"):  # denied explicitly; not named
        with pytest.raises(ClientError) as refused:
            assume(as_caller(sandbox, keys[name], "sts"), role_arn)
        assert refusal(refused) == (403, "AccessDenied", denied_message(user + name, role_arn))


def test_the_external_id_must_match(sandbox: EmbeddedSandbox) -> None:
    role_arn = sandbox.add_account(MEMBER, ROLE, external_id=EXTERNAL_ID)
    sts = own_sts(sandbox)
    for extra in ({}, {"ExternalId": "org-secret-4712"}):
        with pytest.raises(ClientError) as refused:
            assume(sts, role_arn, **extra)
        status, code, message = refusal(refused)
        assert (status, code, message) == (
            403,
            "AccessDenied",
            denied_message(DEFAULT_CALLER, role_arn),
        )
        assert "secret" not in message
    answer = assume(sts, role_arn, ExternalId=EXTERNAL_ID)
    assert answer["AssumedRoleUser"]["Arn"].startswith(f"arn:aws:sts::{MEMBER}:")


def test_durations_are_held_to_the_roles_maximum(sandbox: EmbeddedSandbox) -> None:
    iam = make_client(sandbox.endpoint_url, "iam")
    trust = sandbox_trust(DEFAULT_ACCOUNT)
    long_role = iam.create_role(
        RoleName="long", AssumeRolePolicyDocument=trust, MaxSessionDuration=7200
    )["Role"]["Arn"]
    member_role = sandbox.add_account(MEMBER, ROLE)
    sts = own_sts(sandbox, parameter_validation=False)

    assert assume(sts, long_role, DurationSeconds=7200)["Credentials"]
    beyond = "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
    constraint = "1 validation error detected: Value '{}' at 'durationSeconds' failed to satisfy "
    constraint += "constraint: Member must have value {}"
    for role_arn, seconds, message in (
        (member_role, 3601, beyond),
        (long_role, 7201, beyond),
        (long_role, 899, constraint.format(899, "greater than or equal to 900")),
        (long_role, 43201, constraint.format(43201, "less than or equal to 43200")),
    ):
        with pytest.raises(ClientError) as refused:
            assume(sts, role_arn, DurationSeconds=seconds)
        assert refusal(refused) == (400, "ValidationError", message)


def sandbox_trust(account: str, principal: str | None = None) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": principal or f"arn:aws:iam::{account}:root"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )


@pytest.mark.parametrize(
    ("name", "constraint"),
    [
        ("a", "Member must have length greater than or equal to 2"),
        ("x" * 65, "Member must have length less than or equal to 64"),
        ("run 1", "Member must satisfy regular expression pattern: [\\w+=,.@-]*"),
        ("run/1", "Member must satisfy regular expression pattern: [\\w+=,.@-]*"),
    ],
)
def test_session_names_are_checked(sandbox: EmbeddedSandbox, name: str, constraint: str) -> None:
    role_arn = sandbox.add_account(MEMBER, ROLE)
    sts = own_sts(sandbox, parameter_validation=False)
    with pytest.raises(ClientError) as refused:
        assume(sts, role_arn, session=name)
    message = (
        f"1 validation error detected: Value '{name}' at 'roleSessionName' failed to satisfy "
        f"constraint: {constraint}"
    )
    assert refusal(refused) == (400, "ValidationError", message)
    # Every character the pattern allows, at both lengths it allows.
    for good in ("ab", "a+=,.@-_Z9" + "x" * 54):
        assert assume(sts, role_arn, session=good)["AssumedRoleUser"]["Arn"].endswith("/" + good)


def test_role_chaining_trusts_the_role_and_is_held_to_an_hour(sandbox: EmbeddedSandbox) -> None:
    member_session = member(sandbox)
    member_role = f"arn:aws:iam::{MEMBER}:role/{ROLE}"
    third = member(sandbox, THIRD)
    chained = as_caller(sandbox, third, "iam").create_role(
        RoleName="chained",
        AssumeRolePolicyDocument=sandbox_trust(THIRD, principal=member_role),
        MaxSessionDuration=7200,
    )["Role"]["Arn"]

    sts = as_caller(sandbox, member_session, "sts")
    answer = assume(sts, chained, DurationSeconds=3600)
    assert answer["AssumedRoleUser"]["Arn"] == (
        f"arn:aws:sts::{THIRD}:assumed-role/chained/test-session"
    )
    with pytest.raises(ClientError) as refused:
        assume(sts, chained, DurationSeconds=3601)
    message = (
        "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by "
        "role chaining."
    )
    assert refusal(refused) == (400, "ValidationError", message)
    with pytest.raises(ClientError) as untrusted:  # the role's sessions, not its account
        assume(own_sts(sandbox), chained)
    assert refusal(untrusted)[:2] == (403, "AccessDenied")


# --- the credentials select the account ---------------------------------------------------


def test_assumed_credentials_act_in_the_role_account(sandbox: EmbeddedSandbox) -> None:
    own = make_client(sandbox.endpoint_url, "lambda", attempts=1)
    make_function(own, "fn-own", make_role(make_client(sandbox.endpoint_url, "iam"), "role-own"))
    credentials = member(sandbox)
    theirs = as_caller(sandbox, credentials, "lambda")
    assert theirs.list_functions()["Functions"] == []
    make_function(theirs, "fn-member", make_role(as_caller(sandbox, credentials, "iam"), "role-m"))

    def names(client: Any) -> list[str]:
        return [fn["FunctionName"] for fn in client.list_functions()["Functions"]]

    assert (names(own), names(theirs)) == (["fn-own"], ["fn-member"])
    arn = theirs.get_function(FunctionName="fn-member")["Configuration"]["FunctionArn"]
    assert arn == f"arn:aws:lambda:{REGION}:{MEMBER}:function:fn-member"


def test_a_member_dead_letter_queue_is_checked_in_its_own_iam(sandbox: EmbeddedSandbox) -> None:
    credentials = member(sandbox)
    iam, sqs = as_caller(sandbox, credentials, "iam"), as_caller(sandbox, credentials, "sqs")
    lam = as_caller(sandbox, credentials, "lambda")
    queue = make_queue(sqs, "dlq-m")
    assert f":{MEMBER}:" in queue
    role = make_role(iam, "role-dlq")
    iam.put_role_policy(
        RoleName="role-dlq", PolicyName="dlq", PolicyDocument=send_message_policy(queue)
    )
    with sandbox.configured(iam_propagation_s=0.0):
        created = make_function(lam, "fn-dlq", role, DeadLetterConfig={"TargetArn": queue})
    assert created["DeadLetterConfig"] == {"TargetArn": queue}


# --- quotas and counts per account ---------------------------------------------------------


def test_each_account_has_its_own_quota_buckets(
    sandbox: EmbeddedSandbox, clock: ManualClock
) -> None:
    credentials = member(sandbox)
    own = make_client(sandbox.endpoint_url, "lambda", attempts=1)
    clients = {
        (DEFAULT_ACCOUNT, REGION): own,
        (MEMBER, REGION): as_caller(sandbox, credentials, "lambda"),
        (MEMBER, "eu-west-1"): as_caller(sandbox, credentials, "lambda", region="eu-west-1"),
    }
    sandbox.reset_stats()

    def allowed_until_throttled(client: Any) -> tuple[int, str]:
        for succeeded in range(100):
            try:
                client.list_functions()
            except ClientError as error:
                return succeeded, str(error.response["Error"]["Code"])
        raise AssertionError("never throttled")

    with sandbox.configured(rate_limits=True):
        # The default account's bucket runs dry; the member's, same region, is untouched.
        taken = {place: allowed_until_throttled(client) for place, client in clients.items()}
    # One second of Lambda's 15 rps each, then AWS's throttle.
    assert taken == dict.fromkeys(clients, (15, "TooManyRequestsException"))

    stats = sandbox.stats()
    assert stats["by_outcome"] == {"ok": 45, "throttled": 3}
    by_account = stats["by_account"]
    assert by_account[DEFAULT_ACCOUNT]["by_region"] == {REGION: {"total": 16, "throttled": 1}}
    assert by_account[MEMBER]["by_region"] == {
        "eu-west-1": {"total": 16, "throttled": 1},
        REGION: {"total": 16, "throttled": 1},
    }
    assert (by_account[MEMBER]["total"], by_account[MEMBER]["writes"]) == (32, 0)
    assert by_account[MEMBER]["by_outcome"] == {"ok": 30, "throttled": 2}


def test_stats_per_account_keep_the_overall_shape(sandbox: EmbeddedSandbox) -> None:
    credentials = member(sandbox)  # one AssumeRole by the default account
    as_caller(sandbox, credentials, "sts").get_caller_identity()
    as_caller(sandbox, credentials, "lambda").list_functions()
    rows = [
        {"service": "lambda", "operation": "ListFunctions", "outcome": "ok", "write": False,
         "count": 1},
        {"service": "sts", "operation": "GetCallerIdentity", "outcome": "ok", "write": False,
         "count": 1},
    ]  # fmt: skip
    expected = {"total": 2, "writes": 0, "by_outcome": {"ok": 2}, "calls": rows}
    assert sandbox.stats(account=MEMBER) == expected
    assert control(sandbox, "GET", f"stats?account={MEMBER}") == expected
    assert sandbox.stats(account=THIRD) == {
        "total": 0,
        "writes": 0,
        "by_outcome": {},
        "calls": [],
    }
    overall = control(sandbox, "GET", "stats")
    assert (overall["total"], overall["writes"]) == (3, 0)  # AssumeRole changes nothing
    assert overall["by_account"] == {
        DEFAULT_ACCOUNT: {
            "total": 1,
            "writes": 0,
            "by_outcome": {"ok": 1},
            "by_region": {REGION: {"total": 1, "throttled": 0}},
        },
        MEMBER: {
            "total": 2,
            "writes": 0,
            "by_outcome": {"ok": 2},
            "by_region": {REGION: {"total": 2, "throttled": 0}},
        },
    }
    with pytest.raises(urllib.error.HTTPError) as bad:
        control(sandbox, "GET", "stats?account=12345")
    assert bad.value.code == 400


def test_call_stats_count_by_account_and_region() -> None:
    stats = CallStats()
    stats.record("lambda", "GetFunction", "ok", account=MEMBER, region="eu-west-1")
    stats.record("lambda", "GetFunction", "throttled", account=MEMBER, region="eu-west-1")
    stats.record("lambda", "PutFunctionConcurrency", "ok", account=MEMBER, region=REGION)
    stats.record("lambda", "GetFunction", "fault:throttle", account=DEFAULT_ACCOUNT, region=REGION)
    snapshot = stats.snapshot()
    assert snapshot["total"] == 4
    assert snapshot["by_account"][MEMBER] == {
        "total": 3,
        "writes": 1,
        "by_outcome": {"ok": 2, "throttled": 1},
        "by_region": {
            "eu-west-1": {"total": 2, "throttled": 1},
            REGION: {"total": 1, "throttled": 0},
        },
    }
    # An injected throttle is a fault, not the quota's.
    assert snapshot["by_account"][DEFAULT_ACCOUNT]["by_region"][REGION]["throttled"] == 0
    assert stats.snapshot(MEMBER)["calls"][0] == {
        "service": "lambda",
        "operation": "GetFunction",
        "outcome": "ok",
        "write": False,
        "count": 1,
    }


def test_an_access_key_is_looked_up_once_until_cleared() -> None:
    asked: list[str] = []

    def lookup(key: str) -> str:
        asked.append(key)
        return MEMBER if key.startswith("ASIA") else DEFAULT_ACCOUNT

    accounts = KeyAccounts(lookup)
    found = [accounts.of(key) for key in ("ASIA1", "sandbox", "ASIA1", "sandbox", None, "")]
    assert found == [MEMBER, DEFAULT_ACCOUNT, MEMBER, DEFAULT_ACCOUNT] + [DEFAULT_ACCOUNT] * 2
    assert asked == ["ASIA1", "sandbox"]
    accounts.clear()
    accounts.of("ASIA1")
    assert asked == ["ASIA1", "sandbox", "ASIA1"]


# --- member accounts through the control API -------------------------------------------------


def test_accounts_endpoint_stands_up_a_member(sandbox: EmbeddedSandbox) -> None:
    third = member(sandbox, THIRD)
    status, answer = post_control(
        sandbox,
        "accounts",
        {"account": MEMBER, "roleName": ROLE, "trustedAccount": THIRD, "externalId": EXTERNAL_ID},
    )
    role_arn = f"arn:aws:iam::{MEMBER}:role/{ROLE}"
    assert (status, answer) == (200, {"roleArn": role_arn})
    with pytest.raises(ClientError) as untrusted:
        assume(own_sts(sandbox), role_arn, ExternalId=EXTERNAL_ID)
    assert refusal(untrusted)[:2] == (403, "AccessDenied")

    credentials = credentials_of(
        assume(as_caller(sandbox, third, "sts"), role_arn, ExternalId=EXTERNAL_ID)
    )
    role = as_caller(sandbox, credentials, "iam").get_role(RoleName=ROLE)["Role"]
    document = role["AssumeRolePolicyDocument"]
    document = json.loads(document) if isinstance(document, str) else document
    assert document["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{THIRD}:root"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": EXTERNAL_ID}},
        }
    ]
    assert role["MaxSessionDuration"] == 3600

    # Standing it up again re-trusts the same role.
    assert sandbox.add_account(MEMBER, ROLE) == role_arn
    assert assume(own_sts(sandbox), role_arn)["Credentials"]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"roleName": ROLE}, "account must be a 12-digit AWS account id"),
        ({"account": "21098765432", "roleName": ROLE}, "account must be a 12-digit"),
        ({"account": 210987654321, "roleName": ROLE}, "account must be a 12-digit"),
        ({"account": MEMBER}, "roleName must be a role name"),
        ({"account": MEMBER, "roleName": "has space"}, "roleName must be 1 to 64"),
        ({"account": MEMBER, "roleName": ROLE, "trustedAccount": "x"}, "trustedAccount must"),
        ({"account": MEMBER, "roleName": ROLE, "externalId": "s3cret value"}, "externalId must"),
        ({"account": MEMBER, "roleName": ROLE, "externalId": 42}, "externalId must be a string"),
        ([MEMBER], "expected a JSON object"),
    ],
)
def test_accounts_endpoint_refuses_bad_input(
    sandbox: EmbeddedSandbox, payload: Any, reason: str
) -> None:
    status, answer = post_control(sandbox, "accounts", payload)
    assert status == 400
    assert reason in answer["error"]
    assert "s3cret" not in answer["error"]  # an external id is never echoed
    with pytest.raises(ClientError):
        assume(own_sts(sandbox), f"arn:aws:iam::{MEMBER}:role/{ROLE}")


# --- seeding a member account ----------------------------------------------------------------


def test_seeding_through_member_credentials(sandbox: EmbeddedSandbox) -> None:
    credentials = member(sandbox)
    seeder = Seeder(sandbox.endpoint_url, profiles=["steady"], credentials=credentials)
    assert seeder.account_id == MEMBER
    (environment,) = seeder.seed(["dev"])
    (function,) = environment.functions
    names = EnvironmentNames("dev")
    assert environment.account_id == MEMBER
    assert environment.bucket == names.bucket(MEMBER)
    assert environment.role_arn == f"arn:aws:iam::{MEMBER}:role/{names.role}"

    workload = f"workload?{urlencode({'region': REGION, 'account': MEMBER})}"
    assert control(sandbox, "GET", workload) == {function: "steady"}
    assert control(sandbox, "GET", f"workload?region={REGION}") == {}

    # Its metrics are the model's, answered to the member's callers only.
    end = model_now(sandbox).replace(microsecond=0)
    start = end - timedelta(days=7)
    theirs = evidence(as_caller(sandbox, credentials, "cloudwatch"), [function], start, end)
    model = FunctionModel.start(REGION, function, profile_for("steady", function),
                                FunctionConfig(3008, 300, None))  # fmt: skip
    expected = model.statistic("AWS/Lambda", "Invocations", "Sum", start, end)
    assert expected
    assert theirs[function]["invocations"] == [expected]
    own = make_client(sandbox.endpoint_url, "cloudwatch")
    assert evidence(own, [function], start, end)[function]["invocations"] == []

    logs = as_caller(sandbox, credentials, "logs")
    group = logs.describe_log_groups(logGroupNamePrefix=names.function_log_group())["logGroups"]
    assert group[0]["storedBytes"] == profile_for("steady", function).stored_log_bytes

    # Its concurrency settings are the member account's, and the model follows them.
    lam = as_caller(sandbox, credentials, "lambda")
    lam.put_function_concurrency(FunctionName=function, ReservedConcurrentExecutions=850)
    limits = lam.get_account_settings()["AccountLimit"]
    assert limits["UnreservedConcurrentExecutions"] == 150
    own_lambda = make_client(sandbox.endpoint_url, "lambda")
    assert own_lambda.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == (
        1000
    )
    later = model_now(sandbox) + timedelta(hours=1)
    query = {"region": REGION, "account": MEMBER, "start": later.isoformat()}
    query["end"] = (later + timedelta(hours=1)).isoformat()
    found = control(sandbox, "GET", f"workload/outcomes?{urlencode(query)}")
    assert found[function]["reservedConcurrency"] == 850
    assert sandbox.workload_outcomes(REGION, later, later, account=MEMBER)[function]
    assert sandbox.workload_outcomes(REGION, later, later) == {}


def test_insights_queries_are_the_accounts_own(sandbox: EmbeddedSandbox) -> None:
    credentials = member(sandbox)
    Seeder(sandbox.endpoint_url, credentials=credentials).seed(["dev"])
    group = EnvironmentNames("dev").function_log_group()
    end = model_now(sandbox)
    query_id = as_caller(sandbox, credentials, "logs").start_query(
        logGroupName=group,
        startTime=int((end - timedelta(hours=1)).timestamp()),
        endTime=int(end.timestamp()),
        queryString="stats count(*) as n",
    )["queryId"]
    answer = as_caller(sandbox, credentials, "logs").get_query_results(queryId=query_id)
    assert answer["status"] in ("Running", "Complete")
    own = make_client(sandbox.endpoint_url, "logs", attempts=1)
    with pytest.raises(ClientError) as missing:
        own.get_query_results(queryId=query_id)
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert own.describe_queries()["queries"] == []


def test_seeder_takes_plain_key_pairs_still(sandbox: EmbeddedSandbox) -> None:
    seeder = Seeder(sandbox.endpoint_url, credentials=("sandbox", "sandbox"))
    assert seeder.account_id == DEFAULT_ACCOUNT


def test_direct_seeding_into_a_member_account(sandbox: EmbeddedSandbox) -> None:
    credentials = member(sandbox)
    (environment,) = sandbox.seed(["qa"], account=MEMBER, profiles=["slow"])
    assert environment.account_id == MEMBER
    (function,) = environment.functions
    names = [
        f["FunctionName"]
        for f in as_caller(sandbox, credentials, "lambda").list_functions()["Functions"]
    ]
    assert names == [function]
    assert make_client(sandbox.endpoint_url, "lambda").list_functions()["Functions"] == []
    workload = f"workload?{urlencode({'region': REGION, 'account': MEMBER})}"
    assert control(sandbox, "GET", workload) == {function: "slow"}
