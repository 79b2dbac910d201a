"""`--shard I/N`: a deterministic share of the (account, region, suffix) work, so that a job
runner people already have spreads a large organisation over machines: a Kubernetes Indexed
Job (`JOB_COMPLETION_INDEX`), an AWS Batch array job (`AWS_BATCH_JOB_ARRAY_INDEX`), a CI
matrix. We never schedule anything ourselves.

Rendezvous (highest-random-weight) hashing: each environment goes to the shard whose hash of
(shard, environment) is highest. Every shard computes the same answer alone, with no list to
agree on; an environment's shard depends only on itself and N, so environments that come
and go (`pr-123` stacks) move no other environment; changing N moves about 1/N of them.
The hash is BLAKE2b, the same on every machine and Python (unlike `hash()`).

Each shard's report carries a fingerprint of its run (`Fingerprint`): `report merge` joins
only shards whose every part agrees, and names the parts that do not.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

# Where job runners put an array task's index, in the order they are looked at.
INDEX_VARIABLES: Final = ("JOB_COMPLETION_INDEX", "AWS_BATCH_JOB_ARRAY_INDEX")
_SHARD_RE: Final = re.compile(r"(?P<index>[0-9]+|auto)/(?P<count>[0-9]+)")
MAX_SHARDS: Final = 10_000


class ShardError(ValueError):
    """A `--shard` value that names no shard."""


@dataclass(frozen=True)
class Shard:
    index: int  # 0-based, as Indexed Jobs and Batch array jobs count
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def takes(self, account: str, region: str, suffix: str) -> bool:
        return owner(key(account, region, suffix), self.count) == self.index


def key(account: str, region: str, suffix: str) -> str:
    """One environment's identity across an organisation."""
    return f"{account}/{region}/{suffix}"


def owner(item: str, count: int) -> int:
    """The shard (0..count-1) whose weight for `item` is highest."""
    return max(range(count), key=lambda shard: _weight(shard, item))


def _weight(shard: int, item: str) -> bytes:
    return hashlib.blake2b(f"{shard}\0{item}".encode(), digest_size=8).digest()


def parse(text: str, environ: Mapping[str, str]) -> Shard:
    """`I/N` (I from 0) or `auto/N` (I from the job runner's index variable)."""
    found = _SHARD_RE.fullmatch(text.strip())
    if found is None:
        raise ShardError(f"--shard {text!r} is not I/N (e.g. 0/4) or auto/N")
    count = int(found["count"])
    if not 1 <= count <= MAX_SHARDS:
        raise ShardError(f"--shard {text}: N must be between 1 and {MAX_SHARDS}")
    given = found["index"]
    if given == "auto":
        variable = next((name for name in INDEX_VARIABLES if environ.get(name)), None)
        if variable is None:
            raise ShardError(
                f"--shard auto/{count}: set I, or run where {' or '.join(INDEX_VARIABLES)} is set"
            )
        given = environ[variable].strip()
        if not (given.isascii() and given.isdigit()):
            raise ShardError(f"{variable}={given!r} is not a shard index")
    index = int(given)
    if index >= count:
        raise ShardError(f"--shard {index}/{count}: the index counts from 0 to {count - 1}")
    return Shard(index, count)


# What must agree for shards to be one run's, in the order a refusal names them.
FINGERPRINT_PARTS: Final = (
    "command",  # the command and whether it is a dry run
    "selection",  # account, region, --suffix or --all with its globs, bases, --accounts
    "steps",  # the steps that ran
    "targets",  # the targets (without the guardrails)
    "guardrails",  # the guardrails: mode, evidence window, scan budget, factors
    "prices",  # --prices, the price book's origin, --free-tier
    "shards",  # the shard count
    "candidates",  # every environment the run judged before it was split into shards
)


@dataclass(frozen=True)
class Fingerprint:
    """A SHA-256 per part of a shard's run (`FINGERPRINT_PARTS`), of the part's canonical
    JSON: shards of one run agree in every part; shards of another differ in some, which a
    refusal can name. Digests, not values: the report stays small whatever the targets."""

    parts: Mapping[str, str]

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> Fingerprint:
        """The fingerprint of each part's value (every part of `FINGERPRINT_PARTS`)."""
        missing = [part for part in FINGERPRINT_PARTS if part not in values]
        if missing or len(values) != len(FINGERPRINT_PARTS):
            raise ValueError(f"a fingerprint has exactly the parts {FINGERPRINT_PARTS}")
        return cls({part: _digest(values[part]) for part in FINGERPRINT_PARTS})

    @property
    def sha256(self) -> str:
        """The whole run's: one digest over every part's."""
        return _digest(dict(self.parts))

    def to_json(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "parts": dict(self.parts)}


def differing(first: Mapping[str, Any], other: Mapping[str, Any]) -> list[str]:
    """The parts in which two reports' fingerprints (`Fingerprint.to_json`) differ, in
    `FINGERPRINT_PARTS` order; a part one of them lacks differs too."""
    mine, theirs = first.get("parts") or {}, other.get("parts") or {}
    known = [part for part in FINGERPRINT_PARTS if mine.get(part) != theirs.get(part)]
    unknown = sorted((set(mine) | set(theirs)) - set(FINGERPRINT_PARTS))
    return known + [part for part in unknown if mine.get(part) != theirs.get(part)]


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()
