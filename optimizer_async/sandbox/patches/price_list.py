"""The Price List API's GetProducts, which moto lacks, answered from stored offer products.

`sandbox/price_list/{ServiceCode}.json` holds products shaped as AWS publishes them; the
answer has AWS's documented shape: `FormatVersion`, `PriceList` (each product serialised to
a JSON string, as AWS does) and `NextToken`. Filters are TERM_MATCH on a product attribute
(or `sku`); pages hold `MaxResults` (at most 100).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

from optimizer_async.sandbox.once import built_once
from optimizer_async.sandbox.protocols import CallId

_PRODUCTS: Final = Path(__file__).resolve().parent.parent / "price_list"
_PAGE: Final = 100


@built_once
def products(service_code: str) -> tuple[dict[str, Any], ...]:
    """The stored products of an offer (none for offers the sandbox does not hold)."""
    path = _PRODUCTS / f"{Path(service_code).name}.json"
    if not path.is_file():
        return ()
    return tuple(json.loads(path.read_text())["products"])


def _matches(product: dict[str, Any], filters: list[dict[str, str]]) -> bool:
    attributes = product["product"]["attributes"]
    for term in filters:
        field, value = term.get("Field", ""), term.get("Value", "")
        found = product["product"].get("sku") if field == "sku" else attributes.get(field)
        if found != value:
            return False
    return True


def get_products(call: CallId, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    request = json.loads(body or b"{}")
    filters = request.get("Filters") or []
    if any(term.get("Type", "TERM_MATCH") != "TERM_MATCH" for term in filters):
        error = {"__type": "InvalidParameterException", "Message": "Filter Type: TERM_MATCH"}
        return 400, [("Content-Type", "application/x-amz-json-1.1")], json.dumps(error).encode()
    found = [p for p in products(str(request.get("ServiceCode", ""))) if _matches(p, filters)]
    start = int(request.get("NextToken") or 0)
    size = min(int(request.get("MaxResults") or _PAGE), _PAGE)
    page = found[start : start + size]
    answer: dict[str, Any] = {
        "FormatVersion": request.get("FormatVersion") or "aws_v1",
        "PriceList": [json.dumps(product) for product in page],
    }
    if start + size < len(found):
        answer["NextToken"] = str(start + size)
    return 200, [("Content-Type", "application/x-amz-json-1.1")], json.dumps(answer).encode()
