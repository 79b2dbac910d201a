"""Order-event processor: the workload every environment runs.

Validates an order event, prices it, and, when the optimizer has configured them, resolves
the database URL and API key from Secrets Manager (cached; values never logged). Logs are
structured JSON and X-Ray annotations are added when tracing is active — all through AWS
Lambda Powertools from the `shared-deps` layer.
"""

from __future__ import annotations

import json
import os
from decimal import Decimal
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.typing import LambdaContext
from aws_lambda_powertools.utilities.validation import SchemaValidationError, validate

logger = Logger()  # service name from POWERTOOLS_SERVICE_NAME
tracer = Tracer()  # a no-op unless the function runs with tracing Active

SECRET_CACHE_SECONDS = 300
SECRET_ARN_VARIABLES = ("DATABASE_URL_SECRET_ARN", "API_KEY_SECRET_ARN")

ORDER_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["order_id", "customer_id", "currency", "items"],
    "additionalProperties": False,
    "properties": {
        "order_id": {"type": "string", "pattern": "^[A-Za-z0-9-]{1,64}$"},
        "customer_id": {"type": "string", "minLength": 1, "maxLength": 64},
        "currency": {"type": "string", "enum": ["USD", "EUR", "GBP"]},
        "items": {
            "type": "array",
            "minItems": 1,
            "maxItems": 100,
            "items": {
                "type": "object",
                "required": ["sku", "quantity", "unit_price"],
                "additionalProperties": False,
                "properties": {
                    "sku": {"type": "string", "minLength": 1, "maxLength": 32},
                    "quantity": {"type": "integer", "minimum": 1, "maximum": 1000},
                    "unit_price": {"type": "number", "minimum": 0},
                },
            },
        },
    },
}


@tracer.capture_method(capture_response=False)  # a secret never goes into a trace
def resolve_secret(variable: str) -> str | None:
    """The secret whose ARN the variable names, cached for five minutes; None when unset."""
    arn = os.environ.get(variable)
    if not arn:
        return None
    value = parameters.get_secret(arn, max_age=SECRET_CACHE_SECONDS)
    return value if isinstance(value, str) else None


def _response(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "body": json.dumps(body)}


def order_total(items: list[dict[str, Any]]) -> Decimal:
    """Exact total: prices are summed as decimals, then rounded to cents."""
    total = sum(
        (Decimal(str(item["unit_price"])) * int(item["quantity"]) for item in items), Decimal(0)
    )
    return total.quantize(Decimal("0.01"))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    try:
        validate(event=event, schema=ORDER_EVENT_SCHEMA)
    except SchemaValidationError as error:
        logger.warning("rejected order event", reason=error.message)
        return _response(400, {"error": "invalid order event", "reason": error.message})

    order_id = event["order_id"]
    tracer.put_annotation(key="order_id", value=order_id)
    logger.append_keys(order_id=order_id)
    configured = {
        variable: resolve_secret(variable) is not None for variable in SECRET_ARN_VARIABLES
    }
    total = order_total(event["items"])
    logger.info(
        "order processed",
        item_count=len(event["items"]),
        total=str(total),
        currency=event["currency"],
        secrets_configured=configured,
    )
    return _response(
        200, {"order_id": order_id, "total": str(total), "currency": event["currency"]}
    )
