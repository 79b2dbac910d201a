"""CloudWatch Logs filter patterns (FilterLogEvents, metric and subscription filters), as the
"Filter pattern syntax" page of the CloudWatch Logs user guide defines them.

- Unstructured: terms that must all appear (`ERROR timeout`), case-sensitive; a quoted
  phrase (`"REPORT RequestId"`) is one term; `?A ?B` matches either; `-term` excludes.
  `%regex%` matches a regular expression.
- JSON: `{ $.type = "platform.report" }`, `{ $.record.metrics.maxMemoryUsedMB > 512 }`,
  with `=`, `!=`, `<`, `<=`, `>`, `>=`, `&&`, `||`, parentheses, `*` as a wildcard in a
  string, `IS NULL`, `NOT EXISTS`, `IS TRUE` / `IS FALSE`.
- Space-delimited: `[label="REPORT", ..., used>512, unit="MB"]`: the message's fields
  (split on whitespace, a quoted or bracketed field kept whole) matched in order, `...`
  standing for any number of them.

An empty pattern matches every event. A pattern outside this syntax raises `PatternError`
(AWS answers InvalidParameterException).
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable
from typing import Any, Final

Matcher = Callable[[str], bool]


class PatternError(ValueError):
    """A filter pattern AWS would refuse."""


_TERM: Final = re.compile(r'\s*([?-]?)("(?:[^"\\]|\\.)*"|%[^%]*%|[^\s"]+)')
_JSON_CONDITION: Final = re.compile(
    r"""\s*\$\.(?P<path>[\w.\[\]*-]+)\s*(?:
        (?P<op>=|!=|<=|>=|<|>)\s*(?P<value>"(?:[^"\\]|\\.)*"|[^\s&|()]+)
      | (?P<special>IS\s+NULL|NOT\s+EXISTS|IS\s+TRUE|IS\s+FALSE)
    )\s*""",
    re.X | re.I,
)
_SPACED_FIELD: Final = re.compile(r'\s*("(?:[^"\\]|\\.)*"|\[[^\]]*\]|\S+)')
_COMPARISON: Final = re.compile(r"^(?P<name>[\w.]*)\s*(?P<op>=|!=|<=|>=|<|>)\s*(?P<value>.+)$")


def compile_pattern(pattern: str | None) -> Matcher:
    """The pattern as a test of a message."""
    text = (pattern or "").strip()
    if not text:
        return lambda message: True
    if text.startswith("{"):
        return _json(text)
    if text.startswith("["):
        return _space_delimited(text)
    return _unstructured(text)


# --- unstructured ---------------------------------------------------------------------------


def _unquote(text: str) -> str:
    return json.loads(text) if text.startswith('"') else text


def _unstructured(text: str) -> Matcher:
    required: list[Matcher] = []
    optional: list[Matcher] = []
    excluded: list[Matcher] = []
    at = 0
    while at < len(text):
        match = _TERM.match(text, at)
        if match is None:
            if text[at:].strip():
                raise PatternError(f"Invalid filter pattern near {text[at:]!r}")
            break
        at = match.end()
        sign, term = match.group(1), match.group(2)
        if term.startswith("%") and term.endswith("%") and len(term) > 1:
            try:
                regex = re.compile(term[1:-1])
            except re.error as error:
                raise PatternError(f"Invalid regular expression: {error}") from None
            test: Matcher = lambda message, r=regex: r.search(message) is not None  # type: ignore[misc]  # noqa: E731
        else:
            try:
                needle = _unquote(term)
            except ValueError:
                raise PatternError(f"Invalid quoted term {term!r}") from None
            test = lambda message, n=needle: n in message  # type: ignore[misc]  # noqa: E731
        {"?": optional, "-": excluded}.get(sign, required).append(test)

    def matches(message: str) -> bool:
        if any(test(message) for test in excluded):
            return False
        if not all(test(message) for test in required):
            return False
        return not optional or any(test(message) for test in optional)

    return matches


# --- JSON -------------------------------------------------------------------------------------


def _path_value(document: Any, path: str) -> tuple[bool, Any]:
    current = document
    for part in re.findall(r"[^.\[\]]+", path):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return False, None
    return True, current


def _condition(match: re.Match[str]) -> Callable[[Any], bool]:
    path = match.group("path")
    special = match.group("special")
    if special:
        kind = " ".join(special.upper().split())

        def test_special(document: Any) -> bool:
            present, value = _path_value(document, path)
            if kind == "NOT EXISTS":
                return not present
            if kind == "IS NULL":
                return present and value is None
            return present and value is (kind == "IS TRUE")

        return test_special
    op, raw = match.group("op"), match.group("value")
    wanted: Any = _unquote(raw) if raw.startswith('"') else raw

    def test(document: Any) -> bool:
        present, value = _path_value(document, path)
        if not present or isinstance(value, dict | list):
            return False
        if op in ("=", "!=") and isinstance(wanted, str) and not _is_number(raw):
            text = (
                "null"
                if value is None
                else str(value).lower()
                if isinstance(value, bool)
                else str(value)
            )
            equal = fnmatch.fnmatchcase(text, wanted)
            return equal if op == "=" else not equal
        try:
            left, right = float(value), float(wanted)
        except (TypeError, ValueError):
            return False
        return {
            "=": left == right,
            "!=": left != right,
            "<": left < right,
            "<=": left <= right,
            ">": left > right,
            ">=": left >= right,
        }[op]

    return test


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _json(text: str) -> Matcher:
    if not text.endswith("}"):
        raise PatternError("Invalid JSON filter pattern: it must end with }")
    body = text[1:-1]
    at = 0

    def expression() -> Callable[[Any], bool]:
        nonlocal at
        left = conjunction()
        while body.startswith("||", at):
            at += 2
            right = conjunction()
            left = (lambda a, b: lambda d: a(d) or b(d))(left, right)
        return left

    def conjunction() -> Callable[[Any], bool]:
        nonlocal at
        left = atom()
        while body.startswith("&&", at):
            at += 2
            right = atom()
            left = (lambda a, b: lambda d: a(d) and b(d))(left, right)
        return left

    def atom() -> Callable[[Any], bool]:
        nonlocal at
        while at < len(body) and body[at].isspace():
            at += 1
        if body.startswith("(", at):
            at += 1
            inner = expression()
            while at < len(body) and body[at].isspace():
                at += 1
            if not body.startswith(")", at):
                raise PatternError("Invalid JSON filter pattern: unbalanced parentheses")
            at += 1
            while at < len(body) and body[at].isspace():
                at += 1
            return inner
        match = _JSON_CONDITION.match(body, at)
        if match is None:
            raise PatternError(f"Invalid JSON filter pattern near {body[at:]!r}")
        at = match.end()
        return _condition(match)

    test = expression()
    if body[at:].strip():
        raise PatternError(f"Invalid JSON filter pattern near {body[at:]!r}")

    def matches(message: str) -> bool:
        try:
            document = json.loads(message)
        except ValueError:
            return False
        return isinstance(document, dict) and test(document)

    return matches


# --- space-delimited ----------------------------------------------------------------------------


def _spaced_fields(message: str) -> list[str]:
    return [
        field[1:-1] if field[:1] in '"[' else field
        for field in _SPACED_FIELD.findall(message)
        if field.strip()
    ]


def _space_delimited(text: str) -> Matcher:
    if not text.endswith("]"):
        raise PatternError("Invalid space-delimited filter pattern: it must end with ]")
    specs: list[Callable[[str], bool] | None] = []  # None: "..."
    for part in (p.strip() for p in text[1:-1].split(",")):
        if part == "...":
            specs.append(None)
            continue
        comparison = _COMPARISON.match(part)
        if comparison is None:
            if not re.fullmatch(r"[\w.]*", part):
                raise PatternError(f"Invalid space-delimited field {part!r}")
            specs.append(lambda value: True)
            continue
        op, raw = comparison.group("op"), comparison.group("value").strip()
        wanted = _unquote(raw) if raw.startswith('"') else raw
        specs.append(_field_test(op, wanted, _is_number(raw)))

    def fits(fields: list[str], index: int, at: int) -> bool:
        if index == len(specs):
            return at == len(fields)
        spec = specs[index]
        if spec is None:
            return any(fits(fields, index + 1, skip) for skip in range(at, len(fields) + 1))
        return at < len(fields) and spec(fields[at]) and fits(fields, index + 1, at + 1)

    return lambda message: fits(_spaced_fields(message), 0, 0)


def _field_test(op: str, wanted: str, numeric: bool) -> Callable[[str], bool]:
    def test(value: str) -> bool:
        if numeric:
            try:
                left, right = float(value), float(wanted)
            except ValueError:
                return False
        elif op in ("=", "!="):
            equal = fnmatch.fnmatchcase(value, wanted)
            return equal if op == "=" else not equal
        else:
            return False
        return {
            "=": left == right,
            "!=": left != right,
            "<": left < right,
            "<=": left <= right,
            ">": left > right,
            ">=": left >= right,
        }[op]

    return test
