"""structlog configuration: one JSON object per line (or console lines), secrets redacted.

Every event carries `timestamp` (ISO-8601, UTC), `level`, `event` and the context bound
with `structlog.contextvars` (`run_id`, `suffix`, `function`, `step`); AWS calls add
`aws_service`, `aws_operation`, `attempt`, `duration_ms`. The schema is in docs/logs.md.

Redaction is a processor, so it covers every event: values under secret-looking keys are
replaced, and credentials inside URLs (`scheme://user:password@host`) are masked wherever
they appear. Keys that only name a secret (`*_arn`, `*_name`) are left alone.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, Final, Literal, TextIO

import structlog

LogFormat = Literal["json", "console"]
LEVELS: Final = ("debug", "info", "warning", "error")
REDACTED: Final = "[REDACTED]"

_SECRET_KEY: Final = re.compile(
    r"secret|password|passwd|token|api[_-]?key|credential|authorization|database[_-]?url|dsn",
    re.IGNORECASE,
)
_NAMING_SUFFIXES: Final = ("_arn", "_arns", "_name", "_names", "_configured", "_var")
_URL_CREDENTIALS: Final = re.compile(r"([a-z][a-z0-9+.-]*://[^/\s:@]+:)[^@\s/]+@", re.IGNORECASE)


def _is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(key)) and not key.lower().endswith(_NAMING_SUFFIXES)


def redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return _URL_CREDENTIALS.sub(r"\1***@", value)
    if isinstance(value, Mapping):
        return {
            key: REDACTED if _is_secret_key(str(key)) else redact_value(item)
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [redact_value(item) for item in value]
    return value


def redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: no secret value leaves the process through a log line."""
    for key in list(event_dict):
        if _is_secret_key(key):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = redact_value(event_dict[key])
    return event_dict


# The SDK's own loggers that speak of what the optimizer reports itself: a role that cannot
# be assumed is a place's error in the report, not botocore's traceback on stderr.
_SDK_LOGGERS: Final = ("aiobotocore.credentials", "botocore.credentials")


def configure(
    log_format: LogFormat = "json", level: str = "info", stream: TextIO | None = None
) -> None:
    """Send logs to `stream` (stderr by default: stdout is the report's)."""
    for name in _SDK_LOGGERS:
        sdk = logging.getLogger(name)
        sdk.propagate = False  # no handler of theirs prints past our stream
        if not sdk.handlers:
            sdk.addHandler(logging.NullHandler())
    renderer: Any = (
        structlog.processors.JSONRenderer(sort_keys=False)
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.WriteLoggerFactory(file=stream or sys.stderr),
        cache_logger_on_first_use=False,
    )
