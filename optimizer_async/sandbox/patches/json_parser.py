"""JSON request bodies parse without reading each structure's shape again for every value.

moto 5.2.5's JSON parser asks, for every structure value of a request, whether the shape
is a document, for its member table, and for each member its table entry (twice) and its
serialized name: a GetMetricData of 500 queries parses 2,500 structures, a third of its
CPU once its answer is written directly (metric_data_json.py). Here each structure shape's
members are read once into a plan - (member name, JSON name, member shape) in the shape's
order - kept with the shape (botocore's shapes are built once per service model and never
change). Parsing walks the plan and hands every present value to the parser's own
`_parse_shape`, so the result is the dict moto builds, member for member, in its order.
Document shapes go moto's way.
"""

from __future__ import annotations

import threading
from typing import Any, Final

from moto.core.parse import BaseJSONParser

from optimizer_async.sandbox.patches._patching import wrap_method

Plan = tuple[tuple[str, str, Any], ...]
_MAX_PLANS: Final = 10_000  # structure shapes are a few hundred per service
_plans: dict[int, tuple[Any, Plan]] = {}  # id(shape) -> (shape, plan): the shape kept
_lock = threading.Lock()
MOTO_PARSE_STRUCTURE: Final = BaseJSONParser.__dict__["_parse_structure"]  # for the tests


def plan_of(shape: Any) -> Plan:
    """A structure shape's members as moto's parser reads them."""
    kept = _plans.get(id(shape))
    if kept is not None and kept[0] is shape:
        return kept[1]
    members = shape.members
    plan = tuple(
        (name, members[name].serialization.get("name", name), members[name]) for name in members
    )
    with _lock:
        if len(_plans) >= _MAX_PLANS:
            _plans.clear()
        _plans[id(shape)] = (shape, plan)
    return plan


def apply() -> None:
    @wrap_method(BaseJSONParser, "_parse_structure")
    def parse_structure(original: Any, parser: Any, shape: Any, value: Any) -> Any:
        if shape.is_document_type:
            return original(parser, shape, value)
        plan = plan_of(shape)
        if value is None:
            return None
        parsed = parser.MAP_TYPE()
        parse = parser._parse_shape
        for name, json_name, member in plan:
            raw = value.get(json_name)
            if raw is not None:
                parsed[name] = parse(member, raw)
        return parsed
