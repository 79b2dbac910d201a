"""The optimizer's own least-privilege IAM policy, generated from what the core and steps declare.

Every part and step declares the IAM permissions its calls need as ARN templates
(`steps/base.py: Permission`); the registry lint checks that no declared call lacks one,
and `tests/integration/test_declared_calls.py` that no call goes undeclared. This module
turns those declarations into the policy document the optimizer's own principal needs for
one kind of run (`purpose`):

- `plan` (`--dry-run`): the core's reads and the reads of every part the steps read (their
  own part and the parts they use, evidence included);
- `apply` (a run): plan's, plus every step's permissions (its writes, and any reads its
  apply makes beyond its parts');
- `rollback` (`rollback --run-id`): the core's reads, the reads of the steps' own parts
  (a rollback reads no evidence) and the steps' permissions.

Resources: each template is expanded for the given environment suffixes and function bases
by the naming rules of `naming.py`. Without suffixes the policy is scoped to the naming
pattern instead (`lambda-function-*`, `lambda-dlq-*`, `lambda-deployments-*-{account}`,
...): it then covers every environment, including any other name the pattern matches.
Statements merge actions of one kind (read or write) on the same resources; statements,
actions and resources are sorted, so one input always renders the same document.

## Where a wildcard stands, and why AWS requires it

- `*` for `lambda:GetAccountSettings`: account-level, the action has no resource type;
- `*` for `cloudwatch:GetMetricData`: CloudWatch has no resource-level permissions for
  metric reads;
- `*` for `logs:GetQueryResults`: a query is addressed by its id, the action has no
  resource type;
- `log-group:*` in the account and region for `logs:DescribeLogGroups`: a list call, which
  AWS evaluates on `log-group::log-stream:` whichever groups it asks for;
- `log-group:NAME:*` beside `log-group:NAME` for every other logs action on a log group:
  AWS evaluates some of them on `log-group:NAME` and others (CreateLogGroup) on
  `log-group:NAME:log-stream:`, which only the `:*` form matches; both name the one group.

Secrets are named `{secret}-??????`: Secrets Manager appends six random characters to a
secret's name in its ARN, and `?` matches exactly one. No other resource holds a wildcard
when suffixes are given (`WILDCARDS` below is the table the tests hold the policy to).

## Proven against an evaluator, and where that evaluator is weaker than AWS's

`tests/integration/test_iam_enforcement.py` runs the optimizer in the sandbox as an IAM
user holding exactly the policy for its purpose, and shows that removing any one statement
makes the run fail with AccessDenied. The sandbox authorises every request with moto's
policy evaluation, strengthened (`sandbox/patches/iam_authorization.py`): each request is
checked against the ARNs AWS evaluates (moto checks `*` for Lambda, Logs, CloudWatch and
Secrets Manager), CloudWatch under its IAM prefix, IAM's wildcards, tag-on-create's second
permission, GetFunction's tags only with `lambda:ListTags`, and the sandbox's own
GetAccountSettings. What it still does not do as AWS does:

- Conditions are not evaluated (none are generated); `NotResource` is ignored;
- only identity policies of IAM users count: no resource policies, permission boundaries,
  SCPs or session policies;
- dependent permissions are modelled only for tag-on-create (`sqs:TagQueue`,
  `cloudwatch:TagResource`, `logs:TagResource`) and `iam:PassRole` on a function's role;
- the ARN AWS evaluates is this product's reading of AWS's documentation and observed
  denials; for log groups the sandbox demands both forms, so the proof holds whichever
  AWS uses, but it cannot show that AWS needs both;
- a missing secret: the sandbox denies DescribeSecret of a name no secret has (its ARN
  lacks the six characters), as AWS answers a scoped caller; the secrets part then fails
  with AccessDenied rather than reporting the secret missing;
- S3 and STS are checked by moto alone (bucket ARNs; GetCallerIdentity needs nothing).
"""

from __future__ import annotations

import itertools
import json
import re
import string
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Final, Literal, TypedDict

from optimizer_async.aws.operations import is_write
from optimizer_async.definitions.naming import (
    DEFAULT_FUNCTION_BASE,
    EnvironmentNames,
    InvalidNameError,
    duration_alarm_name,
    error_rate_alarm_name,
    log_group_name,
)
from optimizer_async.fleet.finder import FINDER_PERMISSIONS
from optimizer_async.records.state import STATE_BUCKET_PERMISSIONS
from optimizer_async.steps.base import Permission, Step
from optimizer_async.steps.core import CORE_PERMISSIONS

Purpose = Literal["plan", "apply", "rollback"]
PURPOSES: Final[tuple[Purpose, ...]] = ("plan", "apply", "rollback")
VERSION: Final = "2012-10-17"
# IAM's size limit of a customer managed policy, in characters without whitespace (a user's
# inline policies share 2,048). A run's policy takes about 1,800 characters plus 1,300 per
# environment: past three environments, use the pattern form (no suffixes), about 2,900.
MANAGED_POLICY_MAX_CHARS: Final = 6_144

