"""The sandbox's indexes and caches answer exactly as the scans and writers they replace.

Each shortcut (patches/moto_lookups.py, patches/metric_data_json.py, the model's window memo,
the request handler's writer and drain selector) is compared with moto's or the standard
library's own path on the same inputs, through sequences of writes that could leave a cache
stale.
"""

from __future__ import annotations

import io
import json
import math
import random
import selectors
import socket
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from moto.core.errors import ErrorLookupFactory
from moto.core.responses import ActionResult
from moto.core.serialize import JSONSerializer, XFormedAttributePicker
from moto.core.utils import get_service_model
from moto.iam import models as iam_models
from moto.iam.exceptions import NotFoundException
from moto.iam.models import iam_backends
from moto.secretsmanager.models import SecretsStore

from optimizer_async.sandbox import request_handler
from optimizer_async.sandbox.patches import metric_data_json, moto_lookups
from optimizer_async.sandbox.server import EmbeddedSandbox
from optimizer_async.sandbox.workload import model as workload_model
from optimizer_async.sandbox.workload.profiles import profile_for
from tests.conftest import ClientFactory

_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:"


class _Secret:
    """What the store reads of a secret: its ARN and name."""

    def __init__(self, name: str, arn: str) -> None:
        self.name = name
        self.arn = arn

    def __repr__(self) -> str:
        return f"_Secret({self.name!r}, {self.arn!r})"


def _moto(name: str, store: SecretsStore, key: str) -> tuple[str, object]:
    try:
        return ("ok", moto_lookups.MOTO_SECRETS_LOOKUPS[name](store, key))
    except KeyError as error:
        return ("KeyError", str(error))


def _ours(name: str, store: SecretsStore, key: str) -> tuple[str, object]:
    try:
        return ("ok", getattr(store, name)(key))
    except KeyError as error:
        return ("KeyError", str(error))


def _random_write(rng: random.Random, store: Any, names: list[str]) -> None:
    roll = rng.random()
    name = rng.choice(names)
    arn = _ARN + name + "-" + rng.choice(["abcdef", "ghijkl"])
    if roll < 0.45:
        store[name] = _Secret(name, arn)  # a new secret, or one replaced in place
    elif roll < 0.55:
        store[arn] = _Secret(name, arn)  # a replica: keyed by its ARN, named as its source
    elif roll < 0.6:
        store[name] = _Secret(_ARN + name + "-abcdef", name)  # a name that is an ARN
    elif roll < 0.75:
        store.pop(rng.choice([name, arn, _ARN + name]))
    elif roll < 0.8 and name in dict.keys(store):
        del store[name]
    elif roll < 0.85:
        store.update({name: _Secret(name, arn)})
    elif roll < 0.9:
        store.setdefault(name, _Secret(name, arn))
    elif roll < 0.92:
        store.clear()
    elif roll < 0.95 and len(store):
        store.popitem()


def test_the_secrets_index_finds_what_the_scan_finds_through_any_writes() -> None:
    moto_lookups.apply()
    rng = random.Random(7)
    names = [f"s{index}" for index in range(12)] + ["db/url", "arn-like"]
    for _ in range(40):
        store: Any = SecretsStore()
        for _ in range(60):
            _random_write(rng, store, names)
            probes = [*names, "missing", "", _ARN + "missing"]
            probes += [_ARN + name for name in names]  # partial ARNs: the name's key
            probes += [secret.arn for secret in dict.values(store)]
            for key in probes:
                for lookup in ("__getitem__", "__contains__", "get"):
                    assert _ours(lookup, store, key) == _moto(lookup, store, key), (lookup, key)


def test_a_secret_added_while_the_index_is_current_is_found_at_once() -> None:
    moto_lookups.apply()
    store: Any = SecretsStore()
    store["a"] = _Secret("a", _ARN + "a-x")
    assert "a" in store  # builds the index
    store["b"] = _Secret("b", _ARN + "b-x")
    assert store[_ARN + "b-x"].name == "b"
    assert store.get("b") is dict.__getitem__(store, "b")


