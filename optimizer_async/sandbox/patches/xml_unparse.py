"""moto's XML responses are written by a direct string builder, byte for byte as xmltodict.

moto 5.2.5's serializers hand each response dict to xmltodict.unparse, which goes through a
SAX XMLGenerator and checks every element name against six rules each time: a tenth of the
sandbox's CPU per call. `unparse` here writes the same text for what moto passes (no pretty
printing, namespaces, comments or iterators other than lists and tuples), remembers names
already found valid, and hands anything else, and anything xmltodict would refuse, back to
xmltodict, so that odd input still gets xmltodict's own answer or error.
"""

from __future__ import annotations

from typing import Any, Final
from xml.sax.saxutils import escape, quoteattr

import xmltodict  # type: ignore[import-untyped]  # no stubs; moto depends on it
from moto.core import serialize

_CDATA: Final = "#text"
_COMMENT: Final = "#comment"
_valid_names: set[tuple[str, str]] = set()


class _Unsupported(Exception):
    """Input the fast writer leaves to xmltodict."""


def _text(value: Any) -> str:
    """xmltodict's _convert_value_to_string, for its default encoding and errors."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def _check(name: Any, kind: str) -> str:
    if not isinstance(name, str):
        raise _Unsupported
    if (name, kind) not in _valid_names:
        try:
            xmltodict._validate_name(name, kind)
        except ValueError:
            raise _Unsupported from None
        _valid_names.add((name, kind))
    return name


def _emit(key: Any, value: Any, parts: list[str], short: bool, single_root: bool) -> None:
    name = _check(key, "element")
    if name == _COMMENT:
        raise _Unsupported
    if isinstance(value, (list, tuple)):
        items: Any = value
    elif isinstance(value, (str, bytes, bytearray, memoryview, dict)) or not hasattr(
        value, "__iter__"
    ):
        items = (value,)
    else:  # a generator or other iterator: reading it here would use it up
        raise _Unsupported
    if single_root and len(items) > 1:
        raise _Unsupported
    for item in items:
        cdata = ""
        attributes = ""
        children: list[tuple[Any, Any]] = []
        if item is None:
            pass
        elif isinstance(item, dict):
            for child_key, child in item.items():
                if child_key == _CDATA:
                    cdata = "" if child is None else _text(child)
                elif isinstance(child_key, str) and child_key.startswith("@"):
                    if child_key == "@xmlns" and isinstance(child, dict):  # a namespace map
                        raise _Unsupported
                    attribute = _check(child_key[1:], "attribute")
                    attributes += f" {attribute}={quoteattr('' if child is None else _text(child))}"
                elif not (isinstance(child, list) and not child):  # [] writes nothing
                    children.append((child_key, child))
        else:
            cdata = _text(item)
        parts.append(f"<{name}{attributes}")
        mark = len(parts)
        parts.append(">")
        for child_key, child in children:
            _emit(child_key, child, parts, short, False)
        if cdata:
            parts.append(escape(cdata))
        if short and len(parts) == mark + 1:
            parts[mark] = "/>"
        else:
            parts.append(f"</{name}>")


def unparse(
    input_dict: Any,
    output: Any = None,
    encoding: str = "utf-8",
    full_document: bool = True,
    short_empty_elements: bool = False,
    **kwargs: Any,
) -> Any:
    """xmltodict.unparse's text, written directly when the input allows (see module)."""
    options = dict(
        output=output,
        encoding=encoding,
        full_document=full_document,
        short_empty_elements=short_empty_elements,
        **kwargs,
    )
    if (
        output is not None
        or encoding != "utf-8"
        or set(kwargs) - {"pretty"}
        or kwargs.get("pretty")
    ):
        return xmltodict.unparse(input_dict, **options)
    parts = ['<?xml version="1.0" encoding="utf-8"?>\n'] if full_document else []
    try:
        if not isinstance(input_dict, dict) or (full_document and len(input_dict) != 1):
            raise _Unsupported
        for key, value in input_dict.items():
            _emit(key, value, parts, short_empty_elements, full_document)
    except _Unsupported:
        return xmltodict.unparse(input_dict, **options)
    return "".join(parts)


class _XmlToDict:
    """What moto's serializer module sees as `xmltodict`: our unparse, the rest as is."""

    unparse = staticmethod(unparse)

    def __getattr__(self, name: str) -> Any:
        return getattr(xmltodict, name)


def apply() -> None:
    """Idempotent: moto's serializer module then calls `unparse` above."""
    if not isinstance(vars(serialize)["xmltodict"], _XmlToDict):
        vars(serialize)["xmltodict"] = _XmlToDict()
