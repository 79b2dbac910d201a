"""The service's HTTP API (Starlette): probes, metrics, run requests and their reports.

    GET  /healthz        live: the process answers (no token)
    GET  /readyz         ready: AWS answers GetCallerIdentity and the state store takes a
                         write (no token; cached 5 s)
    GET  /metrics        Prometheus text
    POST /runs           {"suffixes": [...], "dry_run": bool, "only": [...], "skip": [...]}
                         (each optional) -> 202 {"run_id": ...}; bad input -> 400, nothing run
    GET  /runs           the recorded runs, newest first
    GET  /runs/{run_id}  the run's JSON report (202 with its record while it runs)

With a token configured every endpoint but the probes needs `Authorization: Bearer TOKEN`
(401 otherwise; compared in constant time).
"""

from __future__ import annotations

import hmac
import json
import time
from dataclasses import replace
from typing import Any, Final

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from optimizer_async.aws import errors
from optimizer_async.naming import InvalidNameError, validate_suffix
from optimizer_async.runner import list_runs
from optimizer_async.service.reconciler import Busy, Reconciler
from optimizer_async.state import run_key
from optimizer_async.steps.registry import REGISTRY, SelectionError

PROBES: Final = frozenset({"/healthz", "/readyz"})
_READY_CACHE_S: Final = 5.0
_RUN_ID_CHARS: Final = frozenset("0123456789TZabcdef-")
_BODY_KEYS: Final = frozenset({"suffixes", "dry_run", "only", "skip"})
_MAX_BODY: Final = 64 * 1024


class _Bearer(BaseHTTPMiddleware):
    def __init__(self, app: Any, token: str | None) -> None:
        super().__init__(app)
        self.expected = None if token is None else f"Bearer {token}".encode()

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        if self.expected is not None and request.url.path not in PROBES:
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, self.expected):
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

    async def readyz(_: Request) -> Response:
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
        body = await request.body()
        if len(body) > _MAX_BODY:
            return _bad(f"the body is over {_MAX_BODY} bytes")
        try:
            config = _requested(reconciler, body)
            run_id = reconciler.submit(config)
        except ValueError as error:
            return _bad(str(error))
        except Busy as error:
            return JSONResponse({"error": str(error)}, status_code=503)
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
        middleware=[Middleware(_Bearer, token=token)],
    )


def _bad(reason: str) -> Response:
    return JSONResponse({"error": reason}, status_code=400)


def _requested(reconciler: Reconciler, body: bytes) -> Any:
    """The run a POST asks for, from the service's own configuration; ValueError: why not."""
    try:
        asked = json.loads(body or b"{}")
    except ValueError:
        raise ValueError("the body is not JSON") from None
    if not isinstance(asked, dict):
        raise ValueError("the body must be a JSON object")
    unknown = sorted(set(asked) - _BODY_KEYS)
    if unknown:
        raise ValueError(
            f"unknown field(s) {', '.join(unknown)} (known: {', '.join(sorted(_BODY_KEYS))})"
        )
    config = reconciler.config
    changes: dict[str, Any] = {}
    if "suffixes" in asked:
        suffixes = _strings(asked["suffixes"], "suffixes")
        if not suffixes:
            raise ValueError("suffixes must name at least one environment")
        try:
            changes["suffixes"] = tuple(validate_suffix(s) for s in suffixes)
        except InvalidNameError as error:
            raise ValueError(str(error)) from None
        changes |= {"find_all": False, "match": (), "exclude": ()}
    if "dry_run" in asked:
        if not isinstance(asked["dry_run"], bool):
            raise ValueError("dry_run must be true or false")
        changes["dry_run"] = asked["dry_run"] or config.dry_run  # a dry-run service stays one
    only = _strings(asked.get("only", []), "only")
    skip = _strings(asked.get("skip", []), "skip")
    try:
        REGISTRY.select(only, skip)
    except SelectionError as error:
        raise ValueError(str(error)) from None
    return replace(config, **changes, only=tuple(only), skip=tuple(skip))


def _strings(value: Any, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{name} must be a list of strings")
    return value


async def _readiness(reconciler: Reconciler) -> dict[str, str]:
    checks = {}
    try:
        await reconciler.home.sts.get_caller_identity()
        checks["aws"] = "ok"
    except Exception as error:
        checks["aws"] = errors.describe(error)
    try:
        await reconciler.store.write(".readyz.json", {"at": time.time()})
        checks["state_store"] = "ok"
    except Exception as error:
        checks["state_store"] = errors.describe(error)
    return checks
