"""moto's service dispatcher, with the per-request work it repeats done once.

moto 5.2.5's DomainDispatcherApplication works out the backend of every request under one
process-wide lock, and on the way lists moto's package directory (a stat per backend, some
250 per request): a third of the sandbox's CPU per call. The backend of a SigV4-signed
request depends only on its credential scope (and, for S3, on S3 Control's path or host),
so for the services this product calls the answer is remembered per scope. Anything else
(unsigned requests, moto's own API, services moto routes by path or target) goes the
original way. Flask-CORS headers, which no AWS client reads, are left out.

Such a request then skips Flask too (a tenth of the CPU per call: contexts, signals, its
request proxy): its URL is matched in the app's own map and moto's view is called as
moto's Flask view calls it (`_call_view`), with the same request, arguments and response
object. A request the map does not match goes through Flask, for Flask's own answer.

`speed_up_moto` caches what moto recomputes per request (see there).
"""

from __future__ import annotations

import contextlib
import functools
import re
import string
import sys
from collections.abc import Iterable
from typing import Any, Final

from botocore.exceptions import ClientError
from flask import Flask
from moto.core import responses as moto_responses
from moto.core import routing as moto_routing
from moto.core import utils as moto_utils
from moto.core.utils import convert_to_flask_response
from moto.moto_api import recorder
from moto.moto_api._internal import mock_random
from moto.moto_server import werkzeug_app
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.exceptions import HTTPException, NotFound

from optimizer_async.sandbox.once import built_once

_SCOPE: Final = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request")
# SigV4 signing names whose backend moto finds from the scope alone.
_PLAIN_SIGNING_NAMES: Final = frozenset(
    {"lambda", "monitoring", "logs", "iam", "s3", "sqs", "secretsmanager", "sts", "pricing"}
)


def _route_key(environ: dict[str, Any]) -> tuple[str, str, bool] | None:
    """What decides the backend of a request, when that is its scope alone; else None."""
    match = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if match is None:
        return None
    region, signing_name = match.groups()
    if signing_name not in _PLAIN_SIGNING_NAMES:
        return None
    path = environ.get("PATH_INFO", "")
    if path.startswith(("/moto-api", "/latest/")) or path == "/favicon.ico":
        return None
    s3_control = signing_name == "s3" and (
        path.startswith("/v20180820/") or "s3-control" in environ.get("HTTP_HOST", "")
    )
    return signing_name, region, s3_control


class CachingDispatcher(DomainDispatcherApplication):
    """DomainDispatcherApplication that remembers each credential scope's backend app."""

    def __init__(self) -> None:
        super().__init__(_create_app)
        self._by_scope: dict[tuple[str, str, bool], Flask] = {}

    def get_application(self, environ: dict[str, Any]) -> Flask:
        return self._application(environ, _route_key(environ))

    def _application(self, environ: dict[str, Any], key: tuple[str, str, bool] | None) -> Flask:
        if key is None:
            return super().get_application(environ)
        app = self._by_scope.get(key)
        if app is None:
            app = super().get_application(environ)
            self._by_scope[key] = app  # one dict store: safe across request threads
        return app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        key = _route_key(environ)
        app = self._application(environ, key)
        if key is not None:
            request = app.request_class(environ)
            view = _matched_view(app, request)
            if view is not None:
                return _call_view(app, view, request, environ, start_response)
        answer: Iterable[bytes] = app(environ, start_response)
        return answer


def _matched_view(app: Flask, request: Any) -> convert_to_flask_response | None:
    """moto's view for the request's URL in the app's map, as Flask would pick it; None
    when the map has no match (Flask then answers itself)."""
    adapter = app.create_url_adapter(request)
    if adapter is None:
        return None
    try:
        endpoint, _ = adapter.match()
    except HTTPException:  # not found, method not allowed, redirect
        return None
    view = app.view_functions.get(str(endpoint))
    return view if isinstance(view, convert_to_flask_response) else None


