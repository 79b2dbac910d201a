"""Every option the command line takes is documented in docs/command-line.md, and the README
starts with the two commands that set everything up."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMMAND_LINE = ROOT / "docs" / "command-line.md"
README = ROOT / "README.md"
COMMON = "Options every AWS command takes"


def command_parsers() -> dict[str, argparse.ArgumentParser]:
    """Each command's parser by its name on the command line ("" for a run). The one place
    that knows where the parsers are: point it at them when they move."""
    from optimizer_async.commands.registry import COMMANDS

    named = {"report": "report merge"}  # its one action
    return {named.get(name, name): command.parser() for name, command in COMMANDS.items()}


# The sections of docs/command-line.md whose tables document a command's options.
SECTIONS: dict[str, tuple[str, ...]] = {
    "": ("A run", COMMON),
    "apply": ("apply", COMMON),
    "rollback": ("rollback", COMMON),
    "runs": ("runs", COMMON),
    "savings": ("savings", COMMON),
    "report merge": ("report merge",),
    "iam-policy": ("iam-policy",),
    "serve": ("serve", "A run", COMMON),
}


def documented() -> dict[str, list[str]]:
    """Per `## ` section of the page, the options its table rows document: each code span
    in a row's first cell names one (`--only S[,S]`, `--prices table\\|live`)."""
    entries: dict[str, list[str]] = {}
    section = ""
    for line in COMMAND_LINE.read_text().splitlines():
        if line.startswith("## "):
            section = line.removeprefix("## ").strip()
            entries[section] = []
        elif line.startswith("| ") and section:
            first_cell = line.split(" | ")[0]
            row = {span.split(" ")[0] for span in re.findall(r"`([^`]+)`", first_cell)}
            entries[section].extend(sorted(row))
    return entries


def options(parser: argparse.ArgumentParser) -> list[str]:
    return sorted(
        option
        for action in parser._actions
        for option in action.option_strings
        if not isinstance(action, argparse._HelpAction)
    )


def test_every_command_has_its_sections() -> None:
    assert set(command_parsers()) == set(SECTIONS)
    missing = {s for wanted in SECTIONS.values() for s in wanted} - set(documented())
    assert not missing, f"docs/command-line.md has no section(s): {sorted(missing)}"


@pytest.mark.parametrize("command", sorted(SECTIONS))
def test_every_option_is_documented_once(command: str) -> None:
    entries = documented()
    rows = [option for section in SECTIONS[command] for option in entries.get(section, [])]
    parser_options = options(command_parsers()[command])
    assert parser_options, f"{command or 'a run'}: no options found in its parser"
    undocumented = [option for option in parser_options if option not in rows]
    assert not undocumented, (
        f"`{command or 'lambda-optimizer'}` takes {undocumented}: document each in a table "
        f"of docs/command-line.md, in one of its sections {list(SECTIONS[command])}"
    )
    twice = sorted({option for option in parser_options if rows.count(option) > 1})
    assert not twice, f"{command or 'a run'}: documented more than once: {twice}"


def test_the_readme_starts_with_the_two_commands() -> None:
    first_screen = "\n".join(README.read_text().splitlines()[:40])
    for command in ("make demo", "make test"):
        assert command in first_screen, f"README's first 40 lines lack `{command}`"


def anchors(page: Path) -> set[str]:
    """The anchors GitHub makes of a page's headings: lower case, punctuation dropped,
    spaces to hyphens."""
    slugs = set()
    for line in page.read_text().splitlines():
        if line.startswith("#"):
            heading = line.lstrip("#").strip().lower()
            slugs.add(re.sub(r"[^\w\- ]", "", heading).replace(" ", "-"))
    return slugs


def links() -> list[tuple[Path, str]]:
    pages = [README, *sorted((ROOT / "docs").glob("*.md"))]
    return [
        (page, target)
        for page in pages
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text())
        if not target.startswith(("http://", "https://", "mailto:"))
    ]


def test_every_relative_link_in_the_docs_resolves() -> None:
    broken = []
    for page, target in links():
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{page.name}: {target} (no such file)")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{page.name}: {target} (no such heading)")
    assert links(), "found no relative links: the pattern is wrong"
    assert not broken, "\n".join(broken)


def test_a_runs_help_names_every_other_command_in_order() -> None:
    from optimizer_async.commands.registry import COMMANDS
    from optimizer_async.commands.run import OTHER_COMMANDS

    assert tuple(name for name in COMMANDS if name) == OTHER_COMMANDS
    help_text = " ".join(command_parsers()[""].format_help().split())
    assert f"Other commands: {', '.join(OTHER_COMMANDS)}" in help_text
