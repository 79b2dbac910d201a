"""A dead-letter queue is accepted only if the role may send to it, as IAM sees it now.

AWS checks the execution role when a function's DeadLetterConfig is set and refuses with
InvalidParameterValueException if the role lacks sqs:SendMessage on the queue. IAM is
eventually consistent: a policy just attached may not be seen for seconds. moto 5.2.5 checks
nothing. Here every role-policy change is timestamped and the check sees the role as it was
`iam_propagation_s` ago (sandbox clock).

The evaluation covers what this product needs: Allow/Deny statements, Action and Resource
with `*`/`?` wildcards, inline and managed policies; Conditions are ignored.
"""

from __future__ import annotations

import fnmatch
import json
import math
from typing import Any, Final

from moto.awslambda.exceptions import InvalidParameterValueException
from moto.awslambda.models import LambdaBackend
from moto.iam.models import IAMBackend, iam_backends

from optimizer_async.sandbox import runtime
from optimizer_async.sandbox.patches._patching import wrap_method

NO_PERMISSION_MESSAGE: Final = (
    "The provided execution role does not have permissions to call SendMessage on SQS"
)
_HISTORY: Final = "_sandbox_policy_history"


def _documents(role: Any) -> list[str]:
    """The role's policy documents as they stand: inline ones and managed default versions."""
    documents = [str(doc) for doc in role.policies.values()]
    for policy in role.managed_policies.values():
        for version in policy.versions:
            if version.is_default:
                documents.append(str(version.document))
    return documents


def _record(role: Any, before: list[str]) -> None:
    history: list[tuple[float, list[str]]] = getattr(role, _HISTORY, None) or [(-math.inf, before)]
    history.append((runtime.current().clock.now(), _documents(role)))
    setattr(role, _HISTORY, history)


def _visible_documents(role: Any) -> list[str]:
    """The policies IAM's eventually consistent view holds for the role right now."""
    history: list[tuple[float, list[str]]] | None = getattr(role, _HISTORY, None)
    if not history:
        return _documents(role)
    sandbox = runtime.current()
    config = sandbox.config
    horizon = sandbox.clock.now() - config.scaled(config.iam_propagation_s)
    visible = history[0][1]
    for stamp, documents in history:
        if stamp <= horizon:
            visible = documents
    return visible


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def _matches(patterns: list[str], value: str, case_sensitive: bool) -> bool:
    if not case_sensitive:
        return any(fnmatch.fnmatchcase(value.lower(), p.lower()) for p in patterns)
    return any(fnmatch.fnmatchcase(value, p) for p in patterns)


def allows(documents: list[str], action: str, resource: str) -> bool:
    """True if some statement allows `action` on `resource` and none denies it."""
    allowed = False
    for document in documents:
        parsed = json.loads(document) if isinstance(document, str) else document
        statements = parsed.get("Statement", [])
        for statement in [statements] if isinstance(statements, dict) else statements:
            if not _matches(_as_list(statement.get("Action")), action, case_sensitive=False):
                continue
            if not _matches(_as_list(statement.get("Resource")), resource, case_sensitive=True):
                continue
            if statement.get("Effect") == "Deny":
                return False
            allowed = allowed or statement.get("Effect") == "Allow"
    return allowed


def _check_dead_letter(account: str, role_arn: str, dead_letter: Any) -> None:
    """The function's account's IAM decides: an execution role is the function's own."""
    if not isinstance(dead_letter, dict) or not dead_letter.get("TargetArn"):
        return
    target = str(dead_letter["TargetArn"])
    if not target.startswith("arn:aws:sqs:"):
        return  # SNS topics need sns:Publish; not used by this product
    try:
        role = iam_backends[account]["global"].get_role_by_arn(role_arn)
    except Exception:
        raise InvalidParameterValueException(NO_PERMISSION_MESSAGE) from None
    if not allows(_visible_documents(role), "sqs:SendMessage", target):
        raise InvalidParameterValueException(NO_PERMISSION_MESSAGE)


def _track(name: str) -> None:
    @wrap_method(IAMBackend, name)
    def tracked(original: Any, backend: Any, *args: Any, **kwargs: Any) -> Any:
        role_name = kwargs.get("role_name") or _role_name_argument(name, args)
        role = backend.get_role(role_name)
        before = _documents(role)
        result = original(backend, *args, **kwargs)
        _record(role, before)
        return result


def _role_name_argument(method: str, args: tuple[Any, ...]) -> str:
    # put_role_policy(role_name, ...), delete_role_policy(role_name, ...),
    # attach_role_policy(policy_arn, role_name), detach_role_policy(policy_arn, role_name)
    return str(args[1] if method in ("attach_role_policy", "detach_role_policy") else args[0])


def apply() -> None:
    for method in (
        "put_role_policy",
        "delete_role_policy",
        "attach_role_policy",
        "detach_role_policy",
    ):
        _track(method)

    @wrap_method(LambdaBackend, "create_function")
    def create(original: Any, backend: Any, spec: dict[str, Any]) -> Any:
        _check_dead_letter(
            backend.account_id, str(spec.get("Role", "")), spec.get("DeadLetterConfig")
        )
        return original(backend, spec)

    @wrap_method(LambdaBackend, "update_function_configuration")
    def update(original: Any, backend: Any, name: str, qualifier: Any, body: dict[str, Any]) -> Any:
        if body.get("DeadLetterConfig"):
            fn = backend.get_function(name, qualifier)
            role = str(body.get("Role") or fn.role)
            _check_dead_letter(backend.account_id, role, body["DeadLetterConfig"])
        return original(backend, name, qualifier, body)
