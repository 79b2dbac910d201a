"""A parsed query run over weighted events, as Logs Insights answers GetQueryResults.

An event is its fields and a weight: 1 for an event put through PutLogEvents, many for one
of the workload model's lines, which stands for every invocation of its slice of the
distribution. Aggregates weigh each event (`count(*)` sums weights, `pct` takes the
weighted percentile); commands that list events (`fields` without `stats`) list each once.

Semantics, after the query syntax pages: a missing field is null; a comparison with null is
false; arithmetic with null is null; aggregates skip nulls; a string that reads as a number
compares as one against a number; `like "text"` is a case-sensitive substring match and
`like /re/` (or `=~`) a regex search; `strcontains` answers 1 or 0. Results come back as
strings: whole numbers without a fraction, times as `YYYY-MM-DD HH:MM:SS.mmm` (UTC).
Without `sort`, event listings come newest first; without `limit`, at most 10,000 rows.
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from optimizer_async.sandbox.insights.language import (
    AGGREGATES,
    Binary,
    Call,
    Dedup,
    Display,
    Duration,
    Expr,
    Field,
    Fields,
    Filter,
    Instant,
    Items,
    Limit,
    Literal,
    Parse,
    Pattern,
    Query,
    QueryError,
    Sort,
    Stats,
    Unary,
    Value,
)

MAX_ROWS: Final = 10_000
Row = list[dict[str, str]]
Record = Mapping[str, Value]
Compiled = Callable[[Record], Any]


@dataclass(frozen=True)
class Event:
    fields: Record
    weight: float = 1.0


@dataclass(frozen=True)
class Outcome:
    rows: list[Row]
    statistics: dict[str, float]


# --- values -----------------------------------------------------------------------------------


def number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def render(value: Any, whole: bool = False) -> str:
    """A value as Logs Insights returns it."""
    if isinstance(value, Instant):
        moment = datetime.fromtimestamp(float(value) / 1000.0, UTC)
        return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float | int):
        if whole or float(value).is_integer():
            return str(round(value))
        return f"{value:.6f}".rstrip("0").rstrip(".")
    return str(value)


def _truth(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str):
        return value != ""
    return bool(value)


def _compare(op: str, left: Any, right: Any) -> bool:
    if left is None or right is None:
        return False
    if isinstance(left, float | int) or isinstance(right, float | int):
        a, b = number(left), number(right)
        if a is not None and b is not None:
            return _ORDER[op](a, b)
    return _ORDER[op](str(left), str(right))


_ORDER: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _arithmetic(op: str, left: Any, right: Any) -> float | None:
    a, b = number(left), number(right)
    if a is None or b is None:
        return None
    try:
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "/":
            return a / b
        if op == "%":
            return math.fmod(a, b)
        return float(a**b)
    except (ZeroDivisionError, OverflowError, ValueError):
        return None


def _matches(left: Any, right: Expr, compiled: Compiled, record: Record) -> bool:
    if left is None:
        return False
    text = str(left) if not isinstance(left, float) else render(left)
    if isinstance(right, Pattern):
        return right.regex.search(text) is not None
    needle = compiled(record)
    return needle is not None and str(needle) in text


# --- scalar functions ---------------------------------------------------------------------------


def _time_floor(value: Any, seconds: float) -> Instant | None:
    stamp = number(value)
    if stamp is None or seconds <= 0:
        return None
    step = seconds * 1000.0
    return Instant(math.floor(stamp / step) * step)


def _time_ceil(value: Any, seconds: float) -> Instant | None:
    stamp = number(value)
    if stamp is None or seconds <= 0:
        return None
    step = seconds * 1000.0
    return Instant(math.ceil(stamp / step) * step)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else render(value)


def _apply(function: str, args: Sequence[Any], record: Record) -> Any:
    first = args[0] if args else None
    if function == "ispresent":
        return first is not None
    if function == "isempty":
        return first is None or first == ""
    if function == "isblank":
        return first is None or (isinstance(first, str) and first.strip() == "")
    if function == "coalesce":
        return next((arg for arg in args if arg is not None), None)
    if function == "concat":
        return "".join(_text(arg) or "" for arg in args)
    if function == "bin":
        return _time_floor(record.get("@timestamp"), number(first) or 0.0)
    if function in ("datefloor", "dateceil"):
        seconds = number(args[1]) if len(args) > 1 else None
        if seconds is None:
            return None
        return (_time_floor if function == "datefloor" else _time_ceil)(first, seconds)
    if function == "frommillis":
        stamp = number(first)
        return None if stamp is None else Instant(stamp)
    if function == "tomillis":
        return number(first)
    if function in ("greatest", "least"):
        numbers = [n for n in (number(arg) for arg in args) if n is not None]
        if not numbers:
            return None
        return max(numbers) if function == "greatest" else min(numbers)
    if function in ("abs", "ceil", "floor", "log", "sqrt"):
        value = number(first)
        if value is None:
            return None
        try:
            return float(_MATH[function](value))
        except ValueError:
            return None
    if function == "pow":
        return _arithmetic("^", first, args[1] if len(args) > 1 else None)
    text = _text(first)
    if text is None:
        return None
    if function == "strlen":
        return float(len(text))
    if function in _STRING:
        return _STRING[function](text)
    if function == "substr":
        start = int(number(args[1]) or 0) if len(args) > 1 else 0
        length = number(args[2]) if len(args) > 2 else None
        return text[start:] if length is None else text[start : start + int(length)]
    if function == "replace":
        old, new = (_text(arg) or "" for arg in args[1:3])
        return text.replace(old, new) if old else text
    if function == "strcontains":
        needle = _text(args[1]) if len(args) > 1 else None
        return float(needle is not None and needle in text)
    raise QueryError(f"{function} is not a function of a single event")


_MATH: Final[dict[str, Callable[[float], float]]] = {
    "abs": abs,
    "ceil": math.ceil,
    "floor": math.floor,
    "log": math.log,
    "sqrt": math.sqrt,
}
_STRING: Final[dict[str, Callable[[str], str]]] = {
    "tolower": str.lower,
    "toupper": str.upper,
    "trim": str.strip,
    "ltrim": str.lstrip,
    "rtrim": str.rstrip,
}


def compile_expression(expr: Expr) -> Compiled:
    """An expression as a function of one record."""
    if isinstance(expr, Literal):
        constant = expr.value
        return lambda record: constant
    if isinstance(expr, Field):
        name = expr.name
        return lambda record: record.get(name)
    if isinstance(expr, Duration):
        seconds = expr.seconds
        return lambda record: seconds
    if isinstance(expr, Pattern | Items):
        raise QueryError("a regular expression or a list is only an operand of like, =~ or in")
    if isinstance(expr, Unary):
        operand = compile_expression(expr.operand)
        if expr.op == "not":
            return lambda record: not _truth(operand(record))
        return lambda record: _arithmetic("-", 0.0, operand(record))
    if isinstance(expr, Binary):
        return _compile_binary(expr)
    if expr.function in AGGREGATES:
        raise QueryError(f"{expr.function} is an aggregate: only in stats")
    args = [compile_expression(arg) for arg in expr.args]
    function = expr.function
    return lambda record: _apply(function, [arg(record) for arg in args], record)


def _compile_binary(expr: Binary) -> Compiled:
    op = expr.op
    left = compile_expression(expr.left)
    if op in ("in", "not in"):
        if not isinstance(expr.right, Items):
            raise QueryError("in takes a list: [a, b, ...]")
        members = [compile_expression(item) for item in expr.right.items]
        wanted = op == "in"

        def within(record: Record) -> bool:
            value = left(record)
            found = value is not None and any(
                _compare("=", value, member(record)) for member in members
            )
            return found == wanted

        return within
    if op in ("like", "not like", "=~"):
        right_expr = expr.right
        needle = (
            (lambda record: None)
            if isinstance(right_expr, Pattern)
            else compile_expression(right_expr)
        )
        wanted = op != "not like"
        return lambda record: _matches(left(record), right_expr, needle, record) == wanted
    right = compile_expression(expr.right)
    if op == "and":
        return lambda record: _truth(left(record)) and _truth(right(record))
    if op == "or":
        return lambda record: _truth(left(record)) or _truth(right(record))
    if op in _ORDER:
        return lambda record: _compare(op, left(record), right(record))
    return lambda record: _arithmetic(op, left(record), right(record))


# --- aggregates -------------------------------------------------------------------------------

Aggregate = Callable[[Sequence[Event]], Any]


def _weighted(values: Iterable[tuple[Any, float]]) -> list[tuple[float, float]]:
    found = []
    for value, weight in values:
        as_number = number(value)
        if as_number is not None and weight > 0:
            found.append((as_number, weight))
    return found


def _percentile(pairs: list[tuple[float, float]], percent: float) -> float | None:
    """The smallest value whose cumulative weight reaches `percent` of the whole."""
    if not pairs:
        return None
    pairs.sort()
    total = sum(weight for _, weight in pairs)
    target = total * min(max(percent, 0.0), 100.0) / 100.0 * (1.0 - 1e-9)
    running = 0.0
    for value, weight in pairs:
        running += weight
        if running >= target:
            return value
    return pairs[-1][0]


def _aggregate(call: Call) -> Aggregate:
    function = call.function
    if function == "count" and call.star:
        return lambda events: sum(event.weight for event in events)
    argument = compile_expression(call.args[0])

    def values(events: Sequence[Event]) -> list[tuple[Any, float]]:
        return [(argument(event.fields), event.weight) for event in events]

    if function == "count":
        return lambda events: sum(w for v, w in values(events) if v is not None)
    if function == "count_distinct":
        return lambda events: float(len({v for v, _ in values(events) if v is not None}))
    if function in ("earliest", "latest", "sortsfirst", "sortslast"):
        return _positional(function, argument)
    if function in ("pct", "percentile"):
        percent = number(compile_expression(call.args[1])({}))
        if percent is None:
            raise QueryError(f"{function} takes a number as its percentile")
        return lambda events: _percentile(_weighted(values(events)), percent)

    def numeric(events: Sequence[Event]) -> Any:
        pairs = _weighted(values(events))
        if not pairs:
            return None
        if function == "max":
            return max(value for value, _ in pairs)
        if function == "min":
            return min(value for value, _ in pairs)
        total = sum(value * weight for value, weight in pairs)
        if function == "sum":
            return total
        count = sum(weight for _, weight in pairs)
        mean = total / count
        if function == "avg":
            return mean
        if count <= 1:  # stddev of one sample
            return 0.0
        spread = sum(weight * (value - mean) ** 2 for value, weight in pairs)
        return math.sqrt(spread / (count - 1))

    return numeric


def _positional(function: str, argument: Compiled) -> Aggregate:
    def pick(events: Sequence[Event]) -> Any:
        present = [(event, argument(event.fields)) for event in events]
        present = [(event, value) for event, value in present if value is not None]
        if not present:
            return None
        by_time = function in ("earliest", "latest")

        def key(pair: tuple[Event, Any]) -> Any:
            if by_time:
                return number(pair[0].fields.get("@timestamp")) or 0.0
            return _sort_key(pair[1])

        chosen = (min if function in ("earliest", "sortsfirst") else max)(present, key=key)
        return chosen[1]

    return pick


def compile_aggregate(expr: Expr) -> Aggregate:
    """A stats expression: aggregates over a group's events, combined by the rest."""
    if isinstance(expr, Call) and expr.function in AGGREGATES:
        return _aggregate(expr)
    if isinstance(expr, Literal):
        constant = expr.value
        return lambda events: constant
    if isinstance(expr, Binary) and expr.op in ("+", "-", "*", "/", "%", "^"):
        left, right = compile_aggregate(expr.left), compile_aggregate(expr.right)
        op = expr.op
        return lambda events: _arithmetic(op, left(events), right(events))
    if isinstance(expr, Unary) and expr.op == "-":
        operand = compile_aggregate(expr.operand)
        return lambda events: _arithmetic("-", 0.0, operand(events))
    if isinstance(expr, Call):
        args = [compile_aggregate(arg) for arg in expr.args]
        function = expr.function
        return lambda events: _apply(function, [arg(events) for arg in args], {})
    raise QueryError("stats takes aggregate functions and arithmetic over them")


