"""IAM authorisation of every request against its signer's policies, when switched on.

moto 5.2.5 can authorise requests: once `moto.settings.INITIAL_NO_AUTH_ACTION_COUNT`
requests have passed (a module attribute read on every request, taken from the environment
variable of that name when moto is imported; infinite by default), each request is checked
against the IAM policies of the user whose access key signed it. Its evaluator is too weak
to prove a least-privilege policy, though:

- the resource: only SQS, IAM and STS name one; Lambda, Logs, CloudWatch and Secrets
  Manager are checked against `*`, which no statement scoped to an ARN matches. SQS and IAM
  fall back to `*` for a queue or role that does not exist yet (CreateQueue, GetQueueUrl);
- the action: CloudWatch signs as `monitoring`, so moto asks for `monitoring:...`;
- wildcards: policy patterns become regular expressions unescaped: `?` (Secrets Manager's
  six random characters, `-??????`) is a regex error, `.` matches anything;
- the signature of a Lambda GET is computed over the parsed parameters, never matching;
- no request needs more than one permission (AWS: tag-on-create needs the tagging action);
- denials are XML whatever the protocol, so botocore reads a JSON service's code as `403`.

With `SandboxConfig.iam_enforcement` on, this patch authorises instead: the signature over
the raw body, then every (action, resource ARN) the request needs as AWS's service
authorization reference has it, each through moto's own policy evaluation (Allow, explicit
Deny, no Condition support) with IAM's wildcard semantics. It also stands in for AWS where
an answer depends on a permission: GetFunction returns Tags only to a caller allowed
`lambda:ListTags` (otherwise `TagsError`). Operations the sandbox answers itself
(GetAccountSettings) are authorised through `authorize_call`. Off, moto behaves as before.

CloudWatch Logs resources: AWS's denials name a log group as `log-group:NAME` for most
actions and as `log-group:NAME:log-stream:` for some (CreateLogGroup; DescribeLogGroups as
`log-group::log-stream:`, whichever groups it asks for). A log group action here must be
allowed for both forms, so a policy that works here works whichever form AWS evaluates.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any, Final
from urllib.parse import unquote, urlsplit

from botocore.awsrequest import AWSRequest
from moto.awslambda.responses import LambdaResponse
from moto.core.authorization import ActionAuthenticatorMixin
from moto.core.exceptions import JsonRESTError, _RESTError
from moto.iam.access_control import (
    IAMPolicy,
    IAMPolicyStatement,
    IAMRequest,
    PermissionResult,
)
from moto.secretsmanager.models import secretsmanager_backends
from werkzeug.datastructures import EnvironHeaders
from werkzeug.exceptions import HTTPException

from optimizer_async.aws.operations import iam_action
from optimizer_async.sandbox import protocols, runtime
from optimizer_async.sandbox.patches._patching import wrap_method
from optimizer_async.sandbox.protocols import CallId, ErrorReply

Check = tuple[str, str]  # (IAM action, resource ARN or "*")

# AWS's error code and HTTP status for a denied request, per service (JSON protocols carry
# it in the body; the query protocol's services answer AccessDenied, 403).
_DENIED: Final[Mapping[str, tuple[int, str]]] = {
    "lambda": (403, "AccessDeniedException"),
    "logs": (400, "AccessDeniedException"),
    "secretsmanager": (400, "AccessDeniedException"),
    "sqs": (403, "AccessDenied"),
}
_FUNCTION_PATH: Final = re.compile(r"/functions/([^/]+)")
_TAGS_PATH: Final = re.compile(r"/tags/(.+)$")
_TAGS_DENIED: Final = "_sandbox_tags_denied"


def enforcing() -> bool:
    return runtime.current().config.iam_enforcement


# --- IAM's wildcard matching --------------------------------------------------------------


def iam_pattern(pattern: str, *, case_sensitive: bool = True) -> re.Pattern[str]:
    """An IAM Action/Resource pattern as a regex: `*` any run, `?` one character."""
    parts = ("." if char == "?" else ".*" if char == "*" else re.escape(char) for char in pattern)
    return re.compile("".join(parts), re.DOTALL | (0 if case_sensitive else re.IGNORECASE))


def matches(patterns: Any, value: str, *, case_sensitive: bool = True) -> bool:
    """Whether a statement's element (one pattern or a list) matches `value`."""
    listed = [patterns] if isinstance(patterns, str) else list(patterns or [])
    return any(iam_pattern(str(p), case_sensitive=case_sensitive).fullmatch(value) for p in listed)


