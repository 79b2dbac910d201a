"""What fits a terminal: tables whose columns never break a word, text wrapped at words.

Rich folds a word that is wider than its column (`lambda-function-pr-2` / `6`), so the
report never lets it: every column is at least as wide as its longest word, a word too long
for any width that fits is shortened in its middle (`lambda-fu…tion-pr-26`: its start
and its distinguishing end stay), and a table that cannot fit even so is written as one
record per row, each value beside or under its header. Free text wraps at spaces only; a word
longer than the line goes on a line of its own, whole.
"""

from __future__ import annotations

import io
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

ELLIPSIS: Final = "…"
_GAP: Final = 2  # between two columns: one space of padding, one of (invisible) rule
_WORD: Final = re.compile(r"\S+")
_FILL_MIN: Final = 24  # a `fill` column narrower than this: the table is records instead
_RECORD_INDENT: Final = 4
_RECORD_KEY_MAX: Final = 24  # a longer header puts its value on the next line
_RECORD_VALUE_MIN: Final = 24  # narrower than this beside its key: on the next line


def shorten(word: str, width: int) -> str:
    """`word` in at most `width` characters, its middle given up for an ellipsis."""
    if len(word) <= width:
        return word
    if width < 2:
        return ELLIPSIS[:width]
    tail = width // 2  # the end tells names apart (`...-pr-26`): it keeps the larger half
    head = width - 1 - tail
    return word[:head] + ELLIPSIS + word[len(word) - tail :]


def shorten_words(text: str, width: int) -> str:
    """Every word of `text` in at most `width` characters (`shorten`)."""
    return _WORD.sub(lambda word: shorten(word.group(), width), text)


def longest_word(text: str) -> int:
    return max((len(word) for word in text.split()), default=0)


def wrap(text: str, width: int, indent: str = "", hang: str = "") -> list[str]:
    """`text` wrapped at spaces to `width`, its lines after the first indented by `hang`
    more; a longer word stands whole on a line of its own (a path, a command: copied from
    the terminal as it is)."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        lines += textwrap.wrap(
            paragraph,
            width=max(width, len(indent + hang) + 1),
            initial_indent=indent,
            subsequent_indent=indent + hang,
            break_long_words=False,
            break_on_hyphens=False,
        ) or [indent.rstrip()]
    return lines


@dataclass(frozen=True)
class Column:
    header: str
    # The narrowest its words may be shortened to when the table would not fit otherwise
    # (None: never shortened; numbers and statuses are short anyway).
    shrink: int | None = None
    justify: Literal["left", "right"] = "left"
    # Long text (a reason, a money line's inputs) gets the room the others leave, once
    # they have theirs: a money figure on one line rather than a reason.
    fill: bool = False


def fit(columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int) -> list[int] | None:
    """Each column's width within `width`: none narrower than its longest word (after
    shortening, down to the column's `shrink`; a `fill` column not under `_FILL_MIN`), the
    room left given first to the columns that want the least more, `fill` columns last;
    None if the words cannot fit."""
    count = len(columns)
    room = width - _GAP * (count - 1)
    cells = [[column.header, *(row[i] for row in rows)] for i, column in enumerate(columns)]
    natural = [max(len(line) for cell in texts for line in cell.split("\n")) for texts in cells]
    floor = [max(1, *(longest_word(cell) for cell in texts)) for texts in cells]
    lowest = [
        max(longest_word(column.header), min(floor[i], column.shrink or floor[i]))
        for i, column in enumerate(columns)
    ]
    for i, column in enumerate(columns):  # long text narrower than this reads badly
        if column.fill:
            floor[i] = max(floor[i], min(natural[i], _FILL_MIN))
            lowest[i] = max(lowest[i], min(natural[i], _FILL_MIN))
    while sum(floor) > room:
        shrinkable = [i for i in range(count) if floor[i] > lowest[i]]
        if not shrinkable:
            return None
        widest = max(shrinkable, key=lambda i: floor[i])
        floor[widest] -= 1
    wants = [max(natural[i] - floor[i], 0) for i in range(count)]
    first = [want if not column.fill else 0 for want, column in zip(wants, columns, strict=True)]
    widths = _share(floor, first, room - sum(floor))
    then = [want if column.fill else 0 for want, column in zip(wants, columns, strict=True)]
    return _share(widths, then, room - sum(widths))


def _share(widths: list[int], wants: list[int], extra: int) -> list[int]:
    """The room left, given to the columns that want the least first, each all it wants
    while there is room (as many columns on one line as can be); the rest to the next."""
    widths = list(widths)
    for i in sorted(range(len(wants)), key=lambda i: wants[i]):
        given = min(wants[i], extra)
        widths[i] += given
        extra -= given
    return widths


def table(
    title: str | None,
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    width: int,
    widths: Sequence[int] | None = None,
    below: Sequence[str] | None = None,
) -> list[str]:
    """A table's lines, at most `width` wide, no word broken; as records if it cannot fit.
    `widths`: as `fit` gave them; `below`: a line under each row, from its second column
    (a reason too long for a column of its own), none where empty."""
    widths = widths or fit(columns, rows, width)
    if widths is None:
        return records(title, columns, rows, width, below)
    lines = wrap(title, width, hang="  ") if title else []  # as wide as the terminal
    if below is None:
        return lines + render(_grid(columns, widths, rows), width)
    lines += render(_grid(columns, widths, []), width)
    indent = " " * min(widths[0] + _GAP if len(widths) > 1 else 2, width // 3)
    for row, under in zip(rows, below, strict=True):
        lines += render(_grid(columns, widths, [row], header=False), width)
        if under:
            lines += wrap(shorten_words(under, width - len(indent) - 2), width, indent, "  ")
    return lines


def _grid(
    columns: Sequence[Column],
    widths: Sequence[int],
    rows: Sequence[Sequence[str]],
    header: bool = True,
) -> Table:
    """Rich's table at exactly these widths (so that rows made apart line up)."""
    grid = Table(
        box=box.SIMPLE_HEAD,
        show_edge=False,
        show_header=header,
        pad_edge=False,
        padding=(0, 1, 0, 0),
    )
    for column, size in zip(columns, widths, strict=True):
        grid.add_column(column.header, width=size, overflow="fold", justify=column.justify)
    for row in rows:
        grid.add_row(
            *(Text(shorten_words(cell, size)) for cell, size in zip(row, widths, strict=True))
        )
    return grid