def _call_view(
    app: Flask,
    view: convert_to_flask_response,
    request: Any,
    environ: dict[str, Any],
    start_response: Any,
) -> Iterable[bytes]:
    """What moto's Flask view and Flask do with it: the same callback arguments, response
    object and HTTP error pages; other exceptions propagate, as in moto's debug app."""
    try:
        recorder._record_request(request)
        try:
            # dict(request.headers), in one pass rather than a lookup per name
            headers = dict(iter(request.headers))
            result = view.callback(request, request.raw_url, headers)
        except ClientError as exc:
            result = 400, {}, exc.response["Error"]["Message"]
    except HTTPException as error:  # Flask sends these as they render themselves
        page: Iterable[bytes] = error(environ, start_response)
        return page
    if len(result) == 3:
        status, reply_headers, content = result
    else:
        status, reply_headers, content = 200, {}, result
    response = app.response_class(response=content, status=status, headers=reply_headers)
    if request.method == "HEAD" and "content-length" in reply_headers:
        response.headers["Content-Length"] = reply_headers["content-length"]
    sent: Iterable[bytes] = response(environ, start_response)
    return sent


def _create_app(service: Any) -> Flask:
    """moto's backend app, without the CORS layer (read from moto's setting at creation)."""
    settings = vars(werkzeug_app)
    previous = settings["DISABLE_GLOBAL_CORS"]
    settings["DISABLE_GLOBAL_CORS"] = True
    try:
        return create_backend_app(service)
    finally:
        settings["DISABLE_GLOBAL_CORS"] = previous


_method_names: dict[tuple[type, int], list[str]] = {}


def _cached_method_names(clazz: Any) -> list[str]:
    """moto lists a response class's methods with inspect on every call: once per class.

    Keyed by the class dict's size too, so a method a patch adds later is seen.
    """
    key = (clazz, len(vars(clazz)))
    names = _method_names.get(key)
    if names is None:
        names = _method_names[key] = _original_method_names(clazz)
    return names


_original_method_names = moto_utils.method_names_from_class
_original_camelcase = moto_utils.camelcase_to_underscores
_cached_camelcase = functools.lru_cache(maxsize=8192)(_original_camelcase)
_original_service_model = moto_utils.get_service_model
_service_model_once = built_once(_original_service_model)


@built_once
def _service_router(service_name: str) -> Any:
    """moto's router for a REST service with its protocol's URL map built, by one thread."""
    router = moto_routing.get_service_router(service_name)
    with contextlib.suppress(NotFound):  # not a REST protocol: moto routes it
        router._get_router(router._service_model.protocol)
    return router


# 62 letters and digits, repeated over the 256 byte values: a byte is one character.
_REQUEST_ID_CHARS: Final = bytes((string.ascii_letters + string.digits) * 5, "ascii")[:256]


def _request_id(headers: dict[str, Any] | None = None) -> str:
    """moto's 52-character request id, from 52 random bytes rather than 52 random choices."""
    request_id = mock_random.randbytes(52).translate(_REQUEST_ID_CHARS).decode("ascii")
    if isinstance(headers, dict):
        headers["x-amzn-requestid"] = request_id
    return request_id


_original_enrich = moto_responses.BaseResponse.__dict__["_enrich_response"].__func__


def _enrich_response(headers: dict[str, str], body: Any) -> tuple[dict[str, str], Any]:
    """moto's, without its search for a `<RequestId>` element to fill in where the body has
    none (a JSON answer, most XML ones): its regex, a lookbehind tried at every character,
    would find nothing to replace. The request id is drawn and set all the same."""
    if isinstance(body, str) and "<RequestId>" not in body:
        if "status" in headers:
            headers["status"] = str(headers["status"])
        vars(moto_responses)["gen_amzn_requestid_long"](headers)
        return headers, body
    enriched: tuple[dict[str, str], Any] = _original_enrich(headers, body)
    return enriched


def speed_up_moto() -> None:
    """Cache what moto recomputes per request (idempotent): its response classes' method
    names, camelCase-to-snake_case names, and request ids drawn a cheaper way (and not
    searched for in a body that has no place for one); its service models and REST routers
    are built by one thread (once.py)."""
    names = vars(moto_responses)
    names["method_names_from_class"] = _cached_method_names
    names["gen_amzn_requestid_long"] = _request_id
    names["get_service_router"] = _service_router
    moto_responses.BaseResponse._enrich_response = staticmethod(_enrich_response)  # type: ignore[method-assign]
    for name, module in list(sys.modules.items()):
        if not name.startswith("moto."):
            continue
        if getattr(module, "camelcase_to_underscores", None) is _original_camelcase:
            vars(module)["camelcase_to_underscores"] = _cached_camelcase
        if getattr(module, "get_service_model", None) is _original_service_model:
            vars(module)["get_service_model"] = _service_model_once
