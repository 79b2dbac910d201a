"""STS AssumeRole decided as AWS decides it, and member accounts with a role to assume.

moto 5.2.5 hands out credentials for any role ARN, existing or not, whoever asks, with
any external id, for any duration, expiring on the wall clock; the credentials do select
the ARN's account for every later call (moto maps the key to that account's IAM), which
is what lets the sandbox hold an organisation's accounts. AWS, and this patch:

- the role must exist in the IAM of the account its ARN names;
- its trust policy must allow the caller: a statement with Effect Allow, Action
  `sts:AssumeRole` (IAM's wildcards) and Principal `*` or {"AWS": ...} naming the caller's
  account id, `arn:aws:iam::ACCOUNT:root`, the caller's exact ARN or, for a role session,
  its role's ARN; an explicit Deny wins. Conditions: `StringEquals` on `sts:ExternalId`
  is evaluated (the request's ExternalId must be one of the values: missing or wrong is
  refused); a statement with any other condition does not apply here (fails closed);
- otherwise AccessDenied (403) in STS's XML shape, worded as AWS words it, never naming
  the external id and not saying whether the role exists;
- RoleSessionName: 2 to 64 of `[\\w+=,.@-]`; DurationSeconds: 900 to 43200, and at most
  the role's MaxSessionDuration (3600 unless set), and one hour for a role session
  assuming another role (role chaining) - each a ValidationError in AWS's words;
- the credentials' Expiration is the sandbox's model time plus the duration, so a test on
  virtual time sees the expiry come when it advances the clock.

The caller of the sandbox's own credentials (any key moto does not hold) is the default
account's, `arn:aws:sts::123456789012:user/moto` as GetCallerIdentity tells it.

`add_member_role` stands up an organisation member: a role in its IAM that a trusted
account may assume (`POST /_sandbox/accounts`, `EmbeddedSandbox.add_account`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from moto.iam.models import iam_backends
from moto.sts.exceptions import STSValidationError
from moto.sts.models import STSBackend, sts_backends
from moto.sts.responses import TokenResponse
from werkzeug.exceptions import HTTPException

from optimizer_async.sandbox import protocols, runtime
from optimizer_async.sandbox.accounts import DEFAULT_ACCOUNT, checked_account
from optimizer_async.sandbox.patches._patching import wrap_method
from optimizer_async.sandbox.patches.iam_authorization import matches

MIN_DURATION_S: Final = 900
MAX_DURATION_S: Final = 43_200
DEFAULT_DURATION_S: Final = 3600  # AssumeRole's default, and a role's default maximum
CHAINED_MAX_S: Final = 3600
_SESSION_NAME_PATTERN: Final = r"[\w+=,.@-]*"
_SESSION_NAME_RE: Final = re.compile(_SESSION_NAME_PATTERN, re.ASCII)
_ROLE_NAME_RE: Final = re.compile(r"[\w+=,.@-]{1,64}", re.ASCII)
_EXTERNAL_ID_RE: Final = re.compile(r"[\w+=,.@:/-]{2,1224}", re.ASCII)
_ROLE_ARN_RE: Final = re.compile(r"arn:(aws[a-z-]*):iam::(\d{12}):role/.+", re.ASCII)
_ROOT_RE: Final = re.compile(r"arn:aws[a-z-]*:iam::(\d{12}):root", re.ASCII)
_EXTERNAL_ID_KEY: Final = "sts:externalid"  # condition keys match whatever their case
MAX_DURATION_MESSAGE: Final = (
    "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
)
CHAINED_MESSAGE: Final = (
    "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by "
    "role chaining."
)


@dataclass(frozen=True)
class Caller:
    """Who signed the request, as a trust policy sees it."""

    account: str
    arn: str
    role_arn: str | None = None  # for a role session: the role's ARN


class _Refused(HTTPException):
    """An error moto sends as it is (status, headers, body), in STS's own shape."""

    def __init__(self, reply: protocols.ErrorReply) -> None:
        super().__init__(description=reply.body.decode())
        self.code = reply.status
        self._headers = reply.headers

    def get_headers(self, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
        return list(self._headers)


def access_denied(caller_arn: str, role_arn: str) -> HTTPException:
    """AWS's one refusal for a missing role, an untrusted caller and a wrong external id
    alike: nothing tells which, and the external id is never named."""
    message = (
        f"User: {caller_arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
    )
    return _Refused(protocols.render_error("sts", 403, "AccessDenied", message))


def _validation(errors: list[str]) -> STSValidationError:
    """STS's model-constraint error: every violation, counted, in one message."""
    count = len(errors)
    noun = "error" if count == 1 else "errors"
    return STSValidationError(f"{count} validation {noun} detected: " + "; ".join(errors))


def _constraint(value: object, member: str, constraint: str) -> str:
    shown = "null" if value is None else f"'{value}'"
    return f"Value {shown} at '{member}' failed to satisfy constraint: Member must {constraint}"


def _check_request(session_name: str | None, duration: int) -> None:
    """The request's own constraints, as STS's model states them (all at once, as AWS)."""
    errors = []
    if session_name is None:
        errors.append(_constraint(None, "roleSessionName", "not be null"))
    else:
        if len(session_name) < 2:
            errors.append(
                _constraint(
                    session_name, "roleSessionName", "have length greater than or equal to 2"
                )
            )
        if len(session_name) > 64:
            errors.append(
                _constraint(session_name, "roleSessionName", "have length less than or equal to 64")
            )
        if not _SESSION_NAME_RE.fullmatch(session_name):
            errors.append(
                _constraint(
                    session_name,
                    "roleSessionName",
                    f"satisfy regular expression pattern: {_SESSION_NAME_PATTERN}",
                )
            )
    if duration < MIN_DURATION_S:
        errors.append(
            _constraint(
                duration, "durationSeconds", f"have value greater than or equal to {MIN_DURATION_S}"
            )
        )
    if duration > MAX_DURATION_S:
        errors.append(
            _constraint(
                duration, "durationSeconds", f"have value less than or equal to {MAX_DURATION_S}"
            )
        )
    if errors:
        raise _validation(errors)


def caller_of(response: Any) -> Caller:
    """The signer of a request as GetCallerIdentity names it (its account from moto)."""
    account = str(response.current_account)
    key = str(response.get_access_key())
    backend: STSBackend = sts_backends[account][response.partition]
    session = backend.get_assumed_role_from_access_key(key)
    if session is not None:
        return Caller(account, str(session.arn), str(session.role_arn))
    _, arn, _ = backend.get_caller_identity(key, response.region)
    return Caller(account, str(arn))


def _as_list(value: Any) -> list[Any]:
    return [value] if isinstance(value, str) else list(value or [])


def _names(principal: str, caller: Caller) -> bool:
    root = _ROOT_RE.fullmatch(principal)
    return (
        principal == "*"
        or principal == caller.account
        or (root is not None and root.group(1) == caller.account)
        or principal == caller.arn
        or (caller.role_arn is not None and principal == caller.role_arn)
    )


def _principal_matches(statement: dict[str, Any], caller: Caller) -> bool:
    principal = statement.get("Principal")
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    return any(_names(str(name), caller) for name in _as_list(principal.get("AWS")))


def _conditions_hold(condition: Any, external_id: str | None) -> bool:
    """StringEquals on sts:ExternalId only; any other condition does not hold here."""
    if not condition:
        return True
    if not isinstance(condition, dict):
        return False
    for operator, tests in condition.items():
        if operator != "StringEquals" or not isinstance(tests, dict):
            return False
        for key, expected in tests.items():
            if str(key).lower() != _EXTERNAL_ID_KEY or external_id is None:
                return False
            if external_id not in [str(value) for value in _as_list(expected)]:
                return False
    return True


def trusts(document: str | dict[str, Any], caller: Caller, external_id: str | None) -> bool:
    """Whether a trust policy lets `caller` assume the role (an explicit Deny wins)."""
    try:
        parsed = json.loads(document) if isinstance(document, str) else document
    except ValueError:
        return False
    statements = parsed.get("Statement", []) if isinstance(parsed, dict) else []
    allowed = False
    for statement in [statements] if isinstance(statements, dict) else statements:
        if not isinstance(statement, dict):
            continue
        if not (
            matches(statement.get("Action"), "sts:AssumeRole", case_sensitive=False)
            and _principal_matches(statement, caller)
            and _conditions_hold(statement.get("Condition"), external_id)
        ):
            continue
        if statement.get("Effect") == "Deny":
            return False
        allowed = allowed or statement.get("Effect") == "Allow"
    return allowed


def _role(role_arn: str) -> Any | None:
    """The role the ARN names, in its own account's IAM; None if there is none."""
    parsed = _ROLE_ARN_RE.fullmatch(role_arn)
    if parsed is None:
        return None
    account = parsed.group(2)
    if account not in iam_backends:  # an account nothing has touched has no roles
        return None
    try:
        return iam_backends[account][parsed.group(1)].get_role_by_arn(role_arn)
    except Exception:  # moto's NotFoundException
        return None


def check_assume_role(response: Any) -> None:
    """Refuse an AssumeRole AWS would refuse; see the module docstring."""
    session_name = response._get_param("RoleSessionName")
    role_arn = str(response._get_param("RoleArn") or "")
    duration = response._get_int_param("DurationSeconds", DEFAULT_DURATION_S)
    external_id = response._get_param("ExternalId")
    _check_request(None if session_name is None else str(session_name), int(duration))
    caller = caller_of(response)
    role = _role(role_arn)
    if role is None or not trusts(
        role.assume_role_policy_document,
        caller,
        None if external_id is None else str(external_id),
    ):
        raise access_denied(caller.arn, role_arn)
    maximum = int(role.max_session_duration or DEFAULT_DURATION_S)
    if duration > maximum:
        raise STSValidationError(MAX_DURATION_MESSAGE)
    if caller.role_arn is not None and duration > CHAINED_MAX_S:
        raise STSValidationError(CHAINED_MESSAGE)


def _model_expiry(duration_s: int) -> datetime:
    """Now on the sandbox's model time, plus the duration (naive UTC, as moto's times are)."""
    moment = runtime.current().model_time() + timedelta(seconds=duration_s)
    return moment.astimezone(UTC).replace(tzinfo=None)


# --- member accounts ---------------------------------------------------------------------


def member_trust_policy(trusted_account: str, external_id: str | None = None) -> dict[str, Any]:
    """A trust policy letting `trusted_account` assume the role (with the external id)."""
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{trusted_account}:root"},
        "Action": "sts:AssumeRole",
    }
    if external_id is not None:
        statement["Condition"] = {"StringEquals": {"sts:ExternalId": external_id}}
    return {"Version": "2012-10-17", "Statement": [statement]}


