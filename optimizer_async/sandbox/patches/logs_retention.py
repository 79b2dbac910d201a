"""PutRetentionPolicy accepts only CloudWatch Logs' fixed list of retention periods.

moto 5.2.5 stores any number; AWS answers anything else with InvalidParameterException.
"""

from __future__ import annotations

from typing import Any

from moto.logs.exceptions import InvalidParameterException
from moto.logs.models import LogsBackend

from optimizer_async.aws.limits import LOG_RETENTION_DAYS
from optimizer_async.sandbox.patches._patching import wrap_method


def apply() -> None:
    @wrap_method(LogsBackend, "put_retention_policy")
    def put_retention(original: Any, backend: Any, log_group_name: str, days: Any) -> None:
        if int(days) not in LOG_RETENTION_DAYS:
            raise InvalidParameterException(
                constraint="Member must satisfy enum value set: "
                f"[{', '.join(str(d) for d in LOG_RETENTION_DAYS)}]",
                parameter="retentionInDays",
                value=days,
            )
        original(backend, log_group_name, days)
