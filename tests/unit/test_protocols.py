"""Which operation a request is, from the SigV4 scope and botocore's own wire model."""

from __future__ import annotations

import pytest

from optimizer_async.sandbox.protocols import identify


def _environ(
    service: str, method: str, path: str, query: str = "", **headers: str
) -> dict[str, str]:
    auth = (
        f"AWS4-HMAC-SHA256 Credential=AKID/20261127/eu-west-1/{service}/aws4_request, Signature=x"
    )
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query}
    environ["HTTP_AUTHORIZATION"] = auth
    environ.update({f"HTTP_{k.upper()}": v for k, v in headers.items()})
    return environ


@pytest.mark.parametrize(
    ("service", "method", "path", "query", "operation"),
    [
        ("lambda", "GET", "/2015-03-31/functions/f", "", "GetFunction"),
        ("lambda", "GET", "/2015-03-31/functions/f/configuration", "", "GetFunctionConfiguration"),
        (
            "lambda",
            "PUT",
            "/2015-03-31/functions/f/configuration",
            "",
            "UpdateFunctionConfiguration",
        ),
        ("lambda", "PUT", "/2017-10-31/functions/f/concurrency", "", "PutFunctionConcurrency"),
        ("lambda", "GET", "/2016-08-19/account-settings/", "", "GetAccountSettings"),
        ("lambda", "GET", "/2015-03-31/functions/", "", "ListFunctions"),
        ("s3", "GET", "/bucket", "list-type=2", "ListObjectsV2"),
        ("s3", "GET", "/bucket", "", "ListObjects"),
        ("s3", "GET", "/bucket", "versioning", "GetBucketVersioning"),
        ("s3", "PUT", "/bucket/some/key.zip", "", "PutObject"),
        ("s3", "GET", "/", "", "ListBuckets"),
    ],
)
def test_rest_operations(service: str, method: str, path: str, query: str, operation: str) -> None:
    call = identify(_environ(service, method, path, query), b"")
    assert (call.service, call.region, call.operation) == (service, "eu-west-1", operation)


def test_json_protocol_uses_the_target_header() -> None:
    environ = _environ("logs", "POST", "/", X_AMZ_TARGET="Logs_20140328.PutRetentionPolicy")
    assert identify(environ, b"{}").operation == "PutRetentionPolicy"


def test_query_protocol_reads_the_action_and_maps_the_signing_name() -> None:
    call = identify(
        _environ("monitoring", "POST", "/"), b"Action=PutMetricAlarm&Version=2010-08-01"
    )
    assert (call.service, call.operation) == ("cloudwatch", "PutMetricAlarm")


def test_unsigned_requests_are_unknown() -> None:
    assert identify({"PATH_INFO": "/moto-api/reset"}, b"").service == "Unknown"


def test_required_headers_tell_copy_from_put() -> None:
    environ = _environ("s3", "PUT", "/bucket/key", X_AMZ_COPY_SOURCE="other/key")
    assert identify(environ, b"").operation == "CopyObject"


def test_current_operation_wins_over_its_deprecated_twin() -> None:
    environ = _environ("s3", "PUT", "/bucket", "lifecycle")
    assert identify(environ, b"").operation == "PutBucketLifecycleConfiguration"
