"""The Logs Insights query language: text to a typed query, or a `QueryError` in AWS's words.

Commands separated by `|`: `fields EXPR [as NAME], ...`, `display FIELD, ...`,
`filter EXPR`, `stats AGG(...) [as NAME], ... [by EXPR [as NAME], ...]`,
`sort EXPR [asc|desc], ...`, `limit N`, `parse FIELD "glob with * captures" as A, B` or
`parse FIELD /regex with (?<name>...) groups/`, `dedup FIELD, ...`. Expressions: literals
(numbers, 'single' or "double" quoted strings), fields (`@message`, dotted JSON paths such
as `record.metrics.maxMemoryUsedMB`, or `back-quoted`), regexes `/.../`, lists `[a, b]`,
arithmetic `+ - * / % ^`, comparisons `= != < <= > >=`, `like`, `=~`, `in`, `not`, `and`,
`or`, and function calls. Keywords and function names are case-insensitive; `#` starts a
comment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

Value = str | float | None


class Instant(float):
    """A time (milliseconds since the epoch), rendered as Logs Insights renders times."""


class QueryError(ValueError):
    """A query AWS would refuse at StartQuery (MalformedQueryException)."""


# --- tokens ---------------------------------------------------------------------------------

_SYMBOLS: Final = ("!=", "<=", ">=", "==", "=~", "=", "<", ">", "+", "-", "*", "/", "%", "^",
                   "(", ")", ",", "[", "]", "|")  # fmt: skip
_IDENT: Final = re.compile(r"[@A-Za-z_][A-Za-z0-9_.@$]*")
_NUMBER: Final = re.compile(r"\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_DURATION_UNITS: Final = {"ms": 0.001, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86_400,
                          "w": 604_800}  # fmt: skip
_DURATION: Final = re.compile(r"(\d+)(ms|min|s|m|h|d|w)(?![A-Za-z0-9_])")
_VALUE_KINDS: Final = frozenset({"ident", "number", "string", "regex", "duration"})
# Words after which a `/` opens a regex rather than dividing.
_KEYWORDS: Final = frozenset({"like", "and", "or", "not", "in", "filter", "parse", "by", "as",
                              "fields", "stats", "sort", "display"})  # fmt: skip


@dataclass(frozen=True)
class Token:
    kind: str  # ident, number, string, regex, duration, symbol, end
    text: str  # the value: a name, the number's text, the string's content, the symbol
    start: int
    end: int


def _position(text: str, at: int) -> str:
    line = text.count("\n", 0, at) + 1
    column = at - (text.rfind("\n", 0, at) + 1) + 1
    return f"line {line} and position {column}"


def _quoted(text: str, at: int, quote: str) -> tuple[str, int]:
    """The content of a quoted string or regex starting at `at` (its opening quote)."""
    out, index = [], at + 1
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            following = text[index + 1]
            # a regex keeps its escapes for `re`; a string drops the backslash
            out.append(following if quote != "/" or following == "/" else char + following)
            index += 2
            continue
        if char == quote:
            return "".join(out), index + 1
        out.append(char)
        index += 1
    raise QueryError(f"unterminated {quote} found at {_position(text, at)}")


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char.isspace():
            index += 1
            continue
        if char == "#":
            newline = text.find("\n", index)
            index = len(text) if newline < 0 else newline
            continue
        last = tokens[-1] if tokens else None
        previous_is_value = last is not None and (
            (
                last.kind in _VALUE_KINDS
                and not (last.kind == "ident" and last.text.lower() in _KEYWORDS)
            )
            or last.text in (")", "]")
        )
        parse_pattern = len(tokens) >= 2 and tokens[-2].text.lower() == "parse"
        if char in "\"'`" or (char == "/" and (parse_pattern or not previous_is_value)):
            content, end = _quoted(text, index, char)
            kind = {"`": "ident", "/": "regex"}.get(char, "string")
            tokens.append(Token(kind, content, index, end))
            index = end
            continue
        if match := _DURATION.match(text, index):
            tokens.append(Token("duration", match.group(0), index, match.end()))
            index = match.end()
            continue
        if match := _NUMBER.match(text, index):
            tokens.append(Token("number", match.group(0), index, match.end()))
            index = match.end()
            continue
        if match := _IDENT.match(text, index):
            tokens.append(Token("ident", match.group(0), index, match.end()))
            index = match.end()
            continue
        symbol = next((s for s in _SYMBOLS if text.startswith(s, index)), None)
        if symbol is None:
            raise QueryError(f"unexpected symbol found {char} at {_position(text, index)}")
        tokens.append(Token("symbol", symbol, index, index + len(symbol)))
        index += len(symbol)
    tokens.append(Token("end", "", len(text), len(text)))
    return tokens


# --- expressions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Literal:
    value: Value


@dataclass(frozen=True)
class Field:
    name: str


@dataclass(frozen=True)
class Pattern:
    """A `/regex/` operand (of `like`, `=~`, `parse`, or a function)."""

    regex: re.Pattern[str]


@dataclass(frozen=True)
class Items:
    """A `[a, b, ...]` list (the right of `in`)."""

    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Unary:
    op: str  # "-" or "not"
    operand: Expr


@dataclass(frozen=True)
class Binary:
    op: str  # arithmetic, comparison, "and", "or", "like", "not like", "in", "not in", "=~"
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Call:
    function: str  # lower case
    args: tuple[Expr, ...]
    star: bool = False  # count(*)


@dataclass(frozen=True)
class Duration:
    """`5m` in `bin(5m)`: seconds."""

    seconds: float


Expr = Literal | Field | Pattern | Items | Unary | Binary | Call | Duration

# --- commands -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Named:
    expr: Expr
    name: str  # its `as` name, else the expression as written


@dataclass(frozen=True)
class Fields:
    items: tuple[Named, ...]


@dataclass(frozen=True)
class Display:
    names: tuple[str, ...]


@dataclass(frozen=True)
class Filter:
    condition: Expr


@dataclass(frozen=True)
class Stats:
    aggregates: tuple[Named, ...]
    by: tuple[Named, ...]


@dataclass(frozen=True)
class Sort:
    keys: tuple[tuple[Expr, bool], ...]  # (expression, descending)


@dataclass(frozen=True)
class Limit:
    count: int


@dataclass(frozen=True)
class Parse:
    source: Expr
    regex: re.Pattern[str]
    groups: tuple[tuple[str, str], ...]  # (the regex's group, the field it makes)


@dataclass(frozen=True)
class Dedup:
    names: tuple[str, ...]


Command = Fields | Display | Filter | Stats | Sort | Limit | Parse | Dedup


@dataclass(frozen=True)
class Query:
    commands: tuple[Command, ...]

    @property
    def aggregates(self) -> bool:
        return any(isinstance(command, Stats) for command in self.commands)


AGGREGATES: Final = frozenset({"count", "count_distinct", "sum", "avg", "min", "max", "pct",
                               "percentile", "stddev", "earliest", "latest", "sortsfirst",
                               "sortslast"})  # fmt: skip
FUNCTIONS: Final = frozenset({"ispresent", "isempty", "isblank", "coalesce", "concat", "strlen",
                              "tolower", "toupper", "trim", "ltrim", "rtrim", "substr",
                              "replace", "strcontains", "abs", "ceil", "floor", "greatest",
                              "least", "log", "sqrt", "pow", "bin", "datefloor", "dateceil",
                              "frommillis", "tomillis"})  # fmt: skip
_COMPARISONS: Final = frozenset({"=", "==", "!=", "<", "<=", ">", ">=", "=~"})


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.at = 0

    # token helpers
    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.at + ahead, len(self.tokens) - 1)]

    def take(self) -> Token:
        token = self.peek()
        self.at += 1
        return token

    def keyword(self, *words: str) -> bool:
        token = self.peek()
        return token.kind == "ident" and token.text.lower() in words

    def symbol(self, *symbols: str) -> bool:
        token = self.peek()
        return token.kind == "symbol" and token.text in symbols

    def expect_symbol(self, symbol: str) -> None:
        if not self.symbol(symbol):
            self.fail()
        self.take()

    def fail(self, token: Token | None = None) -> QueryError:
        token = token or self.peek()
        shown = token.text or "end of query"
        raise QueryError(f"unexpected symbol found {shown} at {_position(self.text, token.start)}")

    def source(self, start: int, end: int) -> str:
        return " ".join(self.text[start:end].split())

    # the query
    def query(self) -> Query:
        commands: list[Command] = []
        while True:
            if self.peek().kind == "end":
                if not commands:
                    raise QueryError("the query is empty")
                self.fail()
            commands.append(self.command())
            if self.peek().kind == "end":
                return Query(tuple(commands))
            self.expect_symbol("|")

    def command(self) -> Command:
        token = self.take()
        name = token.text.lower() if token.kind == "ident" else ""
        if name == "fields":
            return Fields(self.named_list())
        if name == "display":
            return Display(self.names())
        if name == "filter":
            return Filter(self.expression())
        if name == "stats":
            return self.stats()
        if name == "sort":
            return self.sort()
        if name == "limit":
            count = self.take()
            if count.kind != "number" or not count.text.isdigit() or int(count.text) < 1:
                self.fail(count)
            return Limit(int(count.text))
        if name == "parse":
            return self.parse()
        if name == "dedup":
            return Dedup(self.names())
        raise self.fail(token)

    def names(self) -> tuple[str, ...]:
        names = [self.field_name()]
        while self.symbol(","):
            self.take()
            names.append(self.field_name())
        return tuple(names)

    def named_list(self) -> tuple[Named, ...]:
        items = [self.named()]
        while self.symbol(","):
            self.take()
            items.append(self.named())
        return tuple(items)

    def named(self) -> Named:
        start = self.peek().start
        expr = self.expression()
        end = self.tokens[self.at - 1].end
        if self.keyword("as"):
            self.take()
            return Named(expr, self.field_name())
        if isinstance(expr, Field):
            return Named(expr, expr.name)
        return Named(expr, self.source(start, end))

    def field_name(self) -> str:
        token = self.take()
        if token.kind != "ident":
            self.fail(token)
        return token.text

    def stats(self) -> Stats:
        aggregates = self.named_list()
        for item in aggregates:
            if not _has_aggregate(item.expr):
                raise QueryError(f"stats needs an aggregate function, not {item.name}")
        by: tuple[Named, ...] = ()
        if self.keyword("by"):
            self.take()
            by = self.named_list()
        return Stats(aggregates, by)

    def sort(self) -> Sort:
        if self.keyword("by"):
            self.take()
        keys = []
        while True:
            expr = self.expression()
            descending = False
            if self.keyword("asc", "desc"):
                descending = self.take().text.lower() == "desc"
            keys.append((expr, descending))
            if not self.symbol(","):
                return Sort(tuple(keys))
            self.take()

    def parse(self) -> Parse:
        source = self.additive()
        pattern = self.take()
        if pattern.kind == "regex":
            regex = _compile(_python_groups(pattern.text))
            if not regex.groupindex:
                raise QueryError("parse with a regular expression needs named groups (?<name>...)")
            return Parse(source, regex, tuple((name, name) for name in regex.groupindex))
        if pattern.kind != "string":
            self.fail(pattern)
        if not self.keyword("as"):
            self.fail()
        self.take()
        names = self.names()
        pieces = pattern.text.split("*")
        if len(pieces) - 1 != len(names):
            raise QueryError(
                f"parse: the pattern has {len(pieces) - 1} wildcards for {len(names)} fields"
            )
        regex_text = re.escape(pieces[0])
        for index, piece in enumerate(pieces[1:]):
            lazy = "?" if index < len(names) - 1 else ""  # the last takes the rest
            regex_text += f"(?P<g{index}>.*{lazy})" + re.escape(piece)
        groups = tuple((f"g{index}", name) for index, name in enumerate(names))
        return Parse(source, _compile(regex_text), groups)

    # expressions, lowest precedence first
    def expression(self) -> Expr:
        left = self.conjunction()
        while self.keyword("or"):
            self.take()
            left = Binary("or", left, self.conjunction())
        return left

    def conjunction(self) -> Expr:
        left = self.negation()
        while self.keyword("and"):
            self.take()
            left = Binary("and", left, self.negation())
        return left

    def negation(self) -> Expr:
        if self.keyword("not"):
            self.take()
            return Unary("not", self.negation())
        return self.comparison()

    def comparison(self) -> Expr:
        left = self.additive()
        if self.symbol(*_COMPARISONS):
            op = self.take().text
            return Binary("=" if op == "==" else op, left, self.additive())
        negated = False
        following = self.peek(1)
        if (
            self.keyword("not")
            and following.kind == "ident"
            and following.text.lower() in ("like", "in")
        ):
            self.take()
            negated = True
        if self.keyword("like", "in"):
            op = self.take().text.lower()
            right = self.additive()
            return Binary(f"not {op}" if negated else op, left, right)
        if negated:
            self.fail()
        return left

    def additive(self) -> Expr:
        left = self.multiplicative()
        while self.symbol("+", "-"):
            op = self.take().text
            left = Binary(op, left, self.multiplicative())
        return left

    def multiplicative(self) -> Expr:
        left = self.unary()
        while self.symbol("*", "/", "%"):
            op = self.take().text
            left = Binary(op, left, self.unary())
        return left

    def unary(self) -> Expr:
        if self.symbol("-"):
            self.take()
            return Unary("-", self.unary())
        return self.power()

    def power(self) -> Expr:
        base = self.primary()
        if self.symbol("^"):
            self.take()
            return Binary("^", base, self.unary())
        return base

    def primary(self) -> Expr:
        token = self.take()
        if token.kind == "number":
            return Literal(float(token.text))
        if token.kind == "string":
            return Literal(token.text)
        if token.kind == "regex":
            return Pattern(_compile(_python_groups(token.text)))
        if token.kind == "duration":
            match = _DURATION.fullmatch(token.text)
            assert match is not None  # the tokenizer matched it
            return Duration(int(match.group(1)) * _DURATION_UNITS[match.group(2)])
        if token.kind == "symbol" and token.text == "(":
            inner = self.expression()
            self.expect_symbol(")")
            return inner
        if token.kind == "symbol" and token.text == "[":
            items: list[Expr] = []
            if not self.symbol("]"):
                items.append(self.expression())
                while self.symbol(","):
                    self.take()
                    items.append(self.expression())
            self.expect_symbol("]")
            return Items(tuple(items))
        if token.kind == "ident":
            if self.symbol("("):
                return self.call(token)
            return Field(token.text)
        raise self.fail(token)

    def call(self, name: Token) -> Call:
        function = name.text.lower()
        if function not in AGGREGATES and function not in FUNCTIONS:
            raise QueryError(f"unknown function {name.text} at {_position(self.text, name.start)}")
        self.expect_symbol("(")
        if function == "count" and self.symbol("*"):
            self.take()
            self.expect_symbol(")")
            return Call(function, (), star=True)
        args: list[Expr] = []
        if not self.symbol(")"):
            args.append(self.expression())
            while self.symbol(","):
                self.take()
                args.append(self.expression())
        self.expect_symbol(")")
        if function in AGGREGATES and function != "count" and not args:
            raise QueryError(f"{name.text} needs an argument")
        if function in ("pct", "percentile") and len(args) != 2:
            raise QueryError(f"{name.text} takes a field and a percentile")
        return Call(function, tuple(args))


def _has_aggregate(expr: Expr) -> bool:
    if isinstance(expr, Call):
        return expr.function in AGGREGATES or any(_has_aggregate(a) for a in expr.args)
    if isinstance(expr, Binary):
        return _has_aggregate(expr.left) or _has_aggregate(expr.right)
    if isinstance(expr, Unary):
        return _has_aggregate(expr.operand)
    return False


_NAMED_GROUP: Final = re.compile(r"\(\?<(?![=!])")


def _python_groups(pattern: str) -> str:
    """AWS's (and PCRE's) `(?<name>...)` as Python's `(?P<name>...)`."""
    return _NAMED_GROUP.sub("(?P<", pattern)


def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as error:
        raise QueryError(f"invalid regular expression: {error}") from None


def parse(text: str) -> Query:
    """The query, or QueryError saying where it is wrong."""
    return _Parser(text).query()
