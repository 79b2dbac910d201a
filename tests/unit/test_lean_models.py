"""The lean loader drops only what a run never reads: every client still goes where, and signs
as, botocore's own loader would send it (captured before sending: no network)."""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest
from botocore.loaders import Loader

from optimizer_async.aws.gateway import Aws, _Service
from optimizer_async.aws.lean_models import ENDPOINT_PREFIXES, LeanLoader

# One read per service, the cheapest each has (never sent).
_PROBES = {
    "cloudwatch": "list_metrics",
    "iam": "list_roles",
    "lambda": "list_functions",
    "logs": "describe_log_groups",
    "pricing": "describe_services",
    "s3": "list_buckets",
    "secretsmanager": "list_secrets",
    "sqs": "list_queues",
    "sts": "get_caller_identity",
}
_REGIONS = ("us-east-1", "eu-west-1", "us-gov-west-1", "cn-north-1")


class _Captured(Exception):
    def __init__(self, url: str, scope: str) -> None:
        super().__init__(url)
        self.sent = (url, scope)


def _services_the_gateway_makes() -> set[str]:
    aws = Aws.__new__(Aws)  # the properties only name their service
    names = set()
    for attribute in vars(Aws).values():
        if isinstance(attribute, property) and attribute.fget is not None:
            try:
                view = attribute.fget(aws)
            except AttributeError:  # a property that reads the (absent) settings
                continue
            if isinstance(view, _Service):
                names.add(view._service)
    return names


def _session(loader: Loader | None) -> botocore.session.Session:
    session = botocore.session.Session()
    session.set_credentials("AKIDEXAMPLE", "secret-example")
    if loader is not None:
        session.register_component("data_loader", loader)
    return session


def _where_sent(session: botocore.session.Session, service: str, region: str) -> tuple[str, str]:
    client: Any = session.create_client(service, region_name=region)

    def capture(request: Any, **_: Any) -> None:
        authorization = request.headers["Authorization"].decode()
        scope = authorization.split("Credential=")[1].split(",")[0]  # key/date/region/svc/...
        raise _Captured(request.url, scope.split("/", 2)[2])

    client.meta.events.register("before-send", capture)
    with pytest.raises(_Captured) as sent:
        getattr(client, _PROBES[service])()
    return sent.value.sent


def test_the_table_names_every_service_the_gateway_makes_by_botocores_prefix() -> None:
    services = _services_the_gateway_makes()
    assert services == set(ENDPOINT_PREFIXES) == set(_PROBES)
    loader = Loader()
    for service in services:
        metadata = loader.load_service_model(service, "service-2")["metadata"]
        assert metadata["endpointPrefix"] == ENDPOINT_PREFIXES[service], service


@pytest.mark.parametrize("region", _REGIONS)
def test_every_client_goes_where_and_signs_as_with_botocores_loader(region: str) -> None:
    stock, lean = _session(None), _session(LeanLoader([]))
    for service in sorted(ENDPOINT_PREFIXES):
        assert _where_sent(lean, service, region) == _where_sent(stock, service, region), service


def test_the_endpoint_table_keeps_only_our_services_in_every_partition() -> None:
    table, _ = LeanLoader([]).load_data_with_path("endpoints")
    partitions = {p["partition"]: set(p["services"]) for p in table["partitions"]}
    assert {"aws", "aws-cn", "aws-us-gov"} <= set(partitions)
    assert set().union(*partitions.values()) <= set(ENDPOINT_PREFIXES.values())
    assert {"lambda", "monitoring", "logs"} <= partitions["aws"]


def test_models_lose_their_documentation_but_keep_every_shape_and_operation() -> None:
    stock = Loader().load_service_model("s3", "service-2")
    lean = LeanLoader([]).load_service_model("s3", "service-2")
    assert lean is not stock  # the stock loader's cache is its own
    assert set(lean["operations"]) == set(stock["operations"])
    assert set(lean["shapes"]) == set(stock["shapes"])
    assert "documentation" in stock["operations"]["ListBuckets"]
    assert "documentation" not in lean["operations"]["ListBuckets"]
    assert not _documented(lean["shapes"])
    # botocore reads the text of client context parameters: those keep theirs.
    assert lean["clientContextParams"] == stock["clientContextParams"]
    client: Any = _session(LeanLoader([])).create_client("s3", region_name="us-east-1")
    assert client.meta.service_model.client_context_parameters


def _documented(value: Any) -> bool:
    if isinstance(value, dict):
        return isinstance(value.get("documentation"), str) or any(
            _documented(v) for v in value.values()
        )
    if isinstance(value, list):
        return any(_documented(v) for v in value)
    return False