def test_roles_remembered_are_the_roles_the_scan_finds(sandbox: EmbeddedSandbox) -> None:
    iam = iam_backends["123456789012"]["aws"]
    document = '{"Version": "2012-10-17", "Statement": []}'

    def scan(attribute: str, value: str) -> object:
        found = [role for role in iam.roles.values() if getattr(role, attribute) == value]
        return found[0] if found else None

    def ours(method: str, value: str) -> object:
        try:
            return getattr(iam, method)(value)
        except NotFoundException:
            return None

    rng = random.Random(3)
    names = [f"role-{index}" for index in range(8)]
    arns: set[str] = set()
    for _ in range(200):
        name = rng.choice(names)
        if scan("name", name) is None:
            role = iam.create_role(name, document, rng.choice(["/", "/p/"]), None, "", [], None)
            arns.add(role.arn)
        elif rng.random() < 0.4:
            iam.delete_role(name)
        for probe in names:
            assert ours("get_role", probe) is scan("name", probe)
        for arn in arns:
            assert ours("get_role_by_arn", arn) is scan("arn", arn)


def test_an_access_keys_account_is_what_the_scan_of_every_account_says(
    sandbox: EmbeddedSandbox,
) -> None:
    (scan,) = moto_lookups.MOTO_ACCOUNT_OF
    assert iam_models.get_account_id_from is not scan
    rng = random.Random(5)
    accounts = ["123456789012", "111111111111", "222222222222"]
    keys = ["sandbox", "AKIAUNKNOWN"]
    for step in range(60):
        account = rng.choice(accounts)
        iam = iam_backends[account]["aws"]
        user = f"user-{step % 5}"
        if user not in iam.users:
            iam.create_user("us-east-1", user)
        roll = rng.random()
        if roll < 0.5 and len(iam.list_access_keys(user)) < 2:
            keys.append(iam.create_access_key(user).access_key_id)
        elif roll < 0.7 and iam.list_access_keys(user):
            iam.delete_access_key(iam.list_access_keys(user)[0].access_key_id, user)
        elif roll < 0.75:
            keys.append(iam.create_temp_access_key().access_key_id)  # as AssumeRole makes
        elif roll < 0.8:
            sandbox.add_account(account, f"role-{step}", trusted_account="123456789012")
        for key in keys:
            assert iam_models.get_account_id_from(key) == scan(key), (step, key)
            assert iam_models.get_account_id_from(key) == scan(key)  # a remembered answer
    sandbox.reset()
    for key in keys:
        assert iam_models.get_account_id_from(key) == scan(key) == "123456789012"


def test_an_error_table_is_built_once_and_is_the_table_moto_builds() -> None:
    moto_lookups.apply()
    for service in ("iam", "sqs", "secretsmanager", "cloudwatch", "lambda"):
        model = get_service_model(service)
        first = ErrorLookupFactory().for_service(model)
        assert ErrorLookupFactory().for_service(model) is first
        built = moto_lookups._error_tables[id(model)][1]
        assert built is first
        for shape in model.error_shapes:
            assert first.from_code(shape.name) is not None
            assert first.from_code(shape.name).name == shape.name


# --- GetMetricData in JSON ------------------------------------------------------------------

_STAMPS: list[Any] = [
    datetime(2026, 1, 1, tzinfo=UTC),
    datetime(2026, 1, 1, 0, 5, 7, 123456, tzinfo=UTC),
    datetime(2026, 1, 2, 3, 4, 5),  # naive: moto takes it as UTC
    datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2))),
]
_VALUES: list[Any] = [0, 1, 2.5, -3.25, 1e300, 123456789012345678, 0.1 + 0.2, math.inf]


def _random_item(rng: random.Random) -> Any:
    roll = rng.random()
    if roll < 0.03:
        return None
    if roll < 0.05:
        return {"id": "x", "Values": [1.0]}  # a key of moto's other spelling: moto's way
    item: dict[str, Any] = {}
    for key in ("id", "label", "timestamps", "values", "status_code", "messages"):
        if rng.random() < (0.97 if key != "messages" else 0.03):
            if key in ("timestamps",):
                item[key] = [rng.choice(_STAMPS) for _ in range(rng.randint(0, 3))]
            elif key == "values":
                item[key] = [rng.choice(_VALUES) for _ in range(rng.randint(0, 3))]
                if rng.random() < 0.02:
                    item[key].append(True)  # not a number moto writes the same way
            elif key == "messages":
                item[key] = [{"Code": "c", "Value": "v"}]
            elif rng.random() < 0.03:
                item[key] = None
            else:
                item[key] = rng.choice(["m0", "Invocations Sum", "Complete", "", 'é"\\'])
    return item