# Actions granted on a bare `*`, and why AWS allows nothing narrower (the module's table).
WILDCARDS: Final[Mapping[str, str]] = {
    "lambda:GetAccountSettings": "account-level: the action has no resource type",
    "lambda:ListFunctions": "a list call: the action has no resource type (`--all` only)",
    "cloudwatch:GetMetricData": "CloudWatch has no resource-level permissions for metric reads",
    "logs:GetQueryResults": "a query is addressed by its id: the action has no resource type",
    "pricing:GetProducts": "the Price List API has no resource types (`--prices live` only)",
}
PRICE_LIST_ACTION: Final = "pricing:GetProducts"
# Actions granted on every log group of the account and region (`log-group:*`), and why.
ACCOUNT_WIDE: Final[Mapping[str, str]] = {
    "logs:DescribeLogGroups": "a list call: AWS evaluates it on `log-group::log-stream:`",
}

_BASICS: Final = frozenset({"partition", "region", "account"})
_ENTITIES: Final = frozenset(
    {"suffix", "function", "log_group", "queue", "role", "bucket", "alarm", "secret"}
)
# A valid suffix standing for "any": names are built by naming.py's rules, then it becomes `*`.
_ANY_SUFFIX: Final = "zzanysuffixzz"
_ANY_ACCOUNT: Final = "000000000000"
_ACCOUNT_RE: Final = re.compile(r"\d{12}|\*")
_LOG_GROUP_RESOURCE: Final = re.compile(r"^arn:[^:]+:logs:[^:]*:[^:]*:log-group:(?P<name>.+)$")
_NOUNS: Final[Mapping[str, str]] = {
    "function": "Functions",
    "log-group": "LogGroups",
    "alarm": "Alarms",
    "role": "Roles",
    "secret": "Secrets",
}


class Statement(TypedDict):
    Sid: str
    Effect: Literal["Allow"]
    Action: list[str]
    Resource: list[str]


class PolicyDocument(TypedDict):
    Version: str
    Statement: list[Statement]


def permissions(steps: Iterable[Step], purpose: Purpose) -> tuple[Permission, ...]:
    """The declared permissions a run of `purpose` over `steps` needs (templates)."""
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {', '.join(PURPOSES)}, not {purpose!r}")
    found: dict[Permission, None] = dict.fromkeys(CORE_PERMISSIONS)
    for step in steps:
        parts = (step.part,) if purpose == "rollback" else step.parts
        for part in parts:
            found.update(dict.fromkeys(part.permissions))
        if purpose != "plan":
            found.update(dict.fromkeys(step.permissions))
    return tuple(found)


def policy(
    steps: Iterable[Step],
    purpose: Purpose,
    *,
    account: str,
    region: str,
    suffixes: Sequence[str] = (),
    function_bases: Sequence[str] = (DEFAULT_FUNCTION_BASE,),
    partition: str = "aws",
    state_bucket: str | None = None,
    state_prefix: str = "",
    live_prices: bool = False,
    find_all: bool = False,
) -> PolicyDocument:
    """The least-privilege policy document for the optimizer's principal.

    `account`: 12 digits (or `*`); `region`: e.g. us-east-1 (or `*`); `suffixes`: the
    environments (none: the naming pattern, every environment); `function_bases`: the
    function name bases (`{base}-{suffix}`); `state_bucket`: where `--state-bucket` keeps
    the run records (its objects under `state_prefix` only); `find_all`: `--all` lists the
    region's functions (its GetFunction reads are the core's, on the naming pattern).
    """
    if not _ACCOUNT_RE.fullmatch(account):
        raise InvalidNameError(f"account id {account!r} is not 12 digits (or *)")
    if not function_bases:
        raise ValueError("at least one function base is needed")
    environments = [_entities(suffix, function_bases, account) for suffix in suffixes] or [
        _entities(None, function_bases, account)
    ]
    basics = {"partition": partition, "region": region, "account": account}
    grants: dict[str, set[str]] = {}
    for permission in permissions(steps, purpose):
        resources = grants.setdefault(permission.action, set())
        for resource in _expand(permission, basics, environments):
            resources.update(_as_aws_expects(permission.action, resource))
    if state_bucket:
        _grant_state_bucket(grants, partition, state_bucket, state_prefix)
    if find_all and purpose != "rollback":  # a rollback undoes the environments it names
        for permission in FINDER_PERMISSIONS:
            grants.setdefault(permission.action, set()).add(permission.resource)
    if live_prices and purpose != "rollback":  # a rollback prices nothing
        grants.setdefault(PRICE_LIST_ACTION, set()).add("*")
    return {"Version": VERSION, "Statement": _statements(grants)}


def caller_policy(
    role_arns: Sequence[str],
    *,
    partition: str = "aws",
    state_bucket: str | None = None,
    state_prefix: str = "",
) -> PolicyDocument:
    """The policy of the principal an organisation's run (`--accounts`) starts as: it only
    assumes exactly the listed roles (each role holds `policy(...)` for its own account)
    and keeps the run records. GetCallerIdentity needs no permission."""
    grants: dict[str, set[str]] = {"sts:AssumeRole": set(role_arns)}
    if state_bucket:
        _grant_state_bucket(grants, partition, state_bucket, state_prefix)
    return {"Version": VERSION, "Statement": _statements(grants)}