def add_member_role(
    account: str,
    role_name: str,
    trusted_account: str = DEFAULT_ACCOUNT,
    external_id: str | None = None,
) -> str:
    """Create (or re-trust) `role_name` in `account`'s IAM, assumable by `trusted_account`
    (with `external_id` if given); its ARN. ValueError for input AWS would not take."""
    checked_account(account)
    checked_account(trusted_account, "trustedAccount")
    if not isinstance(role_name, str) or not _ROLE_NAME_RE.fullmatch(role_name):
        raise ValueError(f"roleName must be 1 to 64 of [\\w+=,.@-], not {role_name!r}")
    if external_id is not None and (
        not isinstance(external_id, str) or not _EXTERNAL_ID_RE.fullmatch(external_id)
    ):
        raise ValueError("externalId must be 2 to 1224 of [\\w+=,.@:/-]")  # never echoed
    document = json.dumps(member_trust_policy(trusted_account, external_id))
    iam = iam_backends[account]["aws"]
    existing = [role for role in iam.get_roles() if role.name == role_name]
    if existing:
        iam.update_assume_role_policy(role_name, document)
        return str(existing[0].arn)
    role = iam.create_role(
        role_name=role_name,
        assume_role_policy_document=document,
        path="/",
        permissions_boundary=None,
        description=f"Assumed by {trusted_account} (sandbox organisation member)",
        tags=[],
        max_session_duration=DEFAULT_DURATION_S,  # type: ignore[arg-type]  # as CreateRole parses it
    )
    return str(role.arn)


def apply() -> None:
    @wrap_method(TokenResponse, "assume_role")
    def assume_role(original: Any, response: Any) -> Any:
        check_assume_role(response)
        return original(response)

    @wrap_method(STSBackend, "assume_role")
    def backend_assume_role(original: Any, backend: Any, *args: Any, **kwargs: Any) -> Any:
        """The session expires on the sandbox's time, not the wall clock's."""
        session = original(backend, *args, **kwargs)
        session.expiration = _model_expiry(int(kwargs.get("duration", DEFAULT_DURATION_S)))
        return session
