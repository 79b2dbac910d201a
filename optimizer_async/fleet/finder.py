"""`--all`: which environments an account holds, and why each candidate was or was not taken.

A function's name alone cannot say its environment: `lambda-function-dev-old` is environment
`dev-old` or a leftover of `dev` named by hand. So a function is a candidate by name
(`{base}-{suffix}` for a configured base, the suffix valid), and is taken only when its
`environment-suffix` tag names that same suffix: the stack tags everything it deploys, so a
function the stack made always qualifies and a decoy never does. Names come from
ListFunctions pages; each candidate the globs let through is read with GetFunction (its
tags), and the run's discovery is handed those reads rather than making them again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, Final

import anyio
import structlog

from optimizer_async.definitions.naming import InvalidNameError, validate_suffix
from optimizer_async.fleet.accounts import Account
from optimizer_async.steps.base import ApiCall, Permission
from optimizer_async.steps.core import SUFFIX_TAG, find_function
from optimizer_async.steps.inventory import FunctionState

if TYPE_CHECKING:
    from optimizer_async.aws.gateway import Aws

log = structlog.get_logger("optimizer_async.finder")

FINDER_READS: Final = (ApiCall("lambda", "ListFunctions"), ApiCall("lambda", "GetFunction"))
# ListFunctions cannot be scoped to resources: AWS requires "*" for it.
FINDER_PERMISSIONS: Final = (Permission("lambda:ListFunctions", "*"),)
_READS_AT_ONCE: Final = 32


@dataclass(frozen=True, slots=True)
class Candidate:
    """A function whose name has the form `{base}-{suffix}`, and what became of it."""

    function: str
    suffix: str
    taken: bool
    reason: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Filters:
    """`--match` globs (any of them; none: every suffix) and `--exclude` globs; with
    `--accounts`, also the account's own (`accounts.Account.refusal`)."""

    match: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    account: Account | None = None

    def refusal(self, suffix: str) -> str | None:
        """Why the globs leave `suffix` out, or None if they let it through."""
        if self.match and not any(fnmatchcase(suffix, glob) for glob in self.match):
            return f"not matched by --match {' '.join(self.match)}"
        excluded = next((glob for glob in self.exclude if fnmatchcase(suffix, glob)), None)
        if excluded is not None:
            return f"excluded by --exclude {excluded}"
        return None if self.account is None else self.account.refusal(suffix)


@dataclass(frozen=True, slots=True)
class Finding:
    """What `--all` found: the environments taken, every candidate with its reason, and the
    candidates' functions as read (discovery reuses them)."""

    suffixes: tuple[str, ...]
    candidates: tuple[Candidate, ...]
    listed: int  # functions ListFunctions returned
    reads: dict[str, FunctionState]

    @property
    def refused(self) -> frozenset[tuple[str, str]]:
        """(function, suffix) of the candidates not taken: discovery must not take them
        either, as another base's function of an environment found by its first."""
        return frozenset((c.function, c.suffix) for c in self.candidates if not c.taken)

    def to_json(self) -> dict[str, Any]:
        return {
            "functions_listed": self.listed,
            "environments": list(self.suffixes),
            "candidates": [candidate.to_json() for candidate in self.candidates],
        }

    def summary(self) -> str:
        """One line for people: how many were found, of how many candidates."""
        left = len(self.candidates) - sum(c.taken for c in self.candidates)
        return (
            f"found {len(self.suffixes)} environment(s) in {self.listed} function(s); "
            f"{left} candidate function(s) not taken (reasons: --output json)"
        )


def candidates(names: Iterable[str], bases: Sequence[str]) -> list[tuple[str, str]]:
    """(function, suffix) for every name `{base}-{suffix}` with a valid suffix: by name only.
    A name two bases can form (`a-b-dev`: base `a` or `a-b`) is a candidate of each."""
    found: list[tuple[str, str]] = []
    for name in names:
        for base in bases:
            if not name.startswith(f"{base}-"):
                continue
            suffix = name[len(base) + 1 :]
            try:
                found.append((name, validate_suffix(suffix)))
            except InvalidNameError:
                continue
    return found


def judge(suffix: str, state: FunctionState | None) -> tuple[bool, str]:
    """Whether the function read for candidate `suffix` makes it an environment, and why."""
    if state is None:
        return False, "deleted since it was listed"
    tagged = state.tags.get(SUFFIX_TAG)
    if tagged == suffix:
        return True, f"{SUFFIX_TAG} tag is {suffix!r}"
    if tagged is None:
        return False, f"no {SUFFIX_TAG} tag: the name alone does not make an environment"
    return False, f"{SUFFIX_TAG} tag is {tagged!r}, not {suffix!r}"


async def listed_names(aws: Aws) -> list[str]:
    """Every function in the region, by name (ListFunctions, 50 a page)."""
    names: list[str] = []
    pages = aws.pages(("Marker", "NextMarker"), aws.lambda_.list_functions, MaxItems=50)
    async for page in pages:
        names.extend(str(fn["FunctionName"]) for fn in page.get("Functions", ()))
    return names


async def find(
    aws: Aws,
    bases: Sequence[str],
    filters: Filters,
    mine: Callable[[str], bool] = lambda suffix: True,
) -> Finding:
    """The environments of the region, every candidate judged (see the module's docstring).
    `mine`: the suffixes this run judges at all (a shard's; the other shards judge the rest,
    so each candidate is read once across them)."""
    names = await listed_names(aws)
    judged: dict[tuple[str, str], Candidate] = {}
    to_read: dict[str, list[str]] = {}  # function -> the suffixes it is a candidate for
    for function, suffix in candidates(names, bases):
        if not mine(suffix):
            continue
        refusal = filters.refusal(suffix)
        if refusal is not None:
            judged[function, suffix] = Candidate(function, suffix, False, refusal)
        else:
            to_read.setdefault(function, []).append(suffix)
    reads: dict[str, FunctionState] = {}
    gate = anyio.Semaphore(_READS_AT_ONCE)

    async def read(function: str) -> None:
        async with gate:
            state = await find_function(aws, function)
        if state is not None:
            reads[function] = state
        for suffix in to_read[function]:
            taken, reason = judge(suffix, state)
            judged[function, suffix] = Candidate(function, suffix, taken, reason)

    async with anyio.create_task_group() as group:
        for function in to_read:
            group.start_soon(read, function)
    ordered = tuple(judged[key] for key in sorted(judged, key=lambda k: (k[1], k[0])))
    suffixes = tuple(dict.fromkeys(c.suffix for c in ordered if c.taken))
    log.info(
        "environments.found",
        functions_listed=len(names),
        candidates=len(ordered),
        environments=len(suffixes),
    )
    return Finding(suffixes, ordered, len(names), reads)
