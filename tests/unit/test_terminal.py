"""Tables that fit a terminal: no word broken, long names shortened in their middle, a
table too wide written as records, free text wrapped at spaces only."""

from __future__ import annotations

import random
import string

import pytest

from optimizer_async.reporting.terminal import Column, fit, shorten, table, wrap


@pytest.mark.parametrize(
    ("word", "width", "expected"),
    [
        ("lambda-function-pr-26", 30, "lambda-function-pr-26"),
        ("lambda-function-pr-26", 12, "lambd…-pr-26"),
        ("lambda-role-pr-26/lambda-optimizer-pr-26", 20, "lambda-ro…izer-pr-26"),
        ("abc", 1, "…"),
    ],
)
def test_a_name_too_long_loses_its_middle_and_keeps_both_ends(
    word: str, width: int, expected: str
) -> None:
    assert shorten(word, width) == expected
    assert len(shorten(word, width)) <= width


def test_text_wraps_at_spaces_and_a_long_word_stands_whole_on_its_own_line() -> None:
    path = "/very/long/path/to/a/state/directory/runs/20261207T010627Z-127d93/report.json"
    lines = wrap(f"the full report: {path} (JSON)", 40, hang="  ")
    assert lines == ["the full report:", f"  {path}", "  (JSON)"]


def _word(rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_lowercase + "-/.") for _ in range(rng.randint(1, 34)))


@pytest.mark.parametrize("seed", range(40))
def test_no_table_is_wider_than_the_terminal_or_breaks_a_word(seed: int) -> None:
    rng = random.Random(seed)
    count, width = rng.randint(1, 9), rng.choice([40, 60, 80, 100, 140])
    columns = [
        Column(f"h{i} {_word(rng)[:8]}", rng.choice([None, 8, 12, 20]), fill=rng.random() < 0.2)
        for i in range(count)
    ]
    rows = [
        [" ".join(_word(rng) for _ in range(rng.randint(0, 6))) for _ in range(count)]
        for _ in range(rng.randint(1, 6))
    ]
    below = [" ".join(_word(rng) for _ in range(rng.randint(0, 20))) for _ in rows]
    for lines in (table("t", columns, rows, width), table("t", columns, rows, width, below=below)):
        assert max(len(line) for line in lines) <= width
        words = {w for row in rows for cell in row for w in cell.split()}
        words |= {w for column in columns for w in column.header.split()}
        words |= {w for line in below for w in line.split()} | {"t"}
        for line in lines:
            for word in line.split():
                if set(word) <= set("─━"):
                    continue
                assert word in words or "…" in word, (word, width)  # whole, or shortened


def test_a_table_that_cannot_fit_is_written_as_records() -> None:
    columns = [Column("resource"), Column("setting"), Column("after")]
    rows = [("lambda-function-pr-26", "ReservedConcurrentExecutions", "50")]
    assert fit(columns, rows, 30) is None
    assert fit(columns, rows, 50) is None
    assert fit(columns, rows, 60) == [21, 28, 5]
    lines = table("changes", columns, rows, 30)
    assert lines == [  # too narrow for a value beside its header: each under its own
        "changes",
        "    resource",
        "      lambda-function-pr-26",
        "    setting",
        "      ReservedCon…ntExecutions",  # shortened: no room for it whole, even alone
        "    after",
        "      50",
    ]
    wider = table("changes", columns, rows, 50)  # still too narrow for the table
    assert wider[1:] == [
        "    resource  lambda-function-pr-26",
        "    setting   ReservedConcurrentExecutions",
        "    after     50",
    ]


def test_columns_that_want_little_get_it_before_long_text() -> None:
    columns = [Column("environment"), Column("status"), Column("why", 12, fill=True)]
    rows = [("pr-1", "planned", "word " * 30)]
    widths = fit(columns, rows, 60)
    assert widths is not None
    assert widths[:2] == [11, 7]  # on one line each
    assert sum(widths) + 2 * 2 == 60  # the reason takes what is left