def _serializer() -> Any:
    service = get_service_model("cloudwatch")
    operation = service.operation_model("GetMetricData")
    return JSONSerializer(operation_model=operation, value_picker=XFormedAttributePicker())


def _moto_body(result: Any) -> tuple[object, ...]:
    """moto's own serializer, walking the shape (what the shortcut replaces)."""
    serializer = _serializer()
    try:
        written: dict[str, Any] = {}
        serializer._serialize(written, result, serializer.operation_model.output_shape, "")
        return ("ok", json.dumps(written))
    except Exception as error:
        return ("error", type(error))


def test_metric_data_results_are_written_as_moto_writes_them() -> None:
    metric_data_json.apply()
    rng = random.Random(11)
    written = 0
    for _ in range(400):
        result = {"MetricDataResults": [_random_item(rng) for _ in range(rng.randint(0, 6))]}
        fast = metric_data_json.serialized_results(_serializer(), result)
        if fast is not None:
            written += 1
            assert ("ok", json.dumps(fast)) == _moto_body(result), result
        assert _served(result) == _moto_response(result)
    assert written > 100  # the shortcut did most of them


def _context() -> Any:
    from moto.cloudwatch.responses import CloudWatchResponse
    from moto.core.responses import ActionContext

    service = get_service_model("cloudwatch")
    operation = service.operation_model("GetMetricData")
    return ActionContext(service, operation, JSONSerializer, CloudWatchResponse())


def _served(result: Any) -> tuple[object, ...]:
    """What moto's response machinery answers (the shortcut where it applies)."""
    try:
        return ("ok", *ActionResult(result).execute_result(_context()))
    except Exception as error:
        return ("error", type(error))


def _moto_response(result: Any) -> tuple[object, ...]:
    """moto's own serializer end to end, the shape walked."""
    serializer = _serializer()
    try:
        resp = serializer._create_default_response()
        written: dict[str, Any] = {}
        serializer._serialize(written, result, serializer.operation_model.output_shape, "")
        resp = serializer._serialized_result_to_response(
            resp, result, serializer.operation_model.output_shape, written
        )
    except Exception as error:
        return ("error", type(error))
    return ("ok", resp["status_code"], resp["headers"], resp["body"])


def test_get_metric_data_over_json_answers_as_before(
    sandbox: EmbeddedSandbox, client: ClientFactory
) -> None:
    """End to end: the answer parses and carries every query's points."""
    cloudwatch = client("cloudwatch")
    now = datetime.now(UTC).replace(microsecond=0)
    cloudwatch.put_metric_data(
        Namespace="Custom/Test",
        MetricData=[{"MetricName": "m", "Value": 2.0, "Timestamp": now - timedelta(minutes=3)}],
    )
    answer = cloudwatch.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "q",
                "MetricStat": {
                    "Metric": {"Namespace": "Custom/Test", "MetricName": "m"},
                    "Period": 3600,
                    "Stat": "Sum",
                },
            }
        ],
        StartTime=now - timedelta(hours=1),
        EndTime=now,
    )
    assert [r["Id"] for r in answer["MetricDataResults"]] == ["q"]


# --- the workload model's windows -----------------------------------------------------------


def test_pieces_remembered_within_a_request_are_the_pieces_worked_out() -> None:
    config = workload_model.FunctionConfig(memory_mb=512, timeout_s=30.0, reserved=None)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    model = workload_model.FunctionModel.start("us-east-1", "f", profile_for("steady", "f"), config)
    changed = model.changed(start + timedelta(days=2), memory_mb=1024)
    windows = [(start, start + timedelta(days=d)) for d in (1, 3, 7)]
    expected = {(id(m), w): m.pieces(*w) for m in (model, changed) for w in windows}
    with workload_model.windows_remembered():
        for _ in range(2):
            for m in (model, changed):
                for window in windows:
                    pieces = m.pieces(*window)
                    assert pieces == expected[id(m), window]
                    pieces.clear()  # a caller's list is its own
                    assert m.statistic("AWS/Lambda", "Invocations", "Sum", *window) == (
                        sum(p.invocations for p in expected[id(m), window])
                    )
    assert getattr(workload_model._windows, "memo", None) is None


# --- the request handler's writes -----------------------------------------------------------


class _Recorder:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.sent.append(bytes(data))

    def fileno(self) -> int:
        return -1


