"""`--accounts FILE`: the accounts and regions one run covers, in c7n-org's file shape.

    accounts:
      - account_id: "210987654321"
        name: payments-dev
        role: arn:aws:iam::210987654321:role/LambdaOptimizer   # assumed with STS
        external_id: ...           # optional: the role's trust policy asks for it
        regions: [us-east-1, eu-west-1]   # optional: default --region
        match: ["pr-*"]            # optional: this account's suffixes only
        exclude: ["prod"]          # optional: never these suffixes in this account

c7n-org's `email`, `tags` and `vars` are accepted and ignored, so its file can be reused.
Without `role` the run's own credentials are used, and must be that account's. AWS's quotas
are per account and region, so every (account, region) is a *place* with limiters of its
own. The external id is kept out of every repr, log and report.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Final

import yaml

from optimizer_async.naming import REGION_RE

_ACCOUNT_ID_RE: Final = re.compile(r"\d{12}")
_ROLE_ARN_RE: Final = re.compile(r"arn:aws(?:-[a-z]+)*:iam::(\d{12}):role/[\w+=,.@/-]{1,512}")
_EXTERNAL_ID_RE: Final = re.compile(r"[\w+=,.@:/-]{2,1224}")
_NAME_RE: Final = re.compile(r"[\w.@+-]{1,64}")
_KEYS: Final = frozenset(
    {"account_id", "name", "role", "external_id", "regions", "match", "exclude"}
)
_IGNORED_C7N_KEYS: Final = frozenset({"email", "tags", "vars"})


class AccountsError(ValueError):
    """An accounts file that cannot be used: where, and why (bad input, exit 2)."""


@dataclass(frozen=True)
class Account:
    """One account of the file, validated."""

    account_id: str
    name: str
    regions: tuple[str, ...]
    role: str | None = None
    external_id: str | None = field(default=None, repr=False)
    match: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def refusal(self, suffix: str) -> str | None:
        """Why this account's own filters leave `suffix` out (as the finder says it), or
        None if they let it in."""
        if self.match and not any(fnmatchcase(suffix, glob) for glob in self.match):
            return f"not matched by account {self.name}'s match {' '.join(self.match)}"
        excluded = next((glob for glob in self.exclude if fnmatchcase(suffix, glob)), None)
        return None if excluded is None else f"excluded by account {self.name}'s exclude {excluded}"


@dataclass(frozen=True)
class Place:
    """An account in one region: where AWS's quotas are counted, so where limiters live."""

    account: Account
    region: str

    @property
    def label(self) -> str:
        return f"{self.account.name} ({self.account.account_id}) {self.region}"


def places(accounts: Sequence[Account]) -> tuple[Place, ...]:
    """Every (account, region), in the file's order."""
    return tuple(Place(account, region) for account in accounts for region in account.regions)


def load(path: Path, default_region: str) -> tuple[Account, ...]:
    """The file's accounts, each checked; AccountsError naming the first problem."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise AccountsError(f"--accounts {path}: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise AccountsError(f"--accounts {path} is not YAML{line}") from None
    if not isinstance(document, dict) or set(document) != {"accounts"}:
        raise AccountsError(f"--accounts {path}: expected one key, `accounts:`, a list")
    entries = document["accounts"]
    if not isinstance(entries, list) or not entries:
        raise AccountsError(f"--accounts {path}: `accounts` must be a non-empty list")
    accounts = tuple(
        _account(entry, f"{path}: accounts[{i}]", default_region) for i, entry in enumerate(entries)
    )
    for what in ("account_id", "name"):
        values = [str(getattr(account, what)) for account in accounts]
        twice = next((value for value in values if values.count(value) > 1), None)
        if twice is not None:
            raise AccountsError(f"--accounts {path}: {what} {twice} is listed twice")
    return accounts


def _account(entry: Any, where: str, default_region: str) -> Account:
    if not isinstance(entry, dict):
        raise AccountsError(f"{where} must be a mapping (account_id, role, regions, ...)")
    unknown = sorted(set(map(str, entry)) - _KEYS - _IGNORED_C7N_KEYS)
    if unknown:
        raise AccountsError(f"{where}: unknown key(s) {', '.join(unknown)}")
    account_id = _account_id(entry.get("account_id"), where)
    name = entry.get("name", account_id)
    if not isinstance(name, (str, int)) or not _NAME_RE.fullmatch(str(name)):
        raise AccountsError(f"{where}.name must be 1-64 letters, digits or ._@+-")
    role = entry.get("role")
    if role is not None:
        found = _ROLE_ARN_RE.fullmatch(role) if isinstance(role, str) else None
        if found is None:
            raise AccountsError(f"{where}.role is not an IAM role ARN")
        if found.group(1) != account_id:
            raise AccountsError(f"{where}.role is a role of account {found.group(1)}, "
                                f"not {account_id}")  # fmt: skip
    external_id = entry.get("external_id")
    if external_id is not None:
        if role is None:
            raise AccountsError(f"{where}.external_id needs a role to assume")
        if not isinstance(external_id, str) or not _EXTERNAL_ID_RE.fullmatch(external_id):
            raise AccountsError(f"{where}.external_id must be 2-1224 characters of "
                                "letters, digits and +=,.@:/-")  # fmt: skip
    regions = _strings(entry.get("regions", [default_region]), f"{where}.regions")
    if not regions:
        raise AccountsError(f"{where}.regions must name at least one region")
    for region in regions:
        if not REGION_RE.fullmatch(region):
            raise AccountsError(f"{where}.regions: {region!r} is not an AWS region name")
    if len(set(regions)) != len(regions):
        raise AccountsError(f"{where}.regions lists a region twice")
    return Account(
        account_id=account_id,
        name=str(name),
        regions=regions,
        role=role,
        external_id=external_id,
        match=_strings(entry.get("match", []), f"{where}.match"),
        exclude=_strings(entry.get("exclude", []), f"{where}.exclude"),
    )


def _account_id(value: Any, where: str) -> str:
    """A 12-digit id; YAML reads an unquoted one as a number, so leading zeros come back."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**12:
        value = f"{value:012d}"
    if not isinstance(value, str) or not _ACCOUNT_ID_RE.fullmatch(value):
        raise AccountsError(f"{where}.account_id must be a 12-digit account id")
    return value


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise AccountsError(f"{where} must be a list of non-empty strings")
    return tuple(value)