def records(
    title: str | None,
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    width: int,
    below: Sequence[str] | None = None,
) -> list[str]:
    """A table too wide for the terminal, a record per row: its first cell as the record's
    name (unless there is only one), then each other cell beside its header, or under it
    when there is no room."""
    lines = wrap(title, width, hang="  ") if title else []
    named = len(rows) > 1  # a single row needs no name: the title says whose it is
    shown = columns[1:] if named else columns
    key = min(max((len(column.header) for column in shown), default=0), _RECORD_KEY_MAX)
    beside = width - _RECORD_INDENT - key - 2
    for n, row in enumerate(rows):
        if named:
            lines.append("  " + shorten(row[0], width - 2))
        for column, cell in zip(shown, row[1:] if named else row, strict=True):
            header = column.header.replace("\n", " ")
            if len(header) <= key and beside >= _RECORD_VALUE_MIN:
                value = wrap(shorten_words(cell, beside), beside) or [""]
                pad = " " * _RECORD_INDENT
                lines.append(f"{pad}{header.ljust(key)}  {value[0]}".rstrip())
                lines += [f"{pad}{' ' * key}  {line}" for line in value[1:]]
            else:
                lines.append(" " * _RECORD_INDENT + shorten(header, width - _RECORD_INDENT))
                inner = width - _RECORD_INDENT - 2
                lines += wrap(shorten_words(cell, inner), width, " " * (_RECORD_INDENT + 2))
        if below and below[n]:
            pad = " " * _RECORD_INDENT
            lines += wrap(shorten_words(below[n], width - _RECORD_INDENT - 2), width, pad, "  ")
    return lines


def render(renderable: Table, width: int) -> list[str]:
    """A rich renderable's lines, trailing spaces off."""
    console = Console(
        file=io.StringIO(), width=width, force_terminal=False, no_color=True, emoji=False
    )
    console.print(renderable)
    text: str = console.file.getvalue()  # type: ignore[attr-defined]
    return [line.rstrip() for line in text.splitlines()]