# --- what a request needs -----------------------------------------------------------------


class _Arns:
    def __init__(self, partition: str, region: str, account: str) -> None:
        self.partition, self.region, self.account = partition, region, account

    def regional(self, service: str, resource: str) -> str:
        return f"arn:{self.partition}:{service}:{self.region}:{self.account}:{resource}"

    def function(self, name: str) -> str:
        return name if name.startswith("arn:") else self.regional("lambda", f"function:{name}")

    def log_group(self, name: str) -> tuple[str, str]:
        """Both forms AWS is seen to evaluate for a log group (see the module docstring)."""
        if name.startswith("arn:"):
            name = name.split(":log-group:", 1)[-1].removesuffix(":*")
        base = self.regional("logs", f"log-group:{name}")
        return (base, f"{base}:log-stream:")

    def alarm(self, name: str) -> str:
        return self.regional("cloudwatch", f"alarm:{name}")

    def queue(self, name: str) -> str:
        return self.regional("sqs", name)


def _param(response: Any, name: str) -> Any:
    try:
        return response._get_param(name)
    except Exception:  # a parameter the operation does not have, or an unparsable body
        return None


def _names(value: Any) -> list[str]:
    if not value:
        return []
    return [str(item) for item in value] if isinstance(value, (list, tuple)) else [str(value)]


def _lambda(response: Any, operation: str, arns: _Arns) -> Iterator[Check]:
    action = f"lambda:{operation}"
    path = unquote(urlsplit(str(response.uri)).path)
    tagged = _TAGS_PATH.search(path)
    named = _FUNCTION_PATH.search(path)
    if tagged:
        yield (action, tagged.group(1))
    elif named:
        arn = arns.function(named.group(1))
        qualifier = _param(response, "Qualifier")
        yield (action, f"{arn}:{qualifier}" if qualifier else arn)
        if operation in ("CreateFunction", "UpdateFunctionConfiguration"):
            role = _body(response).get("Role")
            if role:  # handing a role to Lambda is passing it
                yield ("iam:PassRole", str(role))
    else:
        yield (action, "*")


def _body(response: Any) -> Mapping[str, Any]:
    try:
        parsed = json.loads(response.raw_body or b"{}")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, Mapping) else {}


def _logs(response: Any, operation: str, arns: _Arns) -> Iterator[Check]:
    action = f"logs:{operation}"
    if operation == "DescribeLogGroups":
        yield (action, arns.regional("logs", "log-group::log-stream:"))
        return
    if operation in ("TagResource", "UntagResource", "ListTagsForResource"):
        yield (action, str(_param(response, "resourceArn") or "*"))
        return
    groups = [
        *_names(_param(response, "logGroupName")),
        *_names(_param(response, "logGroupIdentifier")),
        *_names(_param(response, "logGroupNames")),
        *_names(_param(response, "logGroupIdentifiers")),
    ]
    if not groups:
        yield (action, "*")  # GetQueryResults, StopQuery, DescribeQueries: no resource
        return
    for group in dict.fromkeys(groups):
        for arn in arns.log_group(group):
            yield (action, arn)
            if operation == "CreateLogGroup" and _param(response, "tags"):
                yield ("logs:TagResource", arn)


def _cloudwatch(response: Any, operation: str, arns: _Arns) -> Iterator[Check]:
    action = f"cloudwatch:{operation}"
    if operation == "PutMetricAlarm":
        alarm = arns.alarm(str(_param(response, "AlarmName")))
        yield (action, alarm)
        if _param(response, "Tags"):
            yield ("cloudwatch:TagResource", alarm)
    elif operation in ("DescribeAlarms", "DeleteAlarms", "DescribeAlarmHistory"):
        names = _names(_param(response, "AlarmNames")) or _names(_param(response, "AlarmName"))
        for name in names or ["*"]:
            yield (action, arns.alarm(name))
    elif operation in ("TagResource", "UntagResource", "ListTagsForResource"):
        yield (action, str(_param(response, "ResourceARN") or "*"))
    else:
        yield (action, "*")  # GetMetricData, GetMetricStatistics, PutMetricData, ListMetrics


def _secretsmanager(response: Any, operation: str, arns: _Arns) -> Iterator[Check]:
    secret = _param(response, "SecretId")
    if not secret:
        yield (f"secretsmanager:{operation}", "*")
        return
    secret = str(secret)
    if not secret.startswith("arn:"):
        backend = secretsmanager_backends[arns.account][arns.region]
        try:
            secret = str(backend.secrets[secret].arn)
        except Exception:  # not there: the name alone, as no policy's `-??????` matches
            secret = arns.regional("secretsmanager", f"secret:{secret}")
    yield (f"secretsmanager:{operation}", secret)


