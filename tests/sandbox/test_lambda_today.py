"""The sandbox's Lambda as AWS's is today, over HTTP with plain boto3: reserved concurrency 0,
LoggingConfig, the 4 KB environment limit and UpdateFunctionCode (patches lambda_concurrency,
lambda_logging_config, lambda_environment_limit, lambda_code_update).

Every test runs on a ManualClock: an update window ends exactly when the test advances time.
"""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.awslambda.models import lambda_backends

from optimizer_async.aws.limits import MAX_ENVIRONMENT_BYTES, environment_size
from optimizer_async.sandbox.clock import ManualClock
from optimizer_async.sandbox.patches.lambda_logging_config import logging_of
from optimizer_async.sandbox.seeder import Seeder
from optimizer_async.sandbox.server import EmbeddedSandbox
from tests.conftest import ClientFactory
from tests.sandbox.helpers import make_function, make_role, model_now, outcomes, whole_hour

pytestmark = [pytest.mark.usefixtures("clock"), pytest.mark.sandbox_only]

ACCOUNT = "123456789012"
TOO_LARGE = (
    "Lambda was unable to configure your environment variables because the environment "
    "variables you have provided exceeded the 4KB limit. String measured: "
)
LEVEL_NEEDS_JSON = (
    'LogLevel is not supported when LogFormat is set to "Text". Remove LogLevel from your '
    'request or change the LogFormat to "JSON" and try again.'
)


def _code(error: ClientError) -> str:
    return str(error.response["Error"]["Code"])


def _message(error: ClientError) -> str:
    return str(error.response["Error"]["Message"])