def test_held_header_bytes_go_out_with_the_body_and_nothing_is_reordered() -> None:
    recorder = _Recorder()
    writer = request_handler._Writer(recorder)  # type: ignore[arg-type]
    writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # nothing held: sent as it is
    writer.hold(b"HTTP/1.1 200 OK\r\n")
    writer.hold(b"A: b\r\n\r\n")
    assert writer.write(memoryview(b"body")) == 4
    writer.flush()
    writer.hold(b"HTTP/1.1 204 No Content\r\n\r\n")
    writer.flush()
    writer.flush()
    assert recorder.sent == [
        b"HTTP/1.1 100 Continue\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody",
        b"HTTP/1.1 204 No Content\r\n\r\n",
    ]


def test_the_drain_selector_says_what_epoll_says() -> None:
    drained = request_handler._DRAINED
    with selectors.DefaultSelector() as real:
        real.register(drained, selectors.EVENT_READ)
        expected = [(key.fileobj, events) for key, events in real.select(timeout=0.01)]
    shim = request_handler._DrainSelector()
    shim.register(drained, selectors.EVENT_READ)
    assert [(key.fileobj, events) for key, events in shim.select(timeout=0.01)] == expected
    shim.close()
    left, right = socket.socketpair()
    with left, right:
        shim = request_handler._DrainSelector()
        shim.register(left, selectors.EVENT_READ)
        assert shim.select(timeout=0.01) == []  # a real socket, nothing sent: not ready
        right.sendall(b"x")
        assert [key.fileobj for key, _ in shim.select(timeout=1)] == [left]
        shim.close()


@pytest.mark.parametrize("size", [0, 1, 5_000])
def test_an_answer_reads_back_whole_over_a_kept_connection(
    sandbox: EmbeddedSandbox, size: int
) -> None:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", int(sandbox.endpoint_url.rsplit(":")[-1]))
    for _ in range(3):
        connection.request("GET", "/_sandbox/health", headers={"X-Pad": "p" * size})
        answer = connection.getresponse()
        assert answer.status == 200
        assert json.load(io.BytesIO(answer.read())) == {"status": "ok"}
    connection.close()


# --- moto's request id and the REST operation match ------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "",
        '{"FunctionName": "f"}',
        "<R><RequestId>old</RequestId></R>",
        "<R><RequestId>a</RequestId><RequestId>b</RequestId></R>",
        "<RequestId>\n</RequestId>",
        b"<RequestId>x</RequestId>",
        None,
        {"a": 1},
    ],
)
def test_a_request_id_is_filled_in_as_moto_fills_it_in(body: Any) -> None:
    from moto.core import responses as moto_responses

    from optimizer_async.sandbox import dispatch

    def fixed(headers: Any = None) -> str:
        if isinstance(headers, dict):
            headers["x-amzn-requestid"] = "RID"
        return "RID"

    names = vars(moto_responses)
    kept = names["gen_amzn_requestid_long"]
    names["gen_amzn_requestid_long"] = fixed
    try:
        headers: Any = {"status": 200}
        ours = dispatch._enrich_response(headers, body)
        theirs = dispatch._original_enrich({"status": 200}, body)
    finally:
        names["gen_amzn_requestid_long"] = kept
    assert ours == theirs


@pytest.mark.parametrize("service", ["lambda", "s3"])
def test_rest_operations_are_matched_as_by_every_route_in_order(service: str) -> None:
    from optimizer_async.sandbox import protocols

    model: Any = protocols._service_model(service)
    every = [protocols._compile_route(model.operation_model(n)) for n in model.operation_names]

    def reference(environ: dict[str, Any], query: dict[str, list[str]]) -> str:
        method, path = environ["REQUEST_METHOD"], environ["PATH_INFO"]
        best: tuple[int, int, bool, str] | None = None
        for route in every:
            if route.method != method or not route.path.fullmatch(path):
                continue
            if not all(k in query and (v is None or v in query[k]) for k, v in route.query):
                continue
            if not all(header in environ for header in route.headers):
                continue
            rank = (len(route.query) + len(route.headers), route.literal_chars, route.current)
            if best is None or rank > best[:3]:
                best = (*rank, route.operation)
        return best[3] if best else protocols.UNKNOWN

    rng = random.Random(9)
    for _ in range(2000):
        uri = model.operation_model(rng.choice(model.operation_names)).http["requestUri"]
        path = uri.partition("?")[0].replace("{", "").replace("}", "").replace("+", "/x")
        query: dict[str, list[str]] = {}
        for part in filter(None, uri.partition("?")[2].split("&")):
            if rng.random() < 0.8:
                key, _, value = part.partition("=")
                query[key] = [value or "v"]
        environ: dict[str, Any] = {
            "REQUEST_METHOD": rng.choice(["GET", "PUT", "POST", "DELETE", "HEAD"]),
            "PATH_INFO": path,
        }
        if rng.random() < 0.3:
            environ["HTTP_X_AMZ_COPY_SOURCE"] = "b/k"
        assert protocols._match_rest(service, environ, query) == reference(environ, query)