def _sqs(response: Any, operation: str, arns: _Arns) -> Iterator[Check]:
    url = _param(response, "QueueUrl")
    name = str(url).rstrip("/").rsplit("/", 1)[-1] if url else _param(response, "QueueName")
    if not name:
        yield (f"sqs:{operation}", "*")
        return
    queue = arns.queue(str(name))
    yield (f"sqs:{operation}", queue)
    if operation == "CreateQueue" and _param(response, "tags"):
        yield ("sqs:TagQueue", queue)


def _iam(response: Any, operation: str, arns: _Arns) -> Iterator[Check]:
    action = f"iam:{operation}"
    role = _param(response, "RoleName")
    if role:
        try:  # the role's ARN carries its path
            yield (action, str(response.backend.get_role(str(role)).arn))
        except Exception:
            yield (action, f"arn:{arns.partition}:iam::{arns.account}:role/{role}")
        return
    user = _param(response, "UserName")
    if user:
        yield (action, f"arn:{arns.partition}:iam::{arns.account}:user/{user}")
        return
    yield (action, str(_param(response, "PolicyArn") or "*"))


_NEEDS: Final = {
    "lambda": _lambda,
    "logs": _logs,
    "cloudwatch": _cloudwatch,
    "secretsmanager": _secretsmanager,
    "sqs": _sqs,
    "iam": _iam,
}


def needed(response: Any, service: str, operation: str) -> list[Check] | None:
    """Every (action, resource) the request needs; None for services not modelled here."""
    needs = _NEEDS.get(service)
    if needs is None:
        return None
    if iam_action(service, operation) is None:
        return []
    arns = _Arns(str(response.partition), str(response.region), str(response.current_account))
    return list(dict.fromkeys(needs(response, operation, arns)))


# --- evaluation ---------------------------------------------------------------------------


def permitted(iam_request: Any, action: str, resource: str) -> bool:
    """Whether the signer's policies allow `action` on `resource` (an explicit Deny wins)."""
    allowed = False
    for policy in iam_request._access_key.collect_policies():
        result = IAMPolicy(policy).is_action_permitted(action, resource)
        if result == PermissionResult.DENIED:
            return False
        allowed = allowed or result == PermissionResult.PERMITTED
    return allowed


def _check_signature(
    iam_request: Any, method: str, path: str, body: bytes | Mapping[str, Any]
) -> None:
    """moto's signature check, over the raw body (moto signs a GET's parsed parameters)."""
    headers = iam_request._headers
    authorization = headers["Authorization"]
    signed = iam_request._get_string_between("SignedHeaders=", ",", authorization).split(";")
    request = AWSRequest(
        method=method,
        url=path,
        data=body,
        headers=iam_request._create_headers_for_aws_request(signed, headers),
    )
    request.context["timestamp"] = headers["X-Amz-Date"]
    auth = iam_request._create_auth(iam_request._access_key.create_credentials())
    canonical = auth.canonical_request(request)
    expected = auth.signature(auth.string_to_sign(request, canonical), request)
    given = iam_request._get_string_between("Signature=", ",", authorization)
    if given != expected:
        iam_request._raise_signature_does_not_match()


def _denied(service: str, principal: str, action: str, resource: str) -> HTTPException:
    status, code = _DENIED.get(service, (403, "AccessDenied"))
    message = (
        f"User: {principal} is not authorized to perform: {action} on resource: {resource} "
        f"because no identity-based policy allows the {action} action"
    )
    return _shaped(service, status, code, message)


def _shaped(service: str, status: int, code: str, message: str) -> HTTPException:
    """An error in the service's own shape (moto renders every one as XML)."""
    error: _RESTError
    if protocols.protocol_of(service) in ("json", "rest-json"):
        error = JsonRESTError(code, message)
    else:
        error = _RESTError(code, message)
    error.code = status
    return error


def _reshape(service: str, error: HTTPException) -> HTTPException:
    """moto's signature / key errors, in the service's shape."""
    code = str(getattr(error, "error_type", "AccessDenied"))
    message = str(getattr(error, "message", error.description))
    return _shaped(service, int(error.code or 403), code, message)


