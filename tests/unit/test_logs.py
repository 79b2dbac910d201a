from __future__ import annotations

import io
import json

import structlog

from optimizer_async.reporting import logs


def _emit(**fields: object) -> dict[str, object]:
    stream = io.StringIO()
    logs.configure("json", "debug", stream)
    structlog.get_logger().info("event.name", **fields)
    return dict(json.loads(stream.getvalue()))


def test_secret_looking_keys_are_redacted_but_arns_are_kept() -> None:
    line = _emit(
        api_key="k-123",
        database_url="postgres://u:p@h/db",
        db_password="hunter2",
        secret_arn="arn:aws:secretsmanager:us-east-1:1:secret:x",
        nested={"Authorization": "Bearer abc", "ok": 1},
    )
    assert line["api_key"] == line["database_url"] == line["db_password"] == logs.REDACTED
    assert line["secret_arn"] == "arn:aws:secretsmanager:us-east-1:1:secret:x"
    assert line["nested"] == {"Authorization": logs.REDACTED, "ok": 1}


def test_credentials_inside_urls_are_masked_anywhere() -> None:
    line = _emit(error="could not reach postgresql://orders:s3cr3t@db.internal:5432/orders")
    assert "s3cr3t" not in json.dumps(line)
    assert "postgresql://orders:***@db.internal" in str(line["error"])


def test_every_line_has_the_schema_fields() -> None:
    structlog.contextvars.bind_contextvars(run_id="r-1")
    try:
        line = _emit(step="alarms")
    finally:
        structlog.contextvars.clear_contextvars()
    assert line["event"] == "event.name"
    assert line["level"] == "info"
    assert line["run_id"] == "r-1"
    assert str(line["timestamp"]).endswith("Z")


def test_level_filters() -> None:
    stream = io.StringIO()
    logs.configure("json", "warning", stream)
    structlog.get_logger().info("quiet")
    structlog.get_logger().warning("loud")
    assert [json.loads(x)["event"] for x in stream.getvalue().splitlines()] == ["loud"]