def _whole(expr: Expr) -> bool:
    return isinstance(expr, Call) and expr.function in ("count", "count_distinct")


# --- the commands -----------------------------------------------------------------------------


def _sort_key(value: Any) -> tuple[int, Any]:
    """Numbers before strings, nulls last."""
    if value is None:
        return (2, 0)
    as_number = value if isinstance(value, float | int) else None
    return (0, as_number) if as_number is not None else (1, str(value))


def _pointer(record: Record) -> str:
    digest = hashlib.sha256(
        f"{record.get('@log')}|{record.get('@logStream')}|{record.get('@timestamp')}|"
        f"{record.get('@message')}".encode()
    ).digest()
    return base64.b64encode(digest[:24]).decode()


def _parse(command: Parse) -> Callable[[Record], Record]:
    source = compile_expression(command.source)

    def extract(record: Record) -> Record:
        value = source(record)
        if value is None:
            return record
        match = command.regex.search(_text(value) or "")
        if match is None:
            return record
        extended = dict(record)
        for group, name in command.groups:
            captured = match.group(group)
            if captured is not None:
                extended[name] = captured
        return extended

    return extract


def _group_by(stats: Stats, events: Sequence[Event]) -> list[Event]:
    """A stats command's rows, as events of weight 1 for the commands after it."""
    keys = [(named.name, compile_expression(named.expr)) for named in stats.by]
    groups: dict[tuple[Any, ...], list[Event]] = {}
    for event in events:
        key = tuple(compute(event.fields) for _, compute in keys)
        groups.setdefault(key, []).append(event)
    aggregates = [(named, compile_aggregate(named.expr)) for named in stats.aggregates]
    rows = []
    for key in sorted(groups, key=lambda k: tuple(_sort_key(v) for v in k)):
        members = groups[key]
        fields: dict[str, Value] = {}
        for (name, _), value in zip(keys, key, strict=True):
            fields[name] = value
        for named, compute in aggregates:
            value = compute(members)
            if value is not None and _whole(named.expr):
                value = float(round(value, 6))
            fields[named.name] = value
        rows.append(Event(fields))
    return rows


