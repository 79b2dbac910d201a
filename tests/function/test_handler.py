"""The order-event handler: validation, secret resolution against the sandbox, clean logs."""

from __future__ import annotations

import importlib.util
import io
import json
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from optimizer_async.sandbox.server import EmbeddedSandbox
from tests.conftest import ClientFactory

HANDLER = Path(__file__).resolve().parents[2] / "lambda" / "function" / "handler.py"
DATABASE_URL = "postgresql://orders:Sup3rS3cret@db.internal:5432/orders"
API_KEY = "key-9f8e7d6c5b4a"


@dataclass
class Context:
    """What the Lambda runtime hands a handler (the fields Powertools reads)."""

    function_name: str = "lambda-function-dev"
    function_version: str = "$LATEST"
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:lambda-function-dev"
    memory_limit_in_mb: int = 1024
    aws_request_id: str = "req-1"
    log_group_name: str = "/aws/lambda/lambda-function-dev"
    log_stream_name: str = "2026/11/27/[$LATEST]abc"


def _order(**changes: Any) -> dict[str, Any]:
    order = {
        "order_id": "ord-42",
        "customer_id": "cust-7",
        "currency": "EUR",
        "items": [
            {"sku": "A-1", "quantity": 2, "unit_price": 9.99},
            {"sku": "B-2", "quantity": 1, "unit_price": 0.1},
        ],
    }
    order.update(changes)
    return order


@pytest.fixture
def log_output() -> io.StringIO:
    return io.StringIO()


@pytest.fixture
def handler(monkeypatch: pytest.MonkeyPatch, log_output: io.StringIO) -> Iterator[ModuleType]:
    """The handler module, imported afresh; its log lines are also copied to `log_output`."""
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "orders")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.delenv("DATABASE_URL_SECRET_ARN", raising=False)
    monkeypatch.delenv("API_KEY_SECRET_ARN", raising=False)
    spec = importlib.util.spec_from_file_location("order_handler", HANDLER)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["order_handler"] = module
    spec.loader.exec_module(module)
    # The same JSON lines the function writes to stdout in Lambda, formatted by Powertools.
    copy = logging.StreamHandler(log_output)
    copy.setFormatter(module.logger.registered_formatter)
    service_logger = logging.getLogger("orders")
    service_logger.addHandler(copy)
    yield module
    service_logger.removeHandler(copy)
    sys.modules.pop("order_handler", None)
    from aws_lambda_powertools.utilities.parameters import base

    base.clear_caches()  # type: ignore[no-untyped-call]
    base.DEFAULT_PROVIDERS.clear()  # type: ignore[attr-defined]  # providers keep their endpoint


def _logs(output: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.getvalue().splitlines()]


def test_valid_order_is_priced_exactly(handler: ModuleType, log_output: io.StringIO) -> None:
    answer = handler.lambda_handler(_order(), Context())
    assert answer["statusCode"] == 200
    assert json.loads(answer["body"]) == {"order_id": "ord-42", "total": "20.08", "currency": "EUR"}
    (line,) = [e for e in _logs(log_output) if e["message"] == "order processed"]
    assert line["order_id"] == "ord-42"
    assert line["service"] == "orders"
    assert line["function_request_id"] == "req-1"
    assert line["secrets_configured"] == {
        "DATABASE_URL_SECRET_ARN": False,
        "API_KEY_SECRET_ARN": False,
    }


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ({}, "order_id"),
        (_order(currency="JPY"), "currency"),
        (_order(items=[]), "items"),
        (_order(items=[{"sku": "A", "quantity": 0, "unit_price": 1}]), "quantity"),
        (_order(extra="x"), "must not contain"),
        ("not an object", "object"),
    ],
)
def test_invalid_events_get_a_clear_400(handler: ModuleType, event: Any, reason: str) -> None:
    answer = handler.lambda_handler(event, Context())
    assert answer["statusCode"] == 400
    body = json.loads(answer["body"])
    assert body["error"] == "invalid order event"
    assert reason in body["reason"]


def test_secrets_resolve_from_secrets_manager_and_never_reach_the_logs(
    handler: ModuleType,
    sandbox: EmbeddedSandbox,
    client: ClientFactory,
    monkeypatch: pytest.MonkeyPatch,
    log_output: io.StringIO,
) -> None:
    secrets = client("secretsmanager")
    database = secrets.create_secret(Name="database-url-dev", SecretString=DATABASE_URL)["ARN"]
    api_key = secrets.create_secret(Name="api-key-dev", SecretString=API_KEY)["ARN"]
    monkeypatch.setenv("AWS_ENDPOINT_URL", sandbox.endpoint_url)
    monkeypatch.setenv("DATABASE_URL_SECRET_ARN", database)
    monkeypatch.setenv("API_KEY_SECRET_ARN", api_key)
    sandbox.reset_stats()

    assert handler.resolve_secret("DATABASE_URL_SECRET_ARN") == DATABASE_URL
    for _ in range(3):
        assert handler.lambda_handler(_order(), Context())["statusCode"] == 200
    reads = [r for r in sandbox.stats()["calls"] if r["operation"] == "GetSecretValue"]
    assert sum(r["count"] for r in reads) == 2  # once per secret: cached afterwards

    events = _logs(log_output)
    output = json.dumps(events)
    line = [e for e in events if e["message"] == "order processed"][-1]
    assert line["secrets_configured"] == {
        "DATABASE_URL_SECRET_ARN": True,
        "API_KEY_SECRET_ARN": True,
    }
    assert DATABASE_URL not in output
    assert "Sup3rS3cret" not in output
    assert API_KEY not in output


def test_unset_secret_variables_resolve_to_nothing(handler: ModuleType) -> None:
    assert handler.resolve_secret("DATABASE_URL_SECRET_ARN") is None
