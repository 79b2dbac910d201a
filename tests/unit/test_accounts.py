"""The accounts file (`--accounts`): c7n-org's shape, checked before any AWS call."""

from __future__ import annotations

from pathlib import Path

import pytest

from optimizer_async import cli
from optimizer_async.commands import iam_policy
from optimizer_async.fleet.accounts import Account, AccountsError, load, places
from optimizer_async.fleet.finder import Filters
from optimizer_async.runs.configs import UsageError

ROLE = "arn:aws:iam::111111111111:role/LambdaOptimizer"


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "accounts.yaml"
    path.write_text(text)
    return path


def test_a_c7n_org_file_reads_with_defaults_and_its_own_keys_ignored(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        f"""
accounts:
  - account_id: "111111111111"
    name: payments
    role: {ROLE}
    external_id: org-7f3a
    regions: [us-east-1, eu-west-1]
    match: ["pr-*"]
    exclude: pr-9*
    tags: [type:dev]
    email: payments@example.com
    vars: {{owner: team}}
  - account_id: 012345678901
""",
    )
    first, second = load(path, "ap-southeast-2")
    assert first == Account(
        "111111111111",
        "payments",
        ("us-east-1", "eu-west-1"),
        ROLE,
        "org-7f3a",
        ("pr-*",),
        ("pr-9*",),
    )
    assert "org-7f3a" not in repr(first)  # the external id stays out of logs and errors
    # No name: the id; no regions: the run's; no role: the run's own credentials.
    assert (second.account_id, second.name, second.regions, second.role) == (
        "012345678901",
        "012345678901",
        ("ap-southeast-2",),
        None,
    )
    assert [(p.account.name, p.region) for p in places((first, second))] == [
        ("payments", "us-east-1"),
        ("payments", "eu-west-1"),
        ("012345678901", "ap-southeast-2"),
    ]


