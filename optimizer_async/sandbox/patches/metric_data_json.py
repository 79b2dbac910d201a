"""GetMetricData's answer in JSON 1.0, written straight from its results.

moto's response serializer walks the output shape for every member of every result: an
attribute picker asked for each of six members of each of up to 500 results, a wrapper
dict per list item, a timestamp parsed back from the datetime it is. That was half of a
500-query GetMetricData's CPU (40 ms of 80), and a dry run of 5,000 functions makes 81 of
them. Here the results the sandbox writes (plain dicts with moto's snake_case keys: id,
label, timestamps, values, status_code) become the very dict moto's serializer makes of
them - same members in the shape's order, a member left out where moto leaves it out,
each timestamp through moto's own timestamp writer, each value through `float` - which
moto's JSON writer then encodes as it always does. Anything else (another key, another
type, a picker with transformers, the query protocol) goes moto's way.

Which key moto's picker reads for each member is asked of the picker itself once; if it
ever does not name the snake_case key for one of these members, the shortcut stays off.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any, Final

from moto.core.serialize import (
    AttributePickerContext,
    JSONSerializer,
    ResponseSerializer,
    XFormedAttributePicker,
)

from optimizer_async.sandbox.patches._patching import wrap_method

_OPERATION: Final = "GetMetricData"
_RESULTS: Final = "MetricDataResults"  # the output member holding the results
_RESULTS_KEY: Final = "MetricDataResults"  # the key moto's response puts them under
# The keys of the result dicts the sandbox (and moto's backend) write, and each member's.
_MEMBER_KEYS: Final = {
    "Id": "id",
    "Label": "label",
    "Timestamps": "timestamps",
    "Values": "values",
    "StatusCode": "status_code",
}
_KEYS: Final = frozenset(_MEMBER_KEYS.values())
Plan = tuple[tuple[str, str, str], ...]  # (member, key read, its kind) in the shape's order
_plans: dict[int, tuple[Any, Plan | None]] = {}  # id(operation model) -> (model, plan)
_lock = threading.Lock()


def _read_key(picker: Any, model: Any, shape: Any, member: str, present: frozenset[str]) -> Any:
    """The key the picker reads `member` from, of a plain dict holding the `present` keys
    (None: none of them)."""
    context = AttributePickerContext(
        obj={},
        key=member,
        shape=shape,
        operation_model=model,
        service_model=model.service_model,
        key_path="",
    )
    for possible in picker.get_possible_keys(context):
        if possible in present:
            return possible
    return None


def _kind(shape: Any) -> str | None:
    """How this module writes a member of this shape (None: it does not)."""
    if shape.serialization:
        return None
    if shape.type_name == "string":
        return "string"
    if shape.type_name == "list" and not shape.member.serialization:
        return {"timestamp": "timestamps", "double": "doubles"}.get(shape.member.type_name)
    return None


def _plan(model: Any) -> Plan | None:
    """How moto's serializer writes this operation's results, if this module can write them
    the same way (worked out once per operation model, from the shapes and moto's picker)."""
    output = model.output_shape
    picker = XFormedAttributePicker()
    try:
        results = output.members[_RESULTS]
        item = results.member
        top = frozenset({_RESULTS_KEY})
        if results.serialization or item.serialization or results.type_name != "list":
            return None
        for member, shape in output.members.items():
            wanted = _RESULTS_KEY if member == _RESULTS else None
            if _read_key(picker, model, shape, member, top) != wanted:
                return None
        plan = []
        for member, shape in item.members.items():
            key = _read_key(picker, model, shape, member, _KEYS)
            if key != _MEMBER_KEYS.get(member):
                return None
            if key is None:
                continue  # never present in the dicts written here
            kind = _kind(shape)
            if kind is None:
                return None
            plan.append((member, key, kind))
    except (AttributeError, KeyError, TypeError):
        return None
    return tuple(plan) if len(plan) == len(_MEMBER_KEYS) else None


def _plan_of(model: Any) -> Plan | None:
    kept = _plans.get(id(model))
    if kept is not None and kept[0] is model:
        return kept[1]
    plan = _plan(model)
    with _lock:
        _plans[id(model)] = (model, plan)  # the model kept: its id stays its own
    return plan


def _result(item: Any, plan: Plan, stamp: Any) -> dict[str, Any] | None:
    """One result as moto's serializer writes it; None where this module would differ."""
    if type(item) is not dict or not _KEYS.issuperset(item):
        return None
    written: dict[str, Any] = {}
    for member, key, kind in plan:
        value = item.get(key)
        if value is None:
            continue  # moto leaves out a member without a value
        if kind == "string":
            if type(value) is not str:
                return None
            written[member] = value
        elif type(value) is not list:
            return None
        elif kind == "timestamps":
            if not all(type(v) is datetime for v in value):
                return None
            written[member] = [stamp(v) for v in value]
        else:
            if not all(type(v) is float or type(v) is int for v in value):
                return None
            written[member] = [float(v) for v in value]
    return written


def serialized_results(serializer: Any, result: Any) -> dict[str, Any] | None:
    """The dict moto's JSON serializer makes of GetMetricData's result; None: not a result
    this module writes (moto then serializes it)."""
    if type(result) is not dict or set(result) != {_RESULTS_KEY}:
        return None
    items = result[_RESULTS_KEY]
    picker = serializer._value_picker
    if type(items) is not list or type(picker) is not XFormedAttributePicker:
        return None
    if picker.response_transformers:
        return None
    model = serializer.operation_model
    plan = _plan_of(model)
    if plan is None:
        return None
    stamp_shape = model.output_shape.members[_RESULTS].member.members["Timestamps"].member
    writer = serializer._timestamp_serializer
    stamp_format = stamp_shape.serialization.get("timestampFormat", writer.default_format)

    def stamp(moment: datetime) -> Any:
        return writer._convert_timestamp_to_str(moment, stamp_format)

    written = []
    for item in items:
        one = _result(item, plan, stamp)
        if one is None:
            return None
        written.append(one)
    return {_RESULTS: written}


def apply() -> None:
    @wrap_method(ResponseSerializer, "_serialize_result")
    def serialize_result(original: Any, serializer: Any, resp: Any, result: Any) -> Any:
        if (
            type(serializer) is JSONSerializer
            and serializer.operation_name == _OPERATION
            and serializer.service_model.service_name == "cloudwatch"
        ):
            written = serialized_results(serializer, result)
            if written is not None:
                output: Any = serializer.operation_model.output_shape
                return serializer._serialized_result_to_response(resp, result, output, written)
        return original(serializer, resp, result)
