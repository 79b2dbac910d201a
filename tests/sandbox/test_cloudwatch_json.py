"""CloudWatch over AWS JSON 1.0, as recent SDKs speak it, and internal failures in AWS's shape.

The installed botocore still speaks query to CloudWatch; these tests give it a variant of
its own CloudWatch model switched to JSON 1.0 (as newer botocore ships it), so requests are
signed, serialised and parsed exactly as a JSON-speaking SDK's would be.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.cloudwatch.models import CloudWatchBackend
from moto.core.responses import BaseResponse

from optimizer_async.sandbox.seeder import Seeder
from optimizer_async.sandbox.server import EmbeddedSandbox
from tests.conftest import REGION, ClientFactory


def _json_model_dir(root: Path) -> Path:
    """A botocore data directory whose CloudWatch model speaks JSON 1.0."""
    loader = botocore.session.get_session().get_component("data_loader")
    model: dict[str, Any] = loader.load_service_model("cloudwatch", "service-2")
    version = model["metadata"]["apiVersion"]
    model["metadata"].update(
        protocol="json",
        protocols=["json", "query"],
        jsonVersion="1.0",
        targetPrefix="GraniteServiceVersion20100801",
        awsQueryCompatible={},
    )
    folder = root / "cloudwatch" / version
    folder.mkdir(parents=True)
    (folder / "service-2.json").write_text(json.dumps(model))
    return root


@pytest.fixture
def json_cloudwatch(tmp_path: Path, sandbox: EmbeddedSandbox) -> tuple[Any, list[str]]:
    """A CloudWatch client speaking JSON 1.0, and the Content-Types it sent."""
    core = botocore.session.Session()
    core.set_config_variable("data_path", str(_json_model_dir(tmp_path)))
    session = boto3.session.Session(botocore_session=core, region_name=REGION)
    client = session.client(
        "cloudwatch",
        endpoint_url=sandbox.endpoint_url,
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )
    seen: list[str] = []
    client.meta.events.register(
        "before-send.cloudwatch.*",
        lambda request, **_: seen.append(request.headers["Content-Type"].decode()),
    )
    return client, seen


def _by_call(sandbox: EmbeddedSandbox) -> dict[tuple[str, str], int]:
    return {(row["operation"], row["outcome"]): row["count"] for row in sandbox.stats()["calls"]}


def test_alarms_over_json(json_cloudwatch: Any, sandbox: EmbeddedSandbox) -> None:
    json_cloudwatch, sent_content_types = json_cloudwatch
    json_cloudwatch.put_metric_alarm(
        AlarmName="fn-errors",
        Namespace="AWS/Lambda",
        MetricName="Errors",
        Dimensions=[{"Name": "FunctionName", "Value": "fn"}],
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1.0,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    (alarm,) = json_cloudwatch.describe_alarms(AlarmNames=["fn-errors"])["MetricAlarms"]
    assert alarm["Threshold"] == 1.0
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": "fn"}]
    assert isinstance(alarm["StateUpdatedTimestamp"], datetime)
    assert set(sent_content_types) == {"application/x-amz-json-1.0"}
    assert _by_call(sandbox) == {("PutMetricAlarm", "ok"): 1, ("DescribeAlarms", "ok"): 1}


def test_modelled_metrics_over_json(
    json_cloudwatch: Any, client: ClientFactory, sandbox: EmbeddedSandbox
) -> None:
    (environment,) = Seeder(sandbox.endpoint_url, profiles=["steady"]).seed(["dev"])
    (function,) = environment.functions
    end = datetime.now(UTC).replace(microsecond=0)
    arguments: dict[str, Any] = {
        "MetricDataQueries": [
            {
                "Id": "invocations",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/Lambda",
                        "MetricName": "Invocations",
                        "Dimensions": [{"Name": "FunctionName", "Value": function}],
                    },
                    "Period": 86_400,
                    "Stat": "Sum",
                },
            }
        ],
        "StartTime": end - timedelta(days=3),
        "EndTime": end,
    }
    over_json = json_cloudwatch[0].get_metric_data(**arguments)["MetricDataResults"]
    over_query = client("cloudwatch").get_metric_data(**arguments)["MetricDataResults"]
    assert over_json[0]["Values"] == over_query[0]["Values"]
    assert len(over_json[0]["Values"]) == 3
    assert sum(over_json[0]["Values"]) > 0


def test_errors_over_json(json_cloudwatch: Any, sandbox: EmbeddedSandbox) -> None:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(ClientError) as refused:
        json_cloudwatch[0].get_metric_data(MetricDataQueries=[], StartTime=moment, EndTime=moment)
    assert refused.value.response["Error"]["Code"] == "ValidationError"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert _by_call(sandbox) == {("GetMetricData", "error:ValidationError"): 1}


def _raise(*_: Any, **__: Any) -> Any:
    raise RuntimeError("a bug inside the sandbox")


@pytest.mark.parametrize("protocol", ["query", "json"])
def test_an_exception_inside_is_an_internal_failure(
    protocol: str,
    json_cloudwatch: Any,
    client: ClientFactory,
    sandbox: EmbeddedSandbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(CloudWatchBackend, "describe_alarms", _raise)
    cloudwatch = json_cloudwatch[0] if protocol == "json" else client("cloudwatch", attempts=1)
    with pytest.raises(ClientError) as failed:
        cloudwatch.describe_alarms()
    assert failed.value.response["Error"]["Code"] == "InternalFailure"
    assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert _by_call(sandbox) == {("DescribeAlarms", "error:InternalFailure"): 1}


@pytest.mark.parametrize(
    ("service", "call", "code"),
    [
        ("lambda", lambda c: c.list_functions(), "ServiceException"),
        ("logs", lambda c: c.describe_log_groups(), "InternalFailure"),
    ],
)
def test_other_protocols_fail_in_their_own_shape(
    service: str,
    call: Callable[[Any], object],
    code: str,
    client: ClientFactory,
    sandbox: EmbeddedSandbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(BaseResponse, "call_action", _raise)
    with pytest.raises(ClientError) as failed:
        call(client(service, attempts=1))
    assert failed.value.response["Error"]["Code"] == code
    assert sandbox.stats()["by_outcome"] == {f"error:{code}": 1}
