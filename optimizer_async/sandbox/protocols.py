"""Tell which AWS operation an HTTP request is, and answer with errors in each protocol's shape.

Requests are identified the way AWS's front end would: the SigV4 credential scope names the
service and region, its access key the account (as moto works it out; the caller remembers
it per key), and the service's wire protocol (from botocore's own model) names the
operation. Errors are rendered so that botocore parses them exactly as it parses AWS's.

A request's protocol is the one it speaks: recent SDKs talk JSON to CloudWatch (AWS JSON
1.0, `X-Amz-Target: GraniteServiceVersion20100801.<Operation>`) where older ones use the
query protocol; its errors then come back in JSON (`__type`), with the query code in
`x-amzn-query-error` as AWS sends it. The botocore models are loaded once per service.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

import botocore.session

from optimizer_async.sandbox.accounts import DEFAULT_ACCOUNT
from optimizer_async.sandbox.once import built_once

# SigV4 signing names that differ from botocore's service names.
_SIGNING_NAME_TO_SERVICE: Final = {"monitoring": "cloudwatch", "email": "ses"}
_CREDENTIAL_RE: Final = re.compile(r"Credential=([^/]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")
UNKNOWN: Final = "Unknown"
_JSON_CONTENT_TYPES: Final = ("application/x-amz-json-1.0", "application/x-amz-json-1.1")


@dataclass(frozen=True)
class CallId:
    """Which AWS call a request is."""

    service: str
    region: str
    operation: str
    protocol: str | None = None  # the wire protocol of this request (None: the model's)
    account: str = DEFAULT_ACCOUNT  # the account the signing key acts in


@dataclass(frozen=True)
class ErrorReply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class _Route:
    method: str
    path: re.Pattern[str]
    query: tuple[tuple[str, str | None], ...]  # required keys, with a value when fixed
    headers: tuple[str, ...]  # required headers, as WSGI environ keys (CopyObject vs PutObject)
    literal_chars: int
    current: bool  # not deprecated: PutBucketLifecycleConfiguration over PutBucketLifecycle
    operation: str


@built_once
def _service_model(service: str) -> Any | None:
    try:
        return botocore.session.get_session().get_service_model(service)
    except Exception:  # an unknown service is just not identified
        return None


def protocol_of(service: str) -> str | None:
    model = _service_model(service)
    return None if model is None else str(model.protocol)


def _required_headers(operation: Any) -> tuple[str, ...]:
    shape = operation.input_shape
    if shape is None:
        return ()
    return tuple(
        "HTTP_" + shape.members[name].serialization["name"].upper().replace("-", "_")
        for name in shape.required_members
        if shape.members[name].serialization.get("location") == "header"
    )


def _compile_route(operation: Any) -> _Route:
    method, request_uri = operation.http["method"], operation.http["requestUri"]
    path, _, query = request_uri.partition("?")
    pattern = ""
    for piece in re.split(r"(\{[^}]+\})", path.rstrip("/") or "/"):
        if piece.startswith("{"):
            pattern += ".+" if piece.endswith("+}") else "[^/]+"
        else:
            pattern += re.escape(piece)
    required: list[tuple[str, str | None]] = []
    for part in filter(None, query.split("&")):
        key, eq, value = part.partition("=")
        required.append((key, value if eq else None))
    literal = len(re.sub(r"\{[^}]+\}", "", path))
    return _Route(
        method,
        re.compile(pattern + "/?"),
        tuple(required),
        _required_headers(operation),
        literal,
        not operation.deprecated,
        operation.name,
    )


@built_once
def _rest_routes(service: str) -> dict[str, tuple[_Route, ...]]:
    """The service's routes by HTTP method, each method's in the model's order."""
    model = _service_model(service)
    if model is None:
        return {}
    routes = [_compile_route(model.operation_model(name)) for name in model.operation_names]
    by_method: dict[str, list[_Route]] = {}
    for route in routes:
        by_method.setdefault(route.method, []).append(route)
    return {method: tuple(found) for method, found in by_method.items()}


def _match_rest(service: str, environ: Mapping[str, Any], query: Mapping[str, list[str]]) -> str:
    """The most specific operation whose method, path, query keys and headers all match."""
    method = environ.get("REQUEST_METHOD", "GET")
    path = environ.get("PATH_INFO", "/") or "/"
    best: tuple[int, int, bool, str] | None = None
    for route in _rest_routes(service).get(method, ()):
        if not route.path.fullmatch(path):
            continue
        if not all(
            key in query and (value is None or value in query[key]) for key, value in route.query
        ):
            continue
        if not all(header in environ for header in route.headers):
            continue
        rank = (
            len(route.query) + len(route.headers),
            route.literal_chars,
            route.current,
            route.operation,
        )
        if best is None or rank[:3] > best[:3]:
            best = rank
    return best[3] if best else UNKNOWN


def credential_scope(authorization: str) -> tuple[str, str] | None:
    """(region, botocore service name) from a SigV4 Authorization header, if it has one."""
    match = _CREDENTIAL_RE.search(authorization)
    if match is None:
        return None
    _, region, signing_name = match.groups()
    return region, _SIGNING_NAME_TO_SERVICE.get(signing_name, signing_name)


