"""The report's formats, and how much of a fleet the table shows: what the command line
offers, in a module light enough to be read before the input is valid."""

from __future__ import annotations

from typing import Final, Literal

OutputFormat = Literal["table", "json", "markdown"]
OUTPUT_FORMATS: Final[tuple[OutputFormat, ...]] = ("table", "json", "markdown")
# --details: which environments the table shows in detail after the summary (Markdown: all
# within GitHub's comment size, or every one, or none); unset: problems, all of up to three.
Details = Literal["problems", "all", "none"]
DETAILS: Final[tuple[Details, ...]] = ("problems", "all", "none")