def _random_json(rng: random.Random, shape: Any, depth: int = 0) -> Any:
    """A value for a shape, now and then of the wrong type or null."""
    roll = rng.random()
    if roll < 0.04:
        return None
    if roll < 0.06:
        return rng.choice(["x", 1, [], {}])
    kind = shape.type_name
    if kind == "structure" and depth < 6:
        return {
            shape.members[name].serialization.get("name", name): _random_json(
                rng, shape.members[name], depth + 1
            )
            for name in shape.members
            if rng.random() < 0.6
        } | ({"Unknown": 1} if rng.random() < 0.1 else {})
    if kind == "list" and depth < 6:
        return [_random_json(rng, shape.member, depth + 1) for _ in range(rng.randint(0, 3))]
    if kind == "map" and depth < 6:
        return {f"k{i}": _random_json(rng, shape.value, depth + 1) for i in range(2)}
    if kind in ("integer", "long"):
        return rng.randint(-5, 5)
    if kind in ("double", "float"):
        return rng.choice([0.5, 2, -1.25])
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "timestamp":
        return rng.choice([1767225600, 1767225600.5, "2026-01-01T00:00:00Z"])
    return rng.choice(["a", "Invocations", "", "é"])


@pytest.mark.parametrize(
    ("service", "operations"),
    [
        ("cloudwatch", ["GetMetricData", "PutMetricData", "DescribeAlarms", "PutMetricAlarm"]),
        ("logs", ["DescribeLogGroups", "StartQuery", "FilterLogEvents", "PutLogEvents"]),
        ("secretsmanager", ["DescribeSecret", "CreateSecret", "ListSecrets"]),
    ],
)
def test_json_requests_parse_as_moto_parses_them(service: str, operations: list[str]) -> None:
    from moto.core.parse import JSONParser
    from moto.core.responses import BaseResponse

    from optimizer_async.sandbox.patches import json_parser

    json_parser.apply()

    class MotoParser(JSONParser):
        _parse_structure = json_parser.MOTO_PARSE_STRUCTURE

    def parsed(parser_class: Any, operation: Any, body: bytes, map_type: Any) -> object:
        try:
            result = parser_class(operation, map_type=map_type).parse({"body": body})
            return ("ok", json.dumps(result, sort_keys=False, default=repr))
        except Exception as error:
            return ("error", type(error), str(error))

    rng = random.Random(13)
    model = get_service_model(service)
    for name in operations:
        operation = model.operation_model(name)
        for _ in range(150):
            body = json.dumps(_random_json(rng, operation.input_shape)).encode()
            for map_type in (dict, BaseResponse.PROTOCOL_PARSER_MAP_TYPE):
                assert parsed(JSONParser, operation, body, map_type) == parsed(
                    MotoParser, operation, body, map_type
                ), body


def test_serve_hands_the_interpreter_on_sooner_only_while_nothing_is_shaped() -> None:
    import sys

    from optimizer_async.sandbox import __main__ as serve
    from optimizer_async.sandbox.config import SandboxConfig
    from optimizer_async.sandbox.runtime import SandboxRuntime

    before = sys.getswitchinterval()
    try:
        runtime = SandboxRuntime(SandboxConfig())
        runtime.on_configure = serve.tune_interpreter
        runtime.configure(SandboxConfig.for_profile("none"))
        assert sys.getswitchinterval() == pytest.approx(0.05)
        runtime.configure(SandboxConfig.for_profile("aws"))
        assert sys.getswitchinterval() == pytest.approx(serve._SHAPED_SWITCH_S)
        for shaped in ({"rate_limits": True}, {"latency_median_ms": 1.0}, {"fault_rate": 0.1}):
            runtime.configure(SandboxConfig())
            runtime.configure(SandboxConfig(**shaped))
            assert sys.getswitchinterval() == pytest.approx(serve._SHAPED_SWITCH_S)
    finally:
        sys.setswitchinterval(before)
