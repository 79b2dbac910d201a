"""BASELINE (what the stack deploys) and TARGET (what the optimizer sets): one source of truth.

The Pulumi stack and the sandbox seeder build environments from BASELINE and the function
spec below; the optimizer's plan compares what it discovers with TARGET. Values and their
reasons are in docs/guardrails-and-evidence.md (Targets) and docs/architecture.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from optimizer_async.aws import limits


@dataclass(frozen=True)
class FunctionSettings:
    """The per-function settings the optimizer manages."""

    memory_mb: int
    timeout_s: int
    reserved_concurrency: int | None  # None: no reservation, draws on the unreserved pool
    log_retention_days: int | None  # None: never expire
    tracing_mode: str  # "PassThrough" or "Active"

    def __post_init__(self) -> None:
        limits.check_memory_mb(self.memory_mb)
        limits.check_timeout_s(self.timeout_s)
        if self.reserved_concurrency is not None:
            limits.check_reserved_concurrency(self.reserved_concurrency)
        if self.log_retention_days is not None:
            limits.check_log_retention_days(self.log_retention_days)
        if self.tracing_mode not in limits.TRACING_MODES:
            raise ValueError(f"tracing mode must be one of {limits.TRACING_MODES}")


BASELINE: Final = FunctionSettings(
    memory_mb=3008,
    timeout_s=300,
    reserved_concurrency=None,
    log_retention_days=None,
    tracing_mode="PassThrough",
)

TARGET: Final = FunctionSettings(
    memory_mb=1024,
    timeout_s=30,
    reserved_concurrency=50,
    log_retention_days=7,
    tracing_mode="Active",
)

# The function as deployed (not managed by the optimizer, but identical in stack and seeder).
RUNTIME: Final = "python3.12"
ARCHITECTURE: Final = "x86_64"
HANDLER: Final = "handler.lambda_handler"
FUNCTION_DESCRIPTION: Final = "Processes order events"
SERVICE_NAME: Final = "orders"


def baseline_environment(suffix: str) -> dict[str, str]:
    """Non-secret environment variables of the baseline function; the optimizer must keep them."""
    return {
        "APP_ENV": suffix,
        "LOG_LEVEL": "INFO",
        "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
        "ORDERS_TABLE": f"orders-{suffix}",
    }


# Environment variables the optimizer adds: Secrets Manager ARNs, never the secret values.
DATABASE_URL_SECRET_ARN_VAR: Final = "DATABASE_URL_SECRET_ARN"  # noqa: S105 - a name
API_KEY_SECRET_ARN_VAR: Final = "API_KEY_SECRET_ARN"  # noqa: S105 - a name
# How long the handler keeps a secret it read (lambda/function/handler.py's
# SECRET_CACHE_SECONDS): what its Secrets Manager calls cost depends on it.
HANDLER_SECRET_CACHE_S: Final = 300

# Dead-letter queue created by the optimizer.
DLQ_MESSAGE_RETENTION_S: Final = 14 * 24 * 3600  # SQS maximum, 14 days
DLQ_SSE_ENABLED: Final = True  # SQS-managed server-side encryption

# Alarms created by the optimizer.
ERROR_RATE_THRESHOLD_PERCENT: Final = 1.0
DURATION_THRESHOLD_MS: Final = 20_000.0
ALARM_PERIOD_S: Final = 300
ALARM_EVALUATION_PERIODS: Final = 1

# Deployment bucket (stack, seeder and optimizer agree).
NONCURRENT_VERSION_EXPIRATION_DAYS: Final = 30
BUCKET_LIFECYCLE_RULE_ID: Final = "expire-noncurrent-versions"
BUCKET_SSE_ALGORITHM: Final = "AES256"  # S3-managed keys


def function_bases(count: int) -> tuple[str, ...]:
    """Bases of an environment's functions: `lambda-function`, then `lambda-function2`, ...

    No hyphen before the number, so `lambda-function2-dev` can never be read as
    `lambda-function` with suffix `2-dev`.
    """
    if count < 1:
        raise ValueError("an environment has at least one function")
    return tuple(
        "lambda-function" if i == 1 else f"lambda-function{i}" for i in range(1, count + 1)
    )


def bucket_lifecycle_rules(
    noncurrent_days: int = NONCURRENT_VERSION_EXPIRATION_DAYS,
) -> list[dict[str, Any]]:
    """The deployment bucket's lifecycle rules as S3's API takes them: noncurrent versions
    expire after `noncurrent_days`."""
    return [
        {
            "ID": BUCKET_LIFECYCLE_RULE_ID,
            "Status": "Enabled",
            "Filter": {},
            "NoncurrentVersionExpiration": {"NoncurrentDays": noncurrent_days},
        }
    ]