def run(
    query: Query, events: Iterable[Event], scanned_events: float, scanned_bytes: float
) -> Outcome:
    """Rows and statistics (recordsMatched: the events that passed every filter)."""
    current: list[Event] = list(events)
    shown: list[str] = []
    displayed: list[str] | None = None
    matched: float | None = None
    sorted_ = False
    limit = MAX_ROWS
    whole_names: set[str] = set()
    for command in query.commands:
        if isinstance(command, Filter):
            test = compile_expression(command.condition)
            current = [event for event in current if _truth(test(event.fields))]
        elif isinstance(command, Fields):
            computed = [(n.name, compile_expression(n.expr)) for n in command.items]
            current = [
                Event({**e.fields, **{name: f(e.fields) for name, f in computed}}, e.weight)
                for e in current
            ]
            shown += [name for name, _ in computed if name not in shown]
        elif isinstance(command, Parse):
            extract = _parse(command)
            current = [Event(extract(e.fields), e.weight) for e in current]
        elif isinstance(command, Stats):
            if matched is None:
                matched = sum(event.weight for event in current)
            current = _group_by(command, current)
            shown = [n.name for n in command.by] + [n.name for n in command.aggregates]
            whole_names = {n.name for n in command.aggregates if _whole(n.expr)}
        elif isinstance(command, Sort):
            for expr, descending in reversed(command.keys):
                compute = compile_expression(expr)
                current.sort(key=lambda e, c=compute: _sort_key(c(e.fields)))  # type: ignore[misc]
                if descending:  # nulls stay last
                    present = [e for e in current if compute(e.fields) is not None]
                    absent = [e for e in current if compute(e.fields) is None]
                    current = present[::-1] + absent
            sorted_ = True
        elif isinstance(command, Limit):
            limit = min(limit, command.count)
            current = current[:limit]
        elif isinstance(command, Dedup):
            seen: set[tuple[Any, ...]] = set()
            kept = []
            for event in current:
                key = tuple(event.fields.get(name) for name in command.names)
                if key not in seen:
                    seen.add(key)
                    kept.append(event)
            current = kept
        elif isinstance(command, Display):
            displayed = list(command.names)
    if matched is None:
        matched = sum(event.weight for event in current)
    aggregated = query.aggregates
    if not aggregated and not sorted_:
        current.sort(key=lambda e: number(e.fields.get("@timestamp")) or 0.0, reverse=True)
    names = displayed or shown or (["@timestamp", "@message"] if not aggregated else [])
    rows: list[Row] = []
    for event in current[:limit]:
        row = [
            {"field": name, "value": render(event.fields[name], name in whole_names)}
            for name in names
            if event.fields.get(name) is not None
        ]
        if not aggregated:
            row.append({"field": "@ptr", "value": _pointer(event.fields)})
        rows.append(row)
    statistics = {  # rounded past float noise: whole numbers stay whole
        "recordsMatched": round(matched, 6),
        "recordsScanned": round(scanned_events, 6),
        "bytesScanned": round(scanned_bytes, 6),
    }
    return Outcome(rows, statistics)
