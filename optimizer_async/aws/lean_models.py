"""Botocore's data, less what a run never reads: about 8 MB of a large dry run's peak.

A client keeps its service model for the process's life, and the session keeps botocore's
endpoint table: 7 MB of dicts for every service AWS has, when a run calls nine, and
service models of which more than half is documentation (read only to make docstrings).
`LeanLoader` is botocore's own loader with both trimmed as they load.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from botocore.loaders import Loader

# The services the gateway makes clients for, by botocore's name, and the endpoint prefix
# under which botocore's endpoint table lists each (tests check both against botocore).
ENDPOINT_PREFIXES: Final = {
    "cloudwatch": "monitoring",
    "iam": "iam",
    "lambda": "lambda",
    "logs": "logs",
    "pricing": "api.pricing",
    "s3": "s3",
    "secretsmanager": "secretsmanager",
    "sqs": "sqs",
    "sts": "sts",
}
_OUR_PREFIXES: Final = frozenset(ENDPOINT_PREFIXES.values())
_DOCUMENTATION: Final = ("documentation", "documentationUrl")


class LeanLoader(Loader):
    """Botocore's loader; the endpoint table keeps only the services we call, and service
    models lose their documentation (trimmed in place: botocore caches what it loads)."""

    def __init__(self, search_paths: Iterable[str]) -> None:
        super().__init__(extra_search_paths=list(search_paths))

    def load_data_with_path(self, name: str) -> tuple[Any, str]:
        data, path = super().load_data_with_path(name)
        if name == "endpoints":
            for partition in data.get("partitions", ()):
                services = partition.get("services", {})
                for prefix in [p for p in services if p not in _OUR_PREFIXES]:
                    del services[prefix]
        return data, path

    def load_service_model(
        self, service_name: str, type_name: str, api_version: str | None = None
    ) -> Any:
        model = super().load_service_model(service_name, type_name, api_version)
        if type_name == "service-2":  # shapes and operations: botocore reads the rest's text
            _undocument(model.get("operations"))
            _undocument(model.get("shapes"))
        return model


def _undocument(value: Any) -> None:
    if isinstance(value, dict):
        for key in _DOCUMENTATION:
            if isinstance(value.get(key), str):  # text, never a member of that name
                del value[key]
        for item in value.values():
            _undocument(item)
    elif isinstance(value, list):
        for item in value:
            _undocument(item)
