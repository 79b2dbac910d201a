"""WSGI middleware in front of moto: AWS's quotas, latency and faults, call counting, control API.

Per request, in this order: identify the call; throttle it if its quota bucket is empty
(in the service's own error shape; a bucket is the signing account's, in the request's
region, as AWS's quotas are); maybe inject a fault; add the call's latency; answer
from a sandbox handler (operations moto lacks; authorised first, as moto authorises its
own) or from moto; count the outcome. moto's answer is read whole before it is sent: an
exception anywhere inside (moto's or a patch's), or a server error no AWS client could
parse (an HTML page), goes out as the service's internal error in its protocol's shape
(500 InternalFailure; Lambda's ServiceException, S3's InternalError), counted as such. Quotas and
waits run on the runtime's clock, so tests can put them on virtual time.

Control endpoints (not AWS calls, never counted):
  GET  /_sandbox/health              liveness for scripts and compose health checks
  GET  /_sandbox/stats[?account=ID]  call counts as JSON: {"total", "writes", "by_outcome",
                                     "calls", "by_account": {ID: {"total", "writes",
                                     "by_outcome", "by_region": {R: {"total",
                                     "throttled"}}}}}; with an account, its counts only
                                     (without "by_account")
  POST /_sandbox/stats/reset         zero the counts
  GET  /_sandbox/config              the current configuration
  PUT  /_sandbox/config              change it (JSON object of SandboxConfig fields;
                                     "quotas": [[bucket, rate], ...] raises AWS quotas)
  POST /_sandbox/reset               forget every AWS resource and count
  PUT  /_sandbox/logs/stored-bytes   {"region", "logGroupName", "storedBytes", "account"?}:
                                     what AWS would measure for a log group (moto cannot)
  PUT  /_sandbox/workload            {"region", "functionName", "profile", "account"?}: give
                                     a function a named workload profile (its metrics and
                                     REPORT lines then come from the model, under its
                                     configuration)
  GET  /_sandbox/workload/outcomes?region=R&start=ISO&end=ISO[&account=ID]
                                     per modelled function, what that window did under its
                                     configuration history: {"fn": {"invocations", "errors",
                                     "outOfMemory", "timeouts", "throttles", "memoryMb",
                                     "timeoutS", "reservedConcurrency"}}
  GET  /_sandbox/workload?region=R[&account=ID]
                                     {"fn": "profile name"} for the region's modelled functions
  GET  /_sandbox/workload/now        {"now": ISO}: the model's current UTC time
  POST /_sandbox/accounts            {"account", "roleName", "trustedAccount"?, "externalId"?}:
                                     an organisation member, its role assumable by the
                                     trusted account (with the external id): {"roleArn"}

"account" is a 12-digit id; left out, it is the default account (123456789012), the one
the sandbox's own credentials act in. Bad input is a 400 with the reason.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import socket
import struct
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, Final
from urllib.parse import parse_qs

from optimizer_async.aws.quotas import bucket_for
from optimizer_async.sandbox import protocols
from optimizer_async.sandbox.accounts import DEFAULT_ACCOUNT, checked_account
from optimizer_async.sandbox.config import AFTER_COMMIT_KINDS, SandboxConfig
from optimizer_async.sandbox.protocols import CallId, ErrorReply
from optimizer_async.sandbox.runtime import SandboxRuntime
from optimizer_async.sandbox.stats import CallStats

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
# A sandbox-implemented operation: (call, request body) -> (status, headers, body).
OperationHandler = Callable[[CallId, bytes], tuple[int, list[tuple[str, str]], bytes]]
# Authorises a sandbox-answered call: (call, WSGI environ, body) -> the error, if denied.
Authorize = Callable[[CallId, dict[str, Any], bytes], ErrorReply | None]
# Gives a function a named workload profile: (account, region, function name, profile name).
AttachWorkload = Callable[[str, str, str, str], object]
# Stands up a member account: (account, role name, trusted account, external id) -> role ARN.
AddAccount = Callable[[str, str, str, str | None], str]

_CONTROL_PREFIX: Final = "/_sandbox/"
_UNSHAPED: Final = "error:" + protocols.UNKNOWN  # an error no AWS client could parse
log = logging.getLogger(__name__)


class ShapingApp:
    """Wraps moto's WSGI app; see the module docstring for what it adds."""

    def __init__(
        self,
        moto_app: WsgiApp,
        runtime: SandboxRuntime,
        handlers: dict[tuple[str, str], OperationHandler],
        reset: Callable[[], None],
        attach_workload: AttachWorkload,
        add_account: AddAccount,
        authorize: Authorize | None = None,
    ) -> None:
        self._moto = moto_app
        self._authorize = authorize
        self._runtime = runtime
        self._handlers = handlers
        self._reset = reset
        self._attach_workload = attach_workload
        self._add_account = add_account

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith(_CONTROL_PREFIX):
            return self._control(environ, start_response, path[len(_CONTROL_PREFIX) :])
        body = _read_body(environ)
        call = protocols.identify(environ, body, self._runtime.accounts.of)
        if call.service == protocols.UNKNOWN:  # moto's own API, CORS preflight, ...
            return self._moto(environ, start_response)
        return self._serve(call, body, environ, start_response)

    def _serve(
        self, call: CallId, body: bytes, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        runtime, stats = self._runtime, self._runtime.stats
        config = runtime.config
        bucket = bucket_for(call.service, call.operation)
        if (
            config.rate_limits
            and bucket is not None
            and not runtime.allow(call.account, call.region, bucket)
        ):
            _record(stats, call, "throttled")
            return _reply(start_response, protocols.throttle_error(call.service, call.protocol))

        fault = runtime.pick_fault()
        if fault in AFTER_COMMIT_KINDS:
            return self._lost_after_commit(call, body, environ, start_response, fault)
        if fault is not None:
            _record(stats, call, f"fault:{fault}")
            if fault == "throttle":
                return _reply(start_response, protocols.throttle_error(call.service, call.protocol))
            if fault == "internal_error":
                return _reply(start_response, protocols.internal_error(call.service, call.protocol))
            if fault == "unavailable":
                return _reply(
                    start_response, protocols.unavailable_error(call.service, call.protocol)
                )
            if fault == "connection_reset":
                _reset_connection(environ)
            late = config.scaled(config.slow_response_s)  # "slow": late but correct
            if late:
                runtime.clock.sleep(late)

        delay = runtime.latency_s()
        if delay:
            runtime.clock.sleep(delay)

        handler = self._handlers.get((call.service, call.operation))
        if handler is not None:
            denied = self._authorize(call, environ, body) if self._authorize else None
            if denied is not None:
                status, headers, payload = denied.status, denied.headers, denied.body
            else:
                status, headers, payload = self._call_handler(handler, call, body)
            if fault is None:
                _record(stats, call, _outcome(call, status, headers, payload))
            start_response(_status_line(status), headers)
            return [payload]

        status, headers, payload = self._call_moto(call, environ)
        if fault is None:
            _record(stats, call, _outcome(call, status, headers, payload))
        start_response(_status_line(status), headers)
        return [payload]

    def _call_moto(
        self, call: CallId, environ: dict[str, Any]
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """moto's whole answer; any exception (moto's or a patch's), or a server error that
        is not in the protocol's shape, becomes AWS's internal error instead."""
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
            captured["status"], captured["headers"] = int(status.split()[0]), list(headers)
            return lambda data: None  # moto never writes through it

        payload = b""
        try:
            payload = b"".join(self._moto(environ, capture))
        except Exception as raised:
            _could_not_serve(call, "moto", raised)
            captured.clear()
        status: int | None = captured.get("status")
        if status is not None and (
            status < 500 or _outcome(call, status, captured["headers"], payload) != _UNSHAPED
        ):
            return status, captured["headers"], payload
        if status is not None:
            log.error(
                "sandbox: moto could not serve %s.%s: it answered %s outside the service's "
                "error shape (sent as the service's internal error)",
                call.service,
                call.operation,
                status,
            )
        error = protocols.internal_error(call.service, call.protocol)
        return error.status, error.headers, error.body

    @staticmethod
    def _call_handler(
        handler: OperationHandler, call: CallId, body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """One of the sandbox's own operations; its exception is the service's 500."""
        try:
            return handler(call, body)
        except Exception as raised:
            _could_not_serve(call, "the sandbox", raised)
            error = protocols.internal_error(call.service, call.protocol)
            return error.status, error.headers, error.body

    def _lost_after_commit(
        self,
        call: CallId,
        body: bytes,
        environ: dict[str, Any],
        start_response: StartResponse,
        fault: str,
    ) -> Iterable[bytes]:
        """Serve the call whole (a write is applied), then lose its answer. Authorised as
        any call (moto authorises its own; the sandbox's handlers here)."""
        _record(self._runtime.stats, call, f"fault:{fault}")
        handler = self._handlers.get((call.service, call.operation))
        if handler is not None:
            denied = self._authorize(call, environ, body) if self._authorize else None
            if denied is not None:
                start_response(_status_line(denied.status), denied.headers)
                return [denied.body]
            self._call_handler(handler, call, body)
        else:
            self._call_moto(call, environ)  # applied, answer dropped
        if fault == "reset_after_commit":
            _reset_connection(environ)
        return _reply(start_response, protocols.internal_error(call.service, call.protocol))

    # --- control API ---------------------------------------------------------------------

    def _control(
        self, environ: dict[str, Any], start_response: StartResponse, route: str
    ) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        runtime = self._runtime
        try:
            if (method, route) == ("GET", "health"):
                return _json(start_response, {"status": "ok"})
            if (method, route) == ("GET", "stats"):
                asked = parse_qs(environ.get("QUERY_STRING", "")).get("account")
                chosen = checked_account(asked[0]) if asked else None
                return _json(start_response, runtime.stats.snapshot(chosen))
            if (method, route) == ("POST", "stats/reset"):
                runtime.stats.reset()
                return _json(start_response, {"reset": "stats"})
            if (method, route) == ("GET", "config"):
                return _json(start_response, dataclasses.asdict(runtime.config))
            if (method, route) == ("PUT", "config"):
                changes = json.loads(_read_body(environ) or b"{}")
                merged = {**dataclasses.asdict(runtime.config), **changes}
                runtime.configure(config_from_json(merged))
                return _json(start_response, dataclasses.asdict(runtime.config))
            if (method, route) == ("POST", "reset"):
                self._reset()
                return _json(start_response, {"reset": "all"})
            if (method, route) == ("PUT", "logs/stored-bytes"):
                spec = json.loads(_read_body(environ))
                key = (_account_in(spec), str(spec["region"]), str(spec["logGroupName"]))
                runtime.stored_bytes[key] = int(spec["storedBytes"])
                return _json(start_response, {"storedBytes": runtime.stored_bytes[key]})
            if (method, route) == ("PUT", "workload"):
                spec = json.loads(_read_body(environ))
                region, function, profile = (
                    str(spec["region"]),
                    str(spec["functionName"]),
                    str(spec["profile"]),
                )
                account = _account_in(spec)
                self._attach_workload(account, region, function, profile)
                return _json(
                    start_response,
                    {
                        "account": account,
                        "region": region,
                        "functionName": function,
                        "profile": profile,
                    },
                )
            if (method, route) == ("GET", "workload/outcomes"):
                query = parse_qs(environ.get("QUERY_STRING", ""))
                region = query["region"][0]
                start, end = parse_time(query["start"][0]), parse_time(query["end"][0])
                outcomes = runtime.workload.outcomes(_account_in(query), region, start, end)
                return _json(
                    start_response, {name: found.to_json() for name, found in outcomes.items()}
                )
            if (method, route) == ("GET", "workload"):
                query = parse_qs(environ.get("QUERY_STRING", ""))
                models = runtime.workload.functions(_account_in(query), query["region"][0])
                return _json(start_response, {m.function_name: m.profile.name for m in models})
            if (method, route) == ("GET", "workload/now"):
                return _json(start_response, {"now": runtime.model_time().isoformat()})
            if (method, route) == ("POST", "accounts"):
                spec = json.loads(_read_body(environ) or b"{}")
                if not isinstance(spec, dict):
                    raise ValueError("expected a JSON object")
                role_name, external_id = spec.get("roleName"), spec.get("externalId")
                if not isinstance(role_name, str):
                    raise ValueError(f"roleName must be a role name, not {role_name!r}")
                if external_id is not None and not isinstance(external_id, str):
                    raise ValueError("externalId must be a string")  # never echoed
                role_arn = self._add_account(
                    checked_account(spec.get("account")),
                    role_name,
                    checked_account(spec.get("trustedAccount", DEFAULT_ACCOUNT), "trustedAccount"),
                    external_id,
                )
                return _json(start_response, {"roleArn": role_arn})
        except (ValueError, TypeError, KeyError) as error:
            return _json(start_response, {"error": str(error)}, status=400)
        return _json(
            start_response, {"error": f"no control endpoint {method} /_sandbox/{route}"}, 404
        )


def _could_not_serve(call: CallId, server: str, error: BaseException) -> None:
    """One line per call AWS would have answered and the sandbox could not (the traceback
    at debug level): an input valid for AWS that ends in a 500 is a gap to close."""
    log.error(
        "sandbox: %s could not serve %s.%s: %s: %s (sent as the service's internal error)",
        server,
        call.service,
        call.operation,
        type(error).__name__,
        error,
    )
    log.debug("sandbox: the traceback", exc_info=error)


def _record(stats: CallStats, call: CallId, outcome: str) -> None:
    stats.record(call.service, call.operation, outcome, account=call.account, region=call.region)


def _account_in(payload: dict[str, Any]) -> str:
    """The account a control payload or query names (a query's values are lists)."""
    value = payload.get("account", DEFAULT_ACCOUNT)
    if isinstance(value, list):
        value = value[0] if value else None
    return checked_account(value)


def _read_body(environ: dict[str, Any]) -> bytes:
    """Read the request body once and put it back for moto."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def _reset_connection(environ: dict[str, Any]) -> None:
    """Drop the connection with no response, as a dying load balancer would."""
    sock = environ.get("werkzeug.socket")
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RDWR)
    raise ConnectionResetError("sandbox fault: connection reset")


def _outcome(call: CallId, status: int, headers: list[tuple[str, str]], body: bytes) -> str:
    if status < 400:
        return "ok"
    lowered = {name.lower(): value for name, value in headers}
    protocol = call.protocol or protocols.protocol_of(call.service)
    return "error:" + protocols.error_code_of(protocol, lowered, body)


def _status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def _reply(start_response: StartResponse, error: ErrorReply) -> Iterable[bytes]:
    start_response(_status_line(error.status), error.headers)
    return [error.body]


def _json(start_response: StartResponse, payload: Any, status: int = 200) -> Iterable[bytes]:
    body = json.dumps(payload, default=str).encode()
    start_response(
        _status_line(status),
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]


def parse_time(text: str) -> datetime:
    """An ISO 8601 time; one without a zone is UTC."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def config_from_json(payload: dict[str, Any]) -> SandboxConfig:
    """Rebuild a SandboxConfig from its JSON form (the inverse of GET /_sandbox/config)."""
    if "fault_kinds" in payload:
        payload = {**payload, "fault_kinds": tuple(payload["fault_kinds"])}
    if "quotas" in payload:  # [[bucket, rate], ...]
        payload = {**payload, "quotas": tuple(tuple(pair) for pair in payload["quotas"])}
    return SandboxConfig(**payload)
