"""JSON made piece by piece is `json.dumps(indent=2)`'s document, byte for byte but for the
floats orjson writes its own way, and made lazily."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from optimizer_async.jsonio import json_text
from optimizer_async.jsonio.json_text import Lazy


def _environment(n: int) -> dict[str, Any]:
    return {
        "suffix": f"e{n}",
        "notes": ["line\nbreak", "tab\tand\u0001control", 'quote " and \\ slash'],
        "money": {"z": 1.5, "a": -0.0, "b": 0.25, "c": None, "d": True, "e": 10**15 + 0.5},
        "functions": [{"name": f"f{n}", "changes": [], "evidence": {}}],
        "when": datetime(2026, 11, 27, tzinfo=UTC),  # not JSON: default=str
    }


def _document(count: int) -> dict[str, Any]:
    return {
        "run_id": "r",
        "environments": Lazy(list(range(count)), _environment),
        "empty": Lazy([], _environment),
        "nested": {"list": [1, [2, {}], []], "lazy": Lazy([1, 2], lambda n: {"n": n})},
        # reports inside a report (an organisation's places): lazy lists deeper down
        "places": Lazy([1, 2], lambda n: {"report": {"run": {"items": Lazy([n], _environment)}}}),
        "elapsed_s": 36.838,
    }


@pytest.mark.parametrize("count", [0, 1, 3])
@pytest.mark.parametrize("sort_keys", [False, True])
def test_the_pieces_are_json_dumps_with_indent_two(count: int, sort_keys: bool) -> None:
    made = "".join(json_text.chunks(_document(count), sort_keys=sort_keys))
    plain = json_text.materialised(_document(count))
    assert made == json.dumps(plain, indent=2, sort_keys=sort_keys, default=str)


def test_a_lazy_list_is_made_one_item_at_a_time_while_written() -> None:
    made: list[int] = []

    def make(n: int) -> dict[str, int]:
        made.append(n)
        return {"n": n}

    pieces = json_text.chunks({"items": Lazy([1, 2, 3], make)})
    assert made == []
    text = ""
    for piece in pieces:
        text += piece
        assert len(made) <= text.count('"n"') + 1  # at most one item ahead of the text
    assert made == [1, 2, 3]


def test_write_streams_the_same_text() -> None:
    stream = io.StringIO()
    json_text.write(_document(2), stream, sort_keys=True)
    assert json.loads(stream.getvalue()) == json.loads(
        json.dumps(json_text.materialised(_document(2)), default=str)
    )


def test_write_makes_the_text_once_for_every_stream() -> None:
    made: list[int] = []

    def make(n: int) -> dict[str, int]:
        made.append(n)
        return {"n": n}

    first, second = io.StringIO(), io.StringIO()
    json_text.write({"items": Lazy([1, 2], make)}, first, second)
    assert made == [1, 2]
    assert (
        first.getvalue()
        == second.getvalue()
        == json.dumps({"items": [{"n": 1}, {"n": 2}]}, indent=2)
    )


@pytest.mark.parametrize(
    "odd",
    [
        {"text": "naïve ✓"},  # escaped to ASCII, as the standard library does
        {1: "a key that is not a string", None: "nor this"},
        {"large": 2**70},
        {"a set": {1}},  # not JSON: default=str
    ],
)
def test_what_orjson_would_write_otherwise_is_the_standard_librarys_text(
    odd: dict[Any, Any],
) -> None:
    value = {"lazy": Lazy([odd], dict), "plain": odd}
    made = "".join(json_text.chunks(value))
    assert made == json.dumps(json_text.materialised(value), indent=2, default=str)
    assert made.isascii()


def test_floats_orjson_writes_its_own_way_parse_to_the_same_numbers() -> None:
    value = {"small": 1e-05, "tiny": 2.5e-9, "huge": 1e22, "nan": float("nan")}
    made = "".join(json_text.chunks({"items": Lazy([value], dict)}))
    assert '"small": 0.00001' in made  # orjson's text, not the standard library's 1e-05
    parsed = json.loads(made)["items"][0]
    assert parsed == {"small": 1e-05, "tiny": 2.5e-9, "huge": 1e22, "nan": None}