def _zip(text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", text)
    return buffer.getvalue()


def _variables(total_bytes: int) -> dict[str, str]:
    """Variables measuring exactly `total_bytes`, with two-byte characters in a value."""
    fixed = {"SHORT": "é"}  # {"SHORT":"é","PAD":""} is 23 bytes
    pad = total_bytes - environment_size({**fixed, "PAD": ""})
    return {**fixed, "PAD": "x" * pad}


# --- reserved concurrency 0 ------------------------------------------------------------


def test_reservation_zero_is_kept_and_reported(client: ClientFactory) -> None:
    lam = client("lambda", attempts=1)
    role = make_role(client("iam"), "role-zero")
    for name in ("fn-zero", "fn-big"):
        make_function(lam, name, role)
    assert "Concurrency" not in lam.get_function(FunctionName="fn-zero")

    lam.put_function_concurrency(FunctionName="fn-zero", ReservedConcurrentExecutions=0)
    assert lam.get_function(FunctionName="fn-zero")["Concurrency"] == {
        "ReservedConcurrentExecutions": 0
    }
    answer = lam.get_function_concurrency(FunctionName="fn-zero")
    assert answer["ReservedConcurrentExecutions"] == 0
    # 0 reserves nothing: the other function may still take all but the floor of 100
    lam.put_function_concurrency(FunctionName="fn-big", ReservedConcurrentExecutions=900)
    assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 100

    lam.delete_function_concurrency(FunctionName="fn-zero")
    assert "Concurrency" not in lam.get_function(FunctionName="fn-zero")
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(
        FunctionName="fn-zero"
    )


def test_reservation_zero_throttles_every_call(
    client: ClientFactory, sandbox: EmbeddedSandbox, clock: ManualClock
) -> None:
    seeder = Seeder(sandbox.endpoint_url, functions_per_env=2, profiles=["steady", "steady"])
    stopped, running = seeder.seed(["zero"])[0].functions
    client("lambda").put_function_concurrency(FunctionName=stopped, ReservedConcurrentExecutions=0)
    clock.advance(3600)
    start = whole_hour(model_now(sandbox))  # after the reservation took effect
    found = outcomes(sandbox, start, start + timedelta(days=1))

    assert found[stopped]["reservedConcurrency"] == 0
    assert found[stopped]["invocations"] == 0
    assert found[stopped]["errors"] == 0
    assert found[running]["throttles"] == 0
    assert found[running]["invocations"] > 0
    assert found[stopped]["throttles"] == pytest.approx(found[running]["invocations"])


# --- LoggingConfig -----------------------------------------------------------------------


def test_logging_config_defaults_everywhere(client: ClientFactory) -> None:
    lam = client("lambda")
    created = make_function(lam, "fn-log", make_role(client("iam"), "role-log"))
    default = {"LogFormat": "Text", "LogGroup": "/aws/lambda/fn-log"}
    assert created["LoggingConfig"] == default
    assert lam.get_function(FunctionName="fn-log")["Configuration"]["LoggingConfig"] == default
    assert lam.get_function_configuration(FunctionName="fn-log")["LoggingConfig"] == default
    listed = lam.list_functions()["Functions"]
    assert [f["LoggingConfig"] for f in listed] == [default]
    fn = lambda_backends[ACCOUNT]["us-east-1"].get_function("fn-log")
    assert logging_of(fn) == ("/aws/lambda/fn-log", "Text")


def test_json_logging_to_a_shared_group(client: ClientFactory) -> None:
    lam = client("lambda")
    role = make_role(client("iam"), "role-shared")
    shared = {"LogFormat": "JSON", "LogGroup": "/shared/app#1"}
    for name in ("fn-s1", "fn-s2"):
        created = make_function(lam, name, role, LoggingConfig=shared)
        assert created["LoggingConfig"] == {
            "LogFormat": "JSON",
            "ApplicationLogLevel": "INFO",  # AWS's default levels for the JSON format
            "SystemLogLevel": "INFO",
            "LogGroup": "/shared/app#1",
        }
    backend = lambda_backends[ACCOUNT]["us-east-1"]
    for name in ("fn-s1", "fn-s2"):
        fn = backend.get_function(name)
        assert logging_of(fn) == ("/shared/app#1", "JSON")
        assert vars(fn)["logging_config"]["LogGroup"] == "/shared/app#1"  # what others read


def test_an_update_changes_only_what_it_names(
    client: ClientFactory, sandbox: EmbeddedSandbox
) -> None:
    lam = client("lambda")
    make_function(lam, "fn-upd", make_role(client("iam"), "role-upd"))

    def update(**logging: str) -> dict[str, str]:
        answer = lam.update_function_configuration(FunctionName="fn-upd", LoggingConfig=logging)
        config: dict[str, str] = lam.get_function_configuration(FunctionName="fn-upd")[
            "LoggingConfig"
        ]
        assert answer["LoggingConfig"] == config
        return config

    with sandbox.configured(update_s=0.0):
        assert update(LogGroup="/custom/g") == {"LogFormat": "Text", "LogGroup": "/custom/g"}
        assert update(LogFormat="JSON", ApplicationLogLevel="DEBUG") == {
            "LogFormat": "JSON",
            "ApplicationLogLevel": "DEBUG",
            "SystemLogLevel": "INFO",
            "LogGroup": "/custom/g",
        }
        assert update(SystemLogLevel="WARN")["ApplicationLogLevel"] == "DEBUG"
        assert update(LogFormat="Text") == {"LogFormat": "Text", "LogGroup": "/custom/g"}
        # other settings leave it alone
        lam.update_function_configuration(FunctionName="fn-upd", MemorySize=256)
        config = lam.get_function_configuration(FunctionName="fn-upd")["LoggingConfig"]
    assert config == {"LogFormat": "Text", "LogGroup": "/custom/g"}


@pytest.mark.parametrize(
    ("logging", "code", "says"),
    [
        ({"LogFormat": "XML"}, "ValidationException", "Member must satisfy enum value set"),
        ({"LogGroup": "has space"}, "ValidationException", "regular expression pattern"),
        ({"LogGroup": "g" * 513}, "ValidationException", "less than or equal to 512"),
        (
            {"LogFormat": "JSON", "SystemLogLevel": "TRACE"},
            "ValidationException",
            "[DEBUG, INFO, WARN]",
        ),
        ({"ApplicationLogLevel": "DEBUG"}, "InvalidParameterValueException", LEVEL_NEEDS_JSON),
        (
            {"LogFormat": "Text", "SystemLogLevel": "WARN"},
            "InvalidParameterValueException",
            LEVEL_NEEDS_JSON,
        ),
    ],
)
def test_bad_logging_config_is_refused_and_changes_nothing(
    client: ClientFactory,
    sandbox: EmbeddedSandbox,
    logging: dict[str, str],
    code: str,
    says: str,
) -> None:
    lam = client("lambda", attempts=1)
    role = make_role(client("iam"), "role-bad")
    with pytest.raises(ClientError) as refused_create:
        make_function(lam, "fn-never", role, LoggingConfig=logging)
    assert (_code(refused_create.value), says in _message(refused_create.value)) == (code, True)
    with pytest.raises(ClientError, match="Function not found"):
        lam.get_function(FunctionName="fn-never")

    make_function(lam, "fn-bad", role)
    before = lam.get_function_configuration(FunctionName="fn-bad")
    with sandbox.configured(update_s=5.0):
        with pytest.raises(ClientError) as refused:
            lam.update_function_configuration(FunctionName="fn-bad", LoggingConfig=logging)
        assert (_code(refused.value), says in _message(refused.value)) == (code, True)
        after = lam.get_function_configuration(FunctionName="fn-bad")
        assert after["LastUpdateStatus"] == "Successful"  # no update window was opened
        assert (after["RevisionId"], after["LoggingConfig"]) == (
            before["RevisionId"],
            before["LoggingConfig"],
        )


def test_logging_update_goes_through_the_update_lifecycle(
    client: ClientFactory, sandbox: EmbeddedSandbox, clock: ManualClock
) -> None:
    lam = client("lambda", attempts=1)
    make_function(lam, "fn-life", make_role(client("iam"), "role-life"))
    with sandbox.configured(update_s=1.0, update_failure_rate=1.0):
        answer = lam.update_function_configuration(
            FunctionName="fn-life", LoggingConfig={"LogFormat": "JSON", "LogGroup": "/x/y"}
        )
        assert answer["LastUpdateStatus"] == "InProgress"
        with pytest.raises(ClientError) as conflict:
            lam.update_function_configuration(
                FunctionName="fn-life", LoggingConfig={"LogFormat": "Text"}
            )
        assert _code(conflict.value) == "ResourceConflictException"
        clock.advance(1.0)
        config = lam.get_function_configuration(FunctionName="fn-life")
    assert config["LastUpdateStatus"] == "Failed"
    assert config["LoggingConfig"] == {"LogFormat": "Text", "LogGroup": "/aws/lambda/fn-life"}


# --- the 4 KB environment limit ----------------------------------------------------------


def test_environment_size_is_the_compact_json_in_utf8() -> None:
    assert environment_size({}) == len(b"{}")
    assert environment_size({"BUCKET": "amzn-s3-demo-bucket", "KEY": "file.txt"}) == 49
    assert environment_size({"A": "é"}) == len('{"A":"é"}'.encode())  # é takes two bytes
    assert environment_size({"Q": 'say "hi"'}) == len(b'{"Q":"say \\"hi\\""}')
    assert MAX_ENVIRONMENT_BYTES == 4096


def test_environment_of_exactly_4096_bytes_is_accepted(
    client: ClientFactory, sandbox: EmbeddedSandbox
) -> None:
    lam = client("lambda", attempts=1)
    role = make_role(client("iam"), "role-env")
    variables = _variables(4096)
    assert environment_size(variables) == 4096
    created = make_function(lam, "fn-env", role, Environment={"Variables": variables})
    assert created["Environment"]["Variables"] == variables
    with sandbox.configured(update_s=0.0):
        answer = lam.update_function_configuration(
            FunctionName="fn-env", Environment={"Variables": _variables(4095)}
        )
    assert answer["Environment"]["Variables"]["PAD"] == "x" * (len(variables["PAD"]) - 1)


def test_environment_over_4096_bytes_is_refused_and_changes_nothing(
    client: ClientFactory, sandbox: EmbeddedSandbox
) -> None:
    lam = client("lambda", attempts=1)
    role = make_role(client("iam"), "role-big")
    too_big = _variables(4097)
    with pytest.raises(ClientError) as refused_create:
        make_function(lam, "fn-never", role, Environment={"Variables": too_big})
    assert _code(refused_create.value) == "InvalidParameterValueException"
    assert _message(refused_create.value) == (
        TOO_LARGE + '{"SHORT":"é","PAD":"' + too_big["PAD"] + '"}'
    )

    make_function(lam, "fn-big", role, Environment={"Variables": {"KEEP": "me"}})
    before = lam.get_function_configuration(FunctionName="fn-big")
    with sandbox.configured(update_s=5.0):
        with pytest.raises(ClientError) as refused:
            lam.update_function_configuration(
                FunctionName="fn-big", Environment={"Variables": too_big}, MemorySize=512
            )
        assert _code(refused.value) == "InvalidParameterValueException"
        assert _message(refused.value).startswith(TOO_LARGE)
        after = lam.get_function_configuration(FunctionName="fn-big")
        assert after["LastUpdateStatus"] == "Successful"  # no update window
        assert after["RevisionId"] == before["RevisionId"]
        assert (after["Environment"], after["MemorySize"]) == ({"Variables": {"KEEP": "me"}}, 3008)
        # and the next update is not refused as a conflict
        lam.update_function_configuration(FunctionName="fn-big", MemorySize=512)


# --- UpdateFunctionCode ------------------------------------------------------------------


def test_code_update_with_architectures_goes_through_the_lifecycle(
    client: ClientFactory, sandbox: EmbeddedSandbox, clock: ManualClock
) -> None:
    lam = client("lambda", attempts=1)
    created = make_function(lam, "fn-arm", make_role(client("iam"), "role-arm"))
    assert created["Architectures"] == ["x86_64"]
    with sandbox.configured(update_s=1.0):
        answer = lam.update_function_code(
            FunctionName="fn-arm", ZipFile=_zip("arm = 1\n"), Architectures=["arm64"]
        )
        assert answer["LastUpdateStatus"] == "InProgress"
        assert answer["Architectures"] == ["arm64"]
        assert answer["CodeSha256"] != created["CodeSha256"]
        assert answer["RevisionId"] != created["RevisionId"]
        with pytest.raises(ClientError) as conflict:
            lam.update_function_code(FunctionName="fn-arm", ZipFile=_zip("again = 1\n"))
        assert _code(conflict.value) == "ResourceConflictException"
        clock.advance(1.0)
        config = lam.get_function(FunctionName="fn-arm")["Configuration"]
    assert (config["LastUpdateStatus"], config["Architectures"]) == ("Successful", ["arm64"])
    assert config["CodeSha256"] == answer["CodeSha256"]
    fn = lambda_backends[ACCOUNT]["us-east-1"].get_function("fn-arm")
    assert fn.architectures == ["arm64"]


def test_code_from_s3_publish_and_dry_run(client: ClientFactory, sandbox: EmbeddedSandbox) -> None:
    lam, s3 = client("lambda", attempts=1), client("s3")
    created = make_function(lam, "fn-s3", make_role(client("iam"), "role-s3"))
    s3.create_bucket(Bucket="code-bucket")
    s3.put_object(Bucket="code-bucket", Key="pkg.zip", Body=_zip("from_s3 = 1\n"))
    with sandbox.configured(update_s=0.0):
        dry = lam.update_function_code(
            FunctionName="fn-s3", S3Bucket="code-bucket", S3Key="pkg.zip", DryRun=True
        )
        unchanged = lam.get_function_configuration(FunctionName="fn-s3")
        assert (dry["CodeSha256"], unchanged["CodeSha256"]) == (created["CodeSha256"],) * 2
        assert unchanged["RevisionId"] == created["RevisionId"]

        from_s3 = lam.update_function_code(
            FunctionName="fn-s3", S3Bucket="code-bucket", S3Key="pkg.zip"
        )
        assert from_s3["CodeSha256"] != created["CodeSha256"]

        published = lam.update_function_code(
            FunctionName="fn-s3", ZipFile=_zip("v1 = 1\n"), Architectures=["arm64"], Publish=True
        )
    assert published["Version"] == "1"
    assert published["FunctionArn"].endswith(":fn-s3:1")
    assert published["Architectures"] == ["arm64"]
    versions = lam.list_versions_by_function(FunctionName="fn-s3")["Versions"]
    assert [v["Version"] for v in versions] == ["$LATEST", "1"]


@pytest.mark.parametrize(
    ("arguments", "code", "says"),
    [
        (
            {"Architectures": ["arm64", "x86_64"]},
            "ValidationException",
            "Member must have length less than or equal to 1",
        ),
        ({"Architectures": ["sparc"]}, "ValidationException", "[x86_64, arm64]"),
        (
            {"S3Bucket": "no-such-bucket", "S3Key": "pkg.zip"},
            "InvalidParameterValueException",
            "S3 Error Code: NoSuchBucket",
        ),
        (
            {"S3Bucket": "code-bucket", "S3Key": "missing.zip"},
            "InvalidParameterValueException",
            "S3 Error Code: NoSuchKey",
        ),
        (
            {"S3Bucket": "code-bucket", "S3Key": "pkg.zip", "S3ObjectVersion": "no-such-version"},
            "InvalidParameterValueException",
            "S3 Error Code: NoSuchVersion",
        ),
    ],
)
def test_bad_code_update_is_refused_and_changes_nothing(
    client: ClientFactory,
    sandbox: EmbeddedSandbox,
    arguments: dict[str, Any],
    code: str,
    says: str,
) -> None:
    lam, s3 = client("lambda", attempts=1), client("s3")
    s3.create_bucket(Bucket="code-bucket")
    s3.put_bucket_versioning(Bucket="code-bucket", VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket="code-bucket", Key="pkg.zip", Body=_zip("in_s3 = 1\n"))
    created = make_function(lam, "fn-code", make_role(client("iam"), "role-code"))
    if "S3Bucket" not in arguments:
        arguments = {**arguments, "ZipFile": _zip("new = 1\n")}
    with sandbox.configured(update_s=5.0):
        with pytest.raises(ClientError) as refused:
            lam.update_function_code(FunctionName="fn-code", **arguments)
        assert _code(refused.value) == code
        assert says in _message(refused.value)
        after = lam.get_function_configuration(FunctionName="fn-code")
    assert after["LastUpdateStatus"] == "Successful"
    assert (after["CodeSha256"], after["RevisionId"], after["Architectures"]) == (
        created["CodeSha256"],
        created["RevisionId"],
        ["x86_64"],
    )


def test_failed_code_update_keeps_the_previous_code(
    client: ClientFactory, sandbox: EmbeddedSandbox, clock: ManualClock
) -> None:
    lam = client("lambda", attempts=1)
    created = make_function(lam, "fn-fail", make_role(client("iam"), "role-fail"))
    with sandbox.configured(update_s=1.0, update_failure_rate=1.0):
        lam.update_function_code(
            FunctionName="fn-fail", ZipFile=_zip("broken = 1\n"), Architectures=["arm64"]
        )
        clock.advance(1.0)
        config = lam.get_function_configuration(FunctionName="fn-fail")
    assert config["LastUpdateStatus"] == "Failed"
    assert (config["CodeSha256"], config["Architectures"]) == (created["CodeSha256"], ["x86_64"])
