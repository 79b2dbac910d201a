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
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Final

import yaml

from optimizer_async.definitions.naming import REGION_RE

_ACCOUNT_ID_RE: Final = re.compile(r"[0-9]{12}")
_ROLE_ARN_RE: Final = re.compile(
    r"arn:aws(?:-cn|-us-gov)?:iam::([0-9]{12}):role/[\w+=,.@/-]{1,512}", re.ASCII
)
_EXTERNAL_ID_RE: Final = re.compile(r"[\w+=,.@:/-]{2,1224}", re.ASCII)
_NAME_RE: Final = re.compile(r"[\w.@+-]{1,64}", re.ASCII)
MAX_FILE_BYTES: Final = 1_000_000  # thousands of accounts; not /dev/zero
_NUMBER_TAGS: Final = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
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


class _Loader(yaml.SafeLoader):
    """YAML as an accounts file needs it: numbers stay text (an unquoted account id such as
    011111111111 is not read as octal, nor 0x1F as hex), a key given twice is refused (the
    second would silently win)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str) and key in seen:
                line = key_node.start_mark.line + 1
                raise yaml.constructor.ConstructorError(
                    None, None, f"{key!r} is given twice (line {line})", key_node.start_mark
                )
            seen.add(key if isinstance(key, str) else id(key_node))
        return super().construct_mapping(node, deep=deep)


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag not in _NUMBER_TAGS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load(path: Path, default_region: str) -> tuple[Account, ...]:
    """The file's accounts, each checked; AccountsError naming the first problem."""
    try:
        if not path.exists():
            raise AccountsError(f"--accounts {path}: no such file")
        if not path.is_file():
            raise AccountsError(f"--accounts {path} is not a file")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise AccountsError(f"--accounts {path} is larger than {MAX_FILE_BYTES:,} bytes")
        text = path.read_text(encoding="utf-8")
        document = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader, stricter
    except OSError as error:
        raise AccountsError(f"--accounts {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise AccountsError(f"--accounts {path} is not UTF-8 text") from None
    except RecursionError:
        raise AccountsError(f"--accounts {path} nests too deep to be an accounts file") from None
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        problem = getattr(error, "problem", None)
        why = f": {problem}" if isinstance(problem, str) and "given twice" in problem else ""
        raise AccountsError(f"--accounts {path} is not YAML{line}{why}") from None
    if not isinstance(document, dict) or set(document) != {"accounts"}:
        raise AccountsError(f"--accounts {path}: expected one key, `accounts:`, a list")
    entries = document["accounts"]
    if not isinstance(entries, list) or not entries:
        raise AccountsError(f"--accounts {path}: `accounts` must be a non-empty list")
    accounts = tuple(
        _account(entry, f"{path}: accounts[{i}]", default_region) for i, entry in enumerate(entries)
    )
    for what in ("account_id", "name"):
        counted = Counter(str(getattr(account, what)) for account in accounts)
        twice = next((value for value, n in counted.items() if n > 1), None)
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
    """12 ASCII digits, quoted or not (the loader keeps numbers as written)."""
    if not isinstance(value, str) or not _ACCOUNT_ID_RE.fullmatch(value):
        raise AccountsError(f"{where}.account_id must be a 12-digit account id")
    return value


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise AccountsError(f"{where} must be a list of non-empty strings")
    return tuple(value)