def test_an_accounts_globs_narrow_the_runs_and_say_so() -> None:
    account = Account("111111111111", "payments", ("us-east-1",), match=("pr-*",),
                      exclude=("pr-9*",))  # fmt: skip
    filters = Filters(match=("pr-*", "dev"), account=account)
    assert filters.refusal("pr-1") is None
    assert filters.refusal("dev") == "not matched by account payments's match pr-*"
    assert filters.refusal("pr-90") == "excluded by account payments's exclude pr-9*"
    assert filters.refusal("qa") == "not matched by --match pr-* dev"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("accounts: [", "is not YAML (line 1)"),
        ("- account_id: '111111111111'", "expected one key, `accounts:`"),
        ("accounts: []", "`accounts` must be a non-empty list"),
        ("accounts: [x]", "accounts[0] must be a mapping"),
        ("accounts: [{account_id: '1111'}]", "accounts[0].account_id must be a 12-digit"),
        ("accounts: [{account_id: '111111111111', rgions: [us-east-1]}]",
         "accounts[0]: unknown key(s) rgions"),
        ("accounts: [{account_id: '111111111111', role: 'LambdaOptimizer'}]",
         "accounts[0].role is not an IAM role ARN"),
        ("accounts: [{account_id: '222222222222', role: '" + ROLE + "'}]",
         "accounts[0].role is a role of account 111111111111, not 222222222222"),
        ("accounts: [{account_id: '111111111111', external_id: abc}]",
         "accounts[0].external_id needs a role to assume"),
        ("accounts: [{account_id: '111111111111', role: '" + ROLE + "', external_id: 'a b'}]",
         "accounts[0].external_id must be 2-1224 characters"),
        ("accounts: [{account_id: '111111111111', regions: [us-east]}]",
         "'us-east' is not an AWS region name"),
        ("accounts: [{account_id: '111111111111', regions: []}]",
         "accounts[0].regions must name at least one region"),
        ("accounts: [{account_id: '111111111111', regions: [us-east-1, us-east-1]}]",
         "accounts[0].regions lists a region twice"),
        ("accounts: [{account_id: '111111111111', match: ['']}]",
         "accounts[0].match must be a list of non-empty strings"),
        ("accounts: [{account_id: '111111111111'}, {account_id: '111111111111', name: b}]",
         "account_id 111111111111 is listed twice"),
        ("accounts: [{account_id: '111111111111', name: a}, {account_id: '222222222222', name: a}]",
         "name a is listed twice"),
        # YAML 1.1 would read these as octal and hex numbers: they stay as written
        ("accounts: [{account_id: 0o11111111111}]", "accounts[0].account_id must be a 12-digit"),
        ("accounts: [{account_id: 0x1F}]", "accounts[0].account_id must be a 12-digit"),
        ("accounts: [{account_id: '" + "\uff11" * 12 + "'}]", "account_id must be a 12-digit"),
        ("accounts: [{account_id: '111111111111', role: a, role: b}]",
         "is not YAML (line 1): 'role' is given twice"),
        ("accounts: []\naccounts: [{account_id: '111111111111'}]",
         "'accounts' is given twice (line 2)"),
        ("accounts: " + "[" * 5000, "nests too deep"),
    ],
)  # fmt: skip
def test_a_bad_file_is_one_line_naming_where(tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(AccountsError) as raised:
        load(_file(tmp_path, text), "us-east-1")
    assert says in str(raised.value)
    assert "\n" not in str(raised.value)


def test_an_unquoted_account_id_keeps_its_leading_zero(tmp_path: Path) -> None:
    (account,) = load(_file(tmp_path, "accounts: [{account_id: 011111111111}]"), "us-east-1")
    assert account.account_id == "011111111111"  # not octal 1227133513


def test_what_is_not_an_accounts_file_is_said_so(tmp_path: Path) -> None:
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe")
    big = tmp_path / "big.yaml"
    big.write_text("#" * 1_000_001)
    for path, says in ((binary, "is not UTF-8 text"), (tmp_path, "is not a file"),
                       (Path("/dev/zero"), "is not a file"), (big, "is larger than")):  # fmt: skip
        with pytest.raises(AccountsError, match=says):
            load(path, "us-east-1")


def test_iam_policy_for_accounts_is_the_callers_and_refuses_a_roles_scope(tmp_path: Path) -> None:
    path = _file(tmp_path, f"accounts: [{{account_id: '111111111111', role: '{ROLE}'}}]")
    document = iam_policy.document(["--accounts", str(path)], {})
    assert document["Statement"] == [
        {"Sid": "ReadRoles", "Effect": "Allow", "Action": ["sts:AssumeRole"], "Resource": [ROLE]}
    ]
    for option in (["--suffix", "dev"], ["--all"], ["--for", "plan"], ["--account", "1" * 12]):
        with pytest.raises(UsageError, match=f"{option[0]} scopes a role's own policy"):
            iam_policy.document(["--accounts", str(path), *option], {})
    roleless = _file(tmp_path, "accounts: [{account_id: '222222222222', name: tools}]")
    with pytest.raises(UsageError, match="account tools has no role"):
        iam_policy.document(["--accounts", str(roleless)], {})


def test_the_command_line_refuses_a_bad_accounts_file_before_any_aws_call(
    tmp_path: Path,
) -> None:
    with pytest.raises(UsageError, match=r"none\.yaml: no such file"):
        cli.parse_config(["--all", "--accounts", str(tmp_path / "none.yaml")], {})
    path = _file(tmp_path, "accounts: [{account_id: '111111111111'}]")
    with pytest.raises(UsageError, match="cannot go with --sandbox"):
        cli.parse_config(["--all", "--accounts", str(path), "--sandbox"], {})
    config = cli.parse_config(["--all", "--accounts", str(path), "--region", "eu-west-1"], {})
    assert [a.regions for a in config.accounts] == [("eu-west-1",)]