def identify(
    environ: Mapping[str, Any], body: bytes, account_of: Callable[[str], str] | None = None
) -> CallId:
    """Service, region, operation and account of a WSGI request (body already read by the
    caller). `account_of` maps an access key to its account (default: every key is the
    default account's); moto's `x-moto-account-id` header overrides it, as in moto."""
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    auth = environ.get("HTTP_AUTHORIZATION", "")
    match = _CREDENTIAL_RE.search(auth) or _CREDENTIAL_RE.search(
        "Credential=" + query.get("X-Amz-Credential", [""])[0]
    )
    if match is None:
        return CallId(UNKNOWN, UNKNOWN, UNKNOWN)
    access_key, region, signing_name = match.groups()
    service = _SIGNING_NAME_TO_SERVICE.get(signing_name, signing_name)
    account = environ.get("HTTP_X_MOTO_ACCOUNT_ID") or (
        account_of(access_key) if account_of is not None else DEFAULT_ACCOUNT
    )

    target = environ.get("HTTP_X_AMZ_TARGET", "")
    protocol = protocol_of(service)
    if target:
        content_type = environ.get("CONTENT_TYPE", "")
        spoken = "json" if content_type.startswith(_JSON_CONTENT_TYPES) else protocol
        return CallId(service, region, target.rsplit(".", 1)[-1], spoken, account)
    if protocol in ("query", "ec2"):
        action = query.get("Action") or parse_qs(body.decode("utf-8", "replace")).get("Action")
        return CallId(service, region, action[0] if action else UNKNOWN, None, account)
    if protocol in ("rest-json", "rest-xml"):
        return CallId(service, region, _match_rest(service, environ, query), None, account)
    return CallId(service, region, UNKNOWN, None, account)


# --- errors in each protocol's shape ----------------------------------------------------------

# (HTTP status, error code) AWS uses for "you are calling too fast", per service.
_THROTTLE: Final = {
    "lambda": (429, "TooManyRequestsException"),
    "cloudwatch": (400, "Throttling"),
    "iam": (400, "Throttling"),
    "sts": (400, "Throttling"),
    "logs": (400, "ThrottlingException"),
    "secretsmanager": (400, "ThrottlingException"),
    "sqs": (400, "RequestThrottled"),
    "s3": (503, "SlowDown"),
}
_SERVER_ERROR: Final = {"lambda": "ServiceException", "s3": "InternalError"}
_UNAVAILABLE: Final = {"lambda": "ServiceUnavailableException", "s3": "ServiceUnavailable"}


def throttle_error(service: str, protocol: str | None = None) -> ErrorReply:
    status, code = _THROTTLE.get(service, (400, "ThrottlingException"))
    return render_error(service, status, code, "Rate exceeded", protocol)


def internal_error(service: str, protocol: str | None = None) -> ErrorReply:
    code = _SERVER_ERROR.get(service, "InternalFailure")
    message = "We encountered an internal error. Please try again."
    return render_error(service, 500, code, message, protocol)


def unavailable_error(service: str, protocol: str | None = None) -> ErrorReply:
    code = _UNAVAILABLE.get(service, "ServiceUnavailable")
    message = "Service is unavailable. Please try again later."
    return render_error(service, 503, code, message, protocol)


def render_error(
    service: str, status: int, code: str, message: str, protocol: str | None = None
) -> ErrorReply:
    """An error body and headers as the service's protocol (or the request's) carries them."""
    request_id = str(uuid.uuid4())
    model_protocol = protocol_of(service)
    protocol = protocol or model_protocol
    headers = [("x-amzn-RequestId", request_id)]
    if protocol == "rest-json":
        headers += [("Content-Type", "application/json"), ("x-amzn-ErrorType", code)]
        payload: dict[str, Any] = {"Type": "User" if status < 500 else "Service"}
        payload["message"] = message
        if code == "TooManyRequestsException":
            payload["Reason"] = "CallerRateLimitExceeded"
        return ErrorReply(status, headers, json.dumps(payload).encode())
    if protocol == "json":
        model = _service_model(service)
        version = model.metadata.get("jsonVersion", "1.0") if model is not None else "1.1"
        headers.append(("Content-Type", f"application/x-amz-json-{version}"))
        if model_protocol == "query":  # AWS's query-compatible JSON: the query code too
            kind = "Sender" if status < 500 else "Receiver"
            headers.append(("x-amzn-query-error", f"{code};{kind}"))
        body = json.dumps({"__type": code, "message": message}).encode()
        return ErrorReply(status, headers, body)
    if protocol == "rest-xml":
        headers.append(("Content-Type", "application/xml"))
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>'
            f"{escape(code)}</Code><Message>{escape(message)}</Message>"
            f"<RequestId>{request_id}</RequestId></Error>"
        )
        return ErrorReply(status, headers, xml.encode())
    # query protocol (CloudWatch, IAM, STS) and anything unknown
    headers.append(("Content-Type", "text/xml"))
    kind = "Sender" if status < 500 else "Receiver"
    xml = (
        f"<ErrorResponse><Error><Type>{kind}</Type><Code>{escape(code)}</Code>"
        f"<Message>{escape(message)}</Message></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    )
    return ErrorReply(status, headers, xml.encode())


def error_code_of(protocol: str | None, headers: Mapping[str, str], body: bytes) -> str:
    """The AWS error code in an error response (for the stats), or 'Unknown'."""
    header = headers.get("x-amzn-errortype")
    if header:
        return header.split(":", 1)[0]
    text = body[:4096].decode("utf-8", "replace")
    if protocol in ("json", "rest-json"):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            code = parsed.get("__type") or parsed.get("code") or parsed.get("Code")
            if isinstance(code, str):
                return code.rsplit("#", 1)[-1]
    match = re.search(r"<Code>([^<]+)</Code>", text)
    return match.group(1) if match else UNKNOWN
