"""JSON text made piece by piece: `json.dumps(value, indent=2, default=str)`'s document.

A fleet's report is tens of MB of JSON: built whole (`to_json`, then `json.dumps`, whose
indenting encoder is pure Python and keeps every fragment until it joins them) it held
several times its size at once. Here the large lists are `Lazy`: each item is made, encoded
and written, then dropped, so memory holds one environment at a time, not the fleet.

Pieces are encoded by orjson (a 5,000-function report: 0.06 s of CPU, 1.7 s with the
standard library), falling back to `json.dumps` for what orjson would write differently
(text that is not ASCII, keys that are not strings, integers past 64 bits). The text is the
standard library's but for floats below 1e-4 or from 1e16 (`0.00001`, not `1e-05`) and
NaN or infinity (`null`, which JSON can carry; `NaN` it cannot): the same when parsed. (An
`Enum` that is neither a str nor an int would become its value, not `str()` of itself:
reports hold none.)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import IO, Any, Final, Generic, TypeVar

import orjson

T = TypeVar("T")

_INDENT = "  "
# datetimes and dataclasses go to `default` (str), as the standard library sends them.
_OPTIONS: Final = (
    orjson.OPT_INDENT_2 | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)


class Lazy(Generic[T]):
    """A JSON list whose items are made from `source` only while it is written."""

    def __init__(self, source: Sequence[T], make: Callable[[T], Any]) -> None:
        self._source = source
        self._make = make

    def __iter__(self) -> Iterator[Any]:
        return (self._make(item) for item in self._source)

    def __len__(self) -> int:
        return len(self._source)


def materialised(value: Any) -> Any:
    """`value` with every `Lazy` made into a list: plain JSON-ready data."""
    if isinstance(value, Lazy):
        return [materialised(item) for item in value]
    if isinstance(value, Mapping):
        return {key: materialised(item) for key, item in value.items()}
    return value


def chunks(value: Any, *, sort_keys: bool = False, level: int = 0) -> Iterator[str]:
    """The JSON text of `value` (indent 2, `default=str`) in pieces; `Lazy` lists are made
    item by item. Anything without a `Lazy` inside is encoded by `json.dumps` in one go."""
    if isinstance(value, Lazy):
        yield from _items(((None, item) for item in value), "[", "]", sort_keys, level)
    elif isinstance(value, Mapping) and _has_lazy(value):
        pairs = sorted(value.items()) if sort_keys else value.items()
        yield from _items(((key, item) for key, item in pairs), "{", "}", sort_keys, level)
    else:
        text = _dumps(value, sort_keys)
        yield text.replace("\n", "\n" + _INDENT * level) if level else text


def _dumps(value: Any, sort_keys: bool) -> str:
    options = _OPTIONS | orjson.OPT_SORT_KEYS if sort_keys else _OPTIONS
    try:
        text = orjson.dumps(value, default=str, option=options).decode()
    except orjson.JSONEncodeError:  # a key that is not a string, an integer past 64 bits
        return json.dumps(value, indent=2, sort_keys=sort_keys, default=str)
    if text.isascii():
        return text
    return json.dumps(value, indent=2, sort_keys=sort_keys, default=str)  # escaped, as ours


def write(value: Any, *streams: IO[str], sort_keys: bool = False) -> None:
    """Write `value`'s JSON text to every stream as it is made (made once: a fleet's report
    costs seconds of CPU to encode)."""
    for piece in chunks(value, sort_keys=sort_keys):
        for stream in streams:
            stream.write(piece)


def _has_lazy(value: Mapping[Any, Any]) -> bool:
    """A `Lazy` among its values, or its mappings' (a report inside a report)."""
    return any(
        isinstance(item, Lazy) or (isinstance(item, Mapping) and _has_lazy(item))
        for item in value.values()
    )


def _items(
    pairs: Iterable[tuple[str | None, Any]], opening: str, closing: str, sort_keys: bool, level: int
) -> Iterator[str]:
    inner = "\n" + _INDENT * (level + 1)
    first = True
    for key, item in pairs:
        yield (opening if first else ",") + inner
        first = False
        if key is not None:
            yield json.dumps(key) + ": "
        yield from chunks(item, sort_keys=sort_keys, level=level + 1)
    yield opening + closing if first else "\n" + _INDENT * level + closing
