"""The service's HTTP API (Starlette): probes, metrics, run requests and their reports.

    GET  /healthz        live: the process answers (no token)
    GET  /readyz         ready: AWS answers GetCallerIdentity and the state store takes a
                         write (no token; cached 5 s)
    GET  /metrics        Prometheus text
    POST /runs           {"suffixes": [...], "dry_run": bool, "only": [...], "skip": [...]}
                         (each optional) -> 202 {"run_id": ...}, recorded as queued in the
                         state store before the answer; bad input (a key given twice
                         too) -> 400, nothing run; while stopping or full -> 503 with
                         Retry-After
    GET  /runs           the recorded runs, newest first
    GET  /runs/{run_id}  the run's JSON report (202 with its record while it is queued or
                         runs; 200 with the record of one cancelled, which says why)

With a token configured every endpoint but the probes needs `Authorization: Bearer TOKEN`
(401 otherwise; compared in constant time). Without one (loopback only) a request naming
another host or carrying an Origin is refused (403): no web page can drive the service.
Header values are matched as HTTP has them: media types, host names and the auth scheme
case-insensitively.
A run asked for stays within the service's own: its suffixes (or globs), its steps.
"""

from __future__ import annotations

import hmac
import time
from typing import Any, Final

import anyio
import structlog
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from optimizer_async.aws import errors
from optimizer_async.jsonio import strict_json
from optimizer_async.records.state import run_key
from optimizer_async.runs.listing import list_runs
from optimizer_async.service.reconciler import Busy, Reconciler
from optimizer_async.service.requests import requested

log = structlog.get_logger("optimizer_async.service")

PROBES: Final = frozenset({"/healthz", "/readyz"})
_READY_CACHE_S: Final = 5.0
_RUN_ID_CHARS: Final = frozenset("0123456789TZabcdef-")
_MAX_BODY: Final = 64 * 1024
_LOOPBACK_NAMES: Final = frozenset({"127.0.0.1", "localhost", "::1"})
_READY_TIMEOUT_S: Final = 5.0  # a probe's answer in time, even when AWS does not answer


class _Guard(BaseHTTPMiddleware):
    """Who may call: with a token, every endpoint but the probes needs it (the scheme's
    case aside, as RFC 7235 has it). Without one the service listens on loopback only, so
    the danger is a web page in the same machine's browser: a request naming another host
    (DNS rebinding) or carrying an Origin (a page's fetch or form) is refused."""

    def __init__(self, app: Any, token: str | None) -> None:
        super().__init__(app)
        self.token = None if token is None else token.encode()

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        if self.token is None:
            host = request.headers.get("host", "").rsplit(":", 1)[0].strip("[]").lower()
            if host not in _LOOPBACK_NAMES or "origin" in request.headers:
                return JSONResponse({"error": "only this machine's own clients"}, 403)
        elif request.url.path not in PROBES:
            scheme, _, given = request.headers.get("authorization", "").partition(" ")
            ok = scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), self.token)
            if not ok:
                return JSONResponse(
                    {"error": "missing or wrong bearer token"},
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
        return await call_next(request)


def app(reconciler: Reconciler, token: str | None) -> Starlette:
    ready: dict[str, Any] = {"at": -_READY_CACHE_S, "answer": None}

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok", "cycles": reconciler.cycles})

    checking = anyio.Lock()

    async def readyz(_: Request) -> Response:
        async with checking:  # one check at a time; the others take its answer
            if time.monotonic() - ready["at"] >= _READY_CACHE_S:
                ready["answer"], ready["at"] = await _readiness(reconciler), time.monotonic()
        checks: dict[str, str] = ready["answer"]
        ok = all(value == "ok" for value in checks.values()) and not reconciler.stopping
        return JSONResponse(
            {**checks, "stopping": reconciler.stopping}, status_code=200 if ok else 503
        )

    async def metrics(_: Request) -> Response:
        reconciler.export_home_calls()
        return Response(reconciler.metrics.text(), media_type="text/plain; version=0.0.4")

    async def submit(request: Request) -> Response:
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != "application/json":  # media types are case-insensitive (RFC 9110)
            return _bad("the body must be JSON (Content-Type: application/json)")
        body = bytearray()
        async for chunk in request.stream():  # read no more than the limit
            body += chunk
            if len(body) > _MAX_BODY:
                return _bad(f"the body is over {_MAX_BODY} bytes")
        try:
            asked = _asked(body)
            config = requested(reconciler.config, asked)
            run_id = await reconciler.submit(config, asked)
        except ValueError as error:
            return _bad(str(error))
        except Busy as error:
            return JSONResponse(
                {"error": str(error)},
                status_code=503,
                headers={"Retry-After": str(error.retry_after_s)},
            )
        return JSONResponse({"run_id": run_id, "status": "queued"}, status_code=202)

    async def runs(_: Request) -> Response:
        return JSONResponse({"runs": (await list_runs(reconciler.store))[:100]})

    async def run(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        if len(run_id) != 23 or not set(run_id) <= _RUN_ID_CHARS:
            return _bad(f"{run_id!r} is not a run id")
        report = await reconciler.store.read(run_key(run_id, "report.json"))
        if report is not None:
            return JSONResponse(report)
        record = await reconciler.store.read(run_key(run_id, "run.json"))
        if record is not None and record.get("status") == "cancelled":
            return JSONResponse(record)  # it ended: why is in the record
        if record is not None or run_id == reconciler.current:
            return JSONResponse(record or {"run_id": run_id, "status": "running"}, status_code=202)
        if run_id in reconciler.queued():
            return JSONResponse({"run_id": run_id, "status": "queued"}, status_code=202)
        return JSONResponse({"error": f"no run {run_id}"}, status_code=404)

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            Route("/runs", submit, methods=["POST"]),
            Route("/runs", runs, methods=["GET"]),
            Route("/runs/{run_id}", run, methods=["GET"]),
        ],
        middleware=[Middleware(_Guard, token=token)],
        exception_handlers={Exception: _failed},
    )


def _bad(reason: str) -> Response:
    return JSONResponse({"error": reason}, status_code=400)


def _asked(body: bytes | bytearray) -> dict[str, Any]:
    """The POST's JSON object; ValueError: why it is not one (a key given twice included:
    a second `"dry_run": false` must not quietly win)."""
    try:
        asked = strict_json.loads(bytes(body) or b"{}")
    except (ValueError, RecursionError) as error:
        detail = f" ({error})" if isinstance(error, strict_json.DuplicateKey) else ""
        raise ValueError(f"the body is not JSON, or nests too deep{detail}") from None
    if not isinstance(asked, dict):
        raise ValueError("the body must be a JSON object")
    return asked


async def _readiness(reconciler: Reconciler) -> dict[str, str]:
    """Whether AWS answers and the state store takes a write, each within its time. The
    answer is for anyone (probes need no token): "ok" or "unavailable"; the reason goes to
    the log."""
    checks = {}
    for name, check in (
        ("aws", reconciler.home.sts.get_caller_identity),
        ("state_store", lambda: reconciler.store.write(".readyz.json", {"at": time.time()})),
    ):
        try:
            with anyio.fail_after(_READY_TIMEOUT_S):
                await check()
            checks[name] = "ok"
        except Exception as error:
            log.warning("service.not_ready", check=name, error=errors.describe(error))
            checks[name] = "unavailable"
    return checks


async def _failed(request: Request, error: Exception) -> Response:
    """An endpoint that failed: logged with its reason, a 500 without it."""
    log.error("service.request_failed", path=request.url.path, error=errors.describe(error))
    return JSONResponse({"error": "internal error (see the service's log)"}, status_code=500)