def _grant_state_bucket(
    grants: dict[str, set[str]], partition: str, bucket: str, prefix: str
) -> None:
    """The run records' objects under the prefix, and listing them."""
    under = prefix.strip("/") + "/" if prefix.strip("/") else ""
    for action, template in STATE_BUCKET_PERMISSIONS:
        resource = template.format(partition=partition, state_bucket=bucket, state_prefix=under)
        grants.setdefault(action, set()).add(resource)


def render(document: PolicyDocument) -> str:
    """The policy as JSON with a 2-space indent (what `iam-policy` prints)."""
    return json.dumps(document, indent=2)


def size(document: PolicyDocument) -> int:
    """The policy's size as IAM counts it (whitespace does not count), to compare with
    `MANAGED_POLICY_MAX_CHARS`."""
    return len(json.dumps(document, separators=(",", ":")))


# --- expansion ----------------------------------------------------------------------------


def _entities(suffix: str | None, bases: Sequence[str], account: str) -> dict[str, tuple[str, ...]]:
    """Every physical name of one environment by placeholder; None: the naming pattern."""
    names = EnvironmentNames(suffix or _ANY_SUFFIX)
    functions = tuple(names.function(base) for base in bases)
    bucket = names.bucket(_ANY_ACCOUNT if account == "*" else account)
    values = {
        "suffix": (names.suffix,),
        "function": functions,
        "log_group": tuple(log_group_name(function) for function in functions),
        "alarm": tuple(
            alarm(function)
            for function in functions
            for alarm in (error_rate_alarm_name, duration_alarm_name)
        ),
        "queue": (names.dead_letter_queue,),
        "role": (names.role,),
        "bucket": (bucket.removesuffix(_ANY_ACCOUNT) + account if account == "*" else bucket,),
        "secret": (names.database_url_secret, names.api_key_secret),
    }
    if suffix is None:
        values = {
            key: tuple(value.replace(_ANY_SUFFIX, "*") for value in found)
            for key, found in values.items()
        }
    return values


def _placeholders(template: str) -> set[str]:
    fields = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    unknown = fields - _BASICS - _ENTITIES
    if unknown:
        raise ValueError(f"unknown placeholder(s) {sorted(unknown)} in {template!r}")
    return fields


def _expand(
    permission: Permission,
    basics: Mapping[str, str],
    environments: Sequence[Mapping[str, tuple[str, ...]]],
) -> Iterator[str]:
    template = permission.resource
    entities = sorted(_placeholders(template) & _ENTITIES)
    if not entities:
        yield template.format(**basics)
        return
    for values in environments:
        for combination in itertools.product(*(values[name] for name in entities)):
            yield template.format(**basics, **dict(zip(entities, combination, strict=True)))


def _as_aws_expects(action: str, resource: str) -> tuple[str, ...]:
    """A log group ARN for a logs action also as `NAME:*` (see the module's table)."""
    found = _LOG_GROUP_RESOURCE.match(resource)
    if action.startswith("logs:") and found and not found["name"].endswith("*"):
        return (resource, f"{resource}:*")
    return (resource,)


# --- statements ---------------------------------------------------------------------------


def _statements(grants: Mapping[str, set[str]]) -> list[Statement]:
    groups: dict[tuple[bool, frozenset[str]], list[str]] = {}
    for action, granted in grants.items():
        scope = frozenset({"*"}) if "*" in granted else frozenset(granted)
        writes = is_write(action.split(":", 1)[1])
        groups.setdefault((writes, scope), []).append(action)
    ordered = sorted(groups.items(), key=lambda item: (item[0][0], sorted(item[0][1])))
    statements: list[Statement] = []
    seen: dict[str, int] = {}
    for (writes, resources), actions in ordered:
        sid = ("Write" if writes else "Read") + _noun(sorted(resources))
        seen[sid] = seen.get(sid, 0) + 1
        if seen[sid] > 1:
            sid += str(seen[sid])
        statements.append(
            {
                "Sid": sid,
                "Effect": "Allow",
                "Action": sorted(actions),
                "Resource": sorted(resources),
            }
        )
    return statements


def _noun(resources: Sequence[str]) -> str:
    """What the resources are, for a Sid: `Functions`, `AllLogGroups`, `Unscoped`, ..."""
    if resources == ["*"]:
        return "Unscoped"
    parts = resources[0].split(":", 5)
    if len(parts) < 6:
        return "Resources"
    service, resource = parts[2], parts[5]
    kind = re.split(r"[:/]", resource, maxsplit=1)[0]
    if service == "sqs":
        noun = "Queues"
    elif service == "s3":
        noun = "Buckets"
    else:
        noun = _NOUNS.get(kind, "".join(word.title() for word in re.split(r"\W+", kind)))
    every = all(re.fullmatch(rf"{re.escape(kind)}[:/]\*", r.split(":", 5)[5]) for r in resources)
    return f"All{noun}" if every and kind != resource else noun