def _authorize(response: Any, iam_request_cls: type, resource: str) -> None:
    scope = protocols.credential_scope(str(response.headers.get("Authorization", "")))
    service = scope[1] if scope else str(response.service_name)
    operation = str(response._get_action())
    path = str(response.raw_path)
    query = urlsplit(str(response.uri)).query
    if query:
        path += "?" + query
    # The signed payload: the raw body, or the form moto parsed it into (query protocol).
    body: bytes | dict[str, Any] = response.raw_body or dict(response.form_data.items())
    try:
        iam_request = iam_request_cls(
            account_id=response.current_account,
            method=response.method,
            path=path,
            data=response.data,
            body=body,
            headers=response.headers,
            action=operation,
        )
        _check_signature(iam_request, str(response.method), path, body)
    except HTTPException as error:
        if service == "s3":
            raise
        raise _reshape(service, error) from None
    checks = None if service == "s3" else needed(response, service, operation)
    if checks is None:  # not modelled (S3, STS): moto's own check, under IAM's prefix
        if service != "s3":
            iam_request._action = f"{service}:{operation}"
        try:
            iam_request.check_action_permitted(resource)
        except HTTPException as error:
            if service == "s3":
                raise
            raise _reshape(service, error) from None
        return
    for action, arn in checks:
        if not permitted(iam_request, action, arn):
            raise _denied(service, iam_request._access_key.arn, action, arn)
    if (service, operation) == ("lambda", "GetFunction") and checks:
        arn = checks[0][1]
        if not permitted(iam_request, "lambda:ListTags", arn):
            setattr(response, _TAGS_DENIED, _denied(service, "", "lambda:ListTags", arn))


# --- operations the sandbox answers itself ------------------------------------------------


class _CallRequest:
    """What moto's authoriser reads of a response object, for a sandbox-answered call."""

    def __init__(self, call: CallId, environ: Mapping[str, Any], body: bytes) -> None:
        self.headers = EnvironHeaders(dict(environ))
        self.method = str(environ.get("REQUEST_METHOD", "GET"))
        self.raw_path = str(environ.get("PATH_INFO", "/"))
        query = str(environ.get("QUERY_STRING", ""))
        self.uri = self.raw_path + (f"?{query}" if query else "")
        self.raw_body = body
        self.form_data: dict[str, Any] = {}
        self.data: dict[str, Any] = {}
        self.region = call.region
        self.partition = "aws"
        self.service_name = call.service
        self._operation = call.operation
        self.current_account = call.account  # the signing key's, as moto would find it

    def _get_action(self) -> str:
        return self._operation

    def _get_param(self, name: str) -> Any:
        return None


def authorize_call(call: CallId, environ: Mapping[str, Any], body: bytes) -> ErrorReply | None:
    """Authorise an operation the sandbox answers itself; the error to answer, if denied."""
    if not enforcing():
        return None
    try:
        _authorize(_CallRequest(call, environ, body), IAMRequest, "*")
    except HTTPException as error:
        payload = str(error.description).encode()
        kind = "application/json" if payload.startswith(b"{") else "text/xml"
        headers = [("Content-Type", kind)]
        code = str(getattr(error, "error_type", ""))
        if code:
            headers.append(("x-amzn-ErrorType", code))
        return ErrorReply(int(error.code or 403), headers, payload)
    return None


# --- installing ---------------------------------------------------------------------------


def apply() -> None:
    @wrap_method(ActionAuthenticatorMixin, "_authenticate_and_authorize_action")
    def authorize(original: Any, response: Any, iam_request_cls: type, resource: str = "*") -> None:
        if not enforcing():
            original(response, iam_request_cls, resource)
            return
        if response.headers.get("X-Amz-Target") in ActionAuthenticatorMixin.PUBLIC_OPERATIONS:
            return
        _authorize(response, iam_request_cls, resource)

    @wrap_method(IAMPolicyStatement, "_check_element_matches")
    def element_matches(original: Any, statement: Any, element: str, value: str) -> bool:
        """IAM's wildcards; actions match whatever their case, resources exactly."""
        insensitive = element in ("Action", "NotAction")
        return matches(statement._statement[element], value, case_sensitive=not insensitive)

    @wrap_method(LambdaResponse, "get_function")
    def get_function(original: Any, response: Any) -> Any:
        answer = original(response)
        denied = getattr(response, _TAGS_DENIED, None)
        if denied is None or not isinstance(answer, str):
            return answer
        found = json.loads(answer)
        found.pop("Tags", None)
        found["TagsError"] = {
            "ErrorCode": "AccessDeniedException",
            "Message": json.loads(denied.description)["message"],
        }
        return json.dumps(found)
