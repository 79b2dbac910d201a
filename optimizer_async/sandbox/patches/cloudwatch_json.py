"""CloudWatch over AWS JSON 1.0, as recent SDKs speak it.

AWS serves CloudWatch in both protocols: query (form body, XML answers) and, since 2023,
JSON 1.0 (`Content-Type: application/x-amz-json-1.0`,
`X-Amz-Target: GraniteServiceVersion20100801.<Operation>`), which newer botocore uses.
moto 5.2.5 refuses the latter (its model lists only query) with an HTML 500. Here a JSON
request to a query service is parsed and answered in JSON from the same operation model;
its errors carry `__type` and, as on AWS, the query code in `x-amzn-query-error`.
"""

from __future__ import annotations

import json
from typing import Any, Final

from moto.core import responses as moto_responses
from moto.core.request import determine_request_protocol
from moto.core.responses import BaseResponse
from moto.core.utils import get_service_model

from optimizer_async.sandbox.patches._patching import wrap_method

_JSON_TYPES: Final = ("application/x-amz-json-1.0", "application/x-amz-json-1.1")
_original = determine_request_protocol


def _protocol(service_model: Any, content_type: str | None = None) -> str:
    if (
        content_type
        and content_type.startswith(_JSON_TYPES)
        and str(service_model.protocol) == "query"
    ):
        return "json"
    return str(_original(service_model, content_type))


def apply() -> None:
    vars(moto_responses)["determine_request_protocol"] = _protocol

    @wrap_method(BaseResponse, "serialized")
    def serialized(original: Any, response: Any, action_result: Any) -> Any:
        status, headers, body = original(response, action_result)
        service_model = get_service_model(response.boto3_service_name)
        if str(service_model.protocol) != "query" or not str(
            response.headers.get("Content-Type", "")
        ).startswith(_JSON_TYPES):
            return status, headers, body
        headers["Content-Type"] = "application/x-amz-json-1.0"
        if int(status) >= 400:
            try:
                code = str(json.loads(body).get("__type", "")).rsplit("#", 1)[-1]
            except (ValueError, AttributeError):
                code = ""
            if code:
                kind = "Sender" if int(status) < 500 else "Receiver"
                headers["x-amzn-query-error"] = f"{code};{kind}"
        return status, headers, body
