"""The sandbox's shortcuts past moto's and the standard library's slow paths answer as they did.

Each shortcut is compared with the path it replaces, on the same input.
"""

from __future__ import annotations

import datetime
import http.client
import io
import random
import re
from typing import Any

import pytest
import xmltodict  # type: ignore[import-untyped]
from werkzeug.test import EnvironBuilder

from optimizer_async.sandbox import dispatch
from optimizer_async.sandbox.patches import xml_unparse
from optimizer_async.sandbox.request_handler import _message
from optimizer_async.sandbox.server import EmbeddedSandbox
from tests.conftest import ClientFactory

_NAMES = ["a", "Member", "x-y", "ns:el", "#text", "@attr", "@xmlns", "#comment", "bad name", ""]
_LEAVES: list[Any] = [None, "", "t&<>\"'\n", 1, 2.5, True, False, b"by\xfftes", "plain"]
_LEAVES.append(datetime.datetime(2020, 1, 1))


def _value(rng: random.Random, depth: int) -> Any:
    roll = rng.random()
    if depth > 3 or roll < 0.3:
        return rng.choice(_LEAVES)
    if roll < 0.55:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if roll < 0.6:
        return tuple(_value(rng, depth + 1) for _ in range(rng.randint(0, 2)))
    return {rng.choice(_NAMES): _value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def _outcome(unparse: Any, document: Any, **options: Any) -> tuple[object, ...]:
    try:
        return ("text", unparse(document, **options))
    except Exception as error:
        return ("error", type(error), str(error))


def test_xml_writer_matches_xmltodict_text_and_errors() -> None:
    rng = random.Random(12)
    for _ in range(3000):
        if rng.random() < 0.8:
            document = {rng.choice(_NAMES[:4]): _value(rng, 0)}
        else:
            document = {name: _value(rng, 1) for name in rng.sample(_NAMES, 2)}
        for full in (True, False):
            for short in (True, False):
                options = {"full_document": full, "short_empty_elements": short, "pretty": False}
                assert _outcome(xml_unparse.unparse, document, **options) == _outcome(
                    xmltodict.unparse, document, **options
                ), document


def test_xml_writer_is_what_moto_serializes_with() -> None:
    xml_unparse.apply()
    from moto.core import serialize

    seen = vars(serialize)["xmltodict"]
    assert seen.unparse is xml_unparse.unparse
    assert seen.parse is xmltodict.parse


@pytest.mark.parametrize(
    "block",
    [
        b"Host: x\r\nContent-Type: text/plain\r\nX-Amz-Date:  20260101T000000Z \r\n",
        b"Host: x\r\nDup: 1\r\nDup: 2\r\nEmpty:\r\nLatin: caf\xe9\r\n",
        b"Host: x\r\nFolded: one\r\n two\r\nAfter: 3\r\n",  # goes the email parser's way
        b"Host: x\r\nNo colon here\r\nAfter: 3\r\n",
        b"x-amz-meta-my_key: v\nHost: x\n",
    ],
)
def test_header_lines_read_as_the_standard_library_reads_them(block: bytes) -> None:
    expected = http.client.parse_headers(io.BytesIO(block + b"\r\n"))
    lines = io.BytesIO(block + b"\r\n").readlines()
    found = _message(lines, http.client.HTTPMessage)
    assert found.items() == expected.items()
    assert found.get_payload() == expected.get_payload()


def test_signed_request_calls_moto_view_as_flask_would(sandbox: EmbeddedSandbox) -> None:
    def request() -> EnvironBuilder:  # a builder's body can be read once
        return EnvironBuilder(
            method="POST",
            path="/",
            data="Action=ListRoles&Version=2010-05-08",
            content_type="application/x-www-form-urlencoded; charset=utf-8",
            headers=[
                (
                    "Authorization",
                    "AWS4-HMAC-SHA256 Credential=sandbox/20260101/us-east-1/iam/aws4_request, "
                    "SignedHeaders=host, Signature=0",
                ),
                ("Host", "127.0.0.1"),
            ],
        )

    dispatcher = dispatch.CachingDispatcher()

    def answer(direct: bool) -> tuple[str, dict[str, str], bytes]:
        environ = request().get_environ()
        seen: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], *_: Any) -> Any:
            seen["status"], seen["headers"] = status, dict(headers)
            return lambda data: None

        app: Any = dispatcher if direct else dispatcher.get_application(environ)
        body = b"".join(app(environ, start_response))
        body = re.sub(rb"<RequestId>[^<]*</RequestId>", b"", body)
        headers = {k: v for k, v in seen["headers"].items() if k.lower() != "x-amzn-requestid"}
        return seen["status"], headers, body

    direct = answer(direct=True)
    assert direct[0] == "200 OK"
    assert direct == answer(direct=False)


def test_iam_and_s3_still_answer_through_the_direct_view(client: ClientFactory) -> None:
    iam, s3 = client("iam"), client("s3")
    iam.create_role(RoleName="r", AssumeRolePolicyDocument="{}")
    assert iam.get_role(RoleName="r")["Role"]["RoleName"] == "r"
    s3.create_bucket(Bucket="fast-paths")
    s3.put_object(Bucket="fast-paths", Key="k", Body=b"x", Metadata={"my_key": "v"})
    assert s3.head_object(Bucket="fast-paths", Key="k")["Metadata"] == {"my_key": "v"}
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket="fast-paths", Key="missing")
