"""moto's lookups by name cost what is asked for, not what the account holds.

moto 5.2.5 finds a secret, an IAM role and an error shape the slow way, per request:

- SecretsManager's store scans every secret of the region for one whose ARN or name is the
  identifier, twice per DescribeSecret (is it there? then fetch it): with 4,000 secrets, a
  sixth of a large dry run's sandbox CPU.
- IAM's `get_role` and `get_role_by_arn` scan every role of the account; GetRolePolicy asks
  three times (twice to name the resource it authorises, once to read).
- Every error answer builds the service's table of error shapes anew (moto's cache lives
  in a factory made per error): a tenth of the CPU of a dry run, whose reads of things not
  there yet (a role's policy, a queue) are a third of its calls.

Here each answer is the one the scan gives:

- A secrets store keeps an index of the first secret (in the store's order) for each ARN
  and name, valid for one version of the store: every write moves the version on (adding a
  new key extends the index instead, since a key added last comes last in the scan).
  Secrets never change ARN or name. The partial-ARN fallback is moto's, unchanged.
- A role found is remembered by name and by ARN, and used again only while it is still the
  account's role of that id; a name or ARN not remembered is looked up by moto's own scan
  (so a role not there costs what it did). moto refuses a second role of one name, and a
  role keeps its name and path, so the first role of a name is the only one.
- The table of error shapes is built once per service model (models are immutable and live
  as long as the process).
- The account of a request's access key: moto asks every account's IAM, in every
  partition, on every request (`BaseResponse.get_current_account`): 1.7 us with one account,
  60 us with an organisation's 40. Here the answer is remembered per key together with a
  count of the access keys ever added to any account (each IAM backend's `access_keys`
  counts its additions). While no key has been added, a key's account can only change by
  the key's removal, which is checked (the key still in that account's IAM); a key no
  account held (the sandbox's own `sandbox`) stays in the default account. Any addition
  (a user's key, AssumeRole's credentials) sends the next lookup of each key through
  moto's scan again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any, Final

from moto.core.errors import ErrorLookupFactory
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.iam import models as iam_models
from moto.iam.models import IAMBackend
from moto.secretsmanager.models import SecretsStore
from moto.secretsmanager.utils import get_secret_name_from_partial_arn
from moto.utilities.utils import PARTITION_NAMES

from optimizer_async.sandbox.patches._patching import wrap_method

_APPLIED: Final = "__sandbox_moto_lookups__"
_VERSION: Final = "_sandbox_version"
_INDEX: Final = "_sandbox_index"
_ROLES: Final = "_sandbox_roles"
_LOCK: Final = threading.Lock()  # index builds and store writes; lookups read without it
_MAX_KEYS: Final = 100_000  # access keys remembered (a bound against a stream of new keys)

Entry = tuple[int, dict[str, Any]]  # (store version, identifier -> first secret)


# --- SecretsManager -------------------------------------------------------------------------


def _index_entries(secrets: Iterable[Any]) -> dict[str, Any]:
    """ARN or name -> the first secret (in the store's order) that has it, as the scan finds."""
    found: dict[str, Any] = {}
    for secret in secrets:
        found.setdefault(secret.arn, secret)
        found.setdefault(secret.name, secret)
    return found


def secrets_index(store: SecretsStore) -> dict[str, Any]:
    """The store's current index (built on first use after a write that was not an append)."""
    state = vars(store)
    entry: Entry | None = state.get(_INDEX)
    if entry is not None and entry[0] == state.get(_VERSION, 0):
        return entry[1]
    with _LOCK:
        entry = state.get(_INDEX)
        version = state.get(_VERSION, 0)
        if entry is None or entry[0] != version:
            entry = (version, _index_entries(list(dict.values(store))))
            state[_INDEX] = entry
        return entry[1]


def _wrote(store: SecretsStore, key: Any = None, value: Any = None, appended: bool = False) -> None:
    """After a write (under _LOCK): extend a current index by an appended secret, or
    invalidate it."""
    state = vars(store)
    entry: Entry | None = state.get(_INDEX)
    version = state.get(_VERSION, 0)
    if appended and entry is not None and entry[0] == version:
        entry[1].setdefault(value.arn, value)
        entry[1].setdefault(value.name, value)
        return
    state[_VERSION] = version + 1


# moto's own lookups, kept for the tests that compare the shortcuts with them
MOTO_SECRETS_LOOKUPS: dict[str, Callable[..., Any]] = {}
MOTO_ACCOUNT_OF: list[Callable[[str], str]] = []


def _patch_secrets_store() -> None:
    original_setitem = SecretsStore.__dict__["__setitem__"]
    original_pop = SecretsStore.__dict__["pop"]
    for name in ("__getitem__", "__contains__", "get"):
        MOTO_SECRETS_LOOKUPS[name] = SecretsStore.__dict__[name]

    def __setitem__(store: SecretsStore, key: str, value: Any) -> None:
        with _LOCK:
            appended = not dict.__contains__(store, key)
            try:
                original_setitem(store, key, value)
            finally:
                _wrote(store, key, value, appended and dict.__contains__(store, key))

    def pop(store: SecretsStore, key: str) -> Any:
        with _LOCK:
            try:
                return original_pop(store, key)
            finally:
                _wrote(store)

    def invalidating(name: str) -> Callable[..., Any]:
        method = getattr(dict, name)

        def write(store: SecretsStore, *args: Any, **kwargs: Any) -> Any:
            with _LOCK:
                try:
                    return method(store, *args, **kwargs)
                finally:
                    _wrote(store)

        write.__name__ = name
        return write

    def __getitem__(store: SecretsStore, key: str) -> Any:
        found = secrets_index(store).get(key)
        if found is not None:
            return found
        return dict.__getitem__(store, get_secret_name_from_partial_arn(key))

    def __contains__(store: SecretsStore, key: str) -> bool:
        if key in secrets_index(store):
            return True
        return dict.__contains__(store, get_secret_name_from_partial_arn(key))

    def get(store: SecretsStore, key: str) -> Any:
        found = secrets_index(store).get(key)
        if found is not None:
            return found
        return dict.get(store, get_secret_name_from_partial_arn(key))

    methods: dict[str, Callable[..., Any]] = {
        "__setitem__": __setitem__,
        "pop": pop,
        "__getitem__": __getitem__,
        "__contains__": __contains__,
        "get": get,
    }
    for name in ("__delitem__", "clear", "update", "setdefault", "popitem", "__ior__"):
        methods[name] = invalidating(name)
    for name, method in methods.items():
        setattr(SecretsStore, name, method)


# --- IAM roles ------------------------------------------------------------------------------


def _remembered(backend: Any) -> dict[tuple[str, str], Any]:
    state = vars(backend)
    found: dict[tuple[str, str], Any] | None = state.get(_ROLES)
    if found is None:
        found = state[_ROLES] = {}
    return found


def _still_there(backend: Any, role: Any) -> bool:
    return bool(backend.roles.get(role.id) is role)


def _remember(backend: Any, role: Any) -> None:
    known = _remembered(backend)
    known["name", role.name] = role
    known["arn", role.arn] = role


def _patch_iam_roles() -> None:
    @wrap_method(IAMBackend, "get_role")
    def get_role(original: Any, backend: Any, role_name: str) -> Any:
        role = _remembered(backend).get(("name", role_name))
        if role is not None and _still_there(backend, role):
            return role
        role = original(backend, role_name)  # moto's scan; raises if there is none
        _remember(backend, role)
        return role

    @wrap_method(IAMBackend, "get_role_by_arn")
    def get_role_by_arn(original: Any, backend: Any, arn: str) -> Any:
        role = _remembered(backend).get(("arn", arn))
        if role is not None and _still_there(backend, role):
            return role
        role = original(backend, arn)
        _remember(backend, role)
        return role


# --- error shapes ---------------------------------------------------------------------------

_error_tables: dict[int, tuple[Any, Any]] = {}  # id(service model) -> (model, table)


def _patch_error_tables() -> None:
    original = ErrorLookupFactory.__dict__["_create_error_lut"].__func__

    def create_error_lut(service_model: Any) -> Any:
        kept = _error_tables.get(id(service_model))
        if kept is not None and kept[0] is service_model:
            return kept[1]
        table = original(service_model)
        _error_tables[id(service_model)] = (service_model, table)  # the model kept: its id too
        return table

    ErrorLookupFactory._create_error_lut = staticmethod(create_error_lut)  # type: ignore[method-assign]


# --- the account of an access key -----------------------------------------------------------

_keys_added = [0]  # access keys ever added to any account's IAM (a list: one shared cell)
_key_accounts: dict[str, tuple[str, int]] = {}  # key -> (its account, _keys_added then)


class _AccessKeys(dict[str, Any]):
    """An IAM backend's access keys (moto's dict) that count every key added."""

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        _keys_added[0] += 1

    def update(self, *args: Any, **kwargs: Any) -> None:
        super().update(*args, **kwargs)
        _keys_added[0] += 1

    def setdefault(self, key: str, default: Any = None) -> Any:
        found = super().setdefault(key, default)
        _keys_added[0] += 1
        return found

    def __ior__(self, other: Any) -> _AccessKeys:  # type: ignore[override,misc]
        super().__ior__(other)
        _keys_added[0] += 1
        return self


def _still_holds(account: str, access_key: str) -> bool:
    """Whether `account`'s IAM still holds the key, in any partition (as moto looks)."""
    backends = dict.get(iam_models.iam_backends, account)
    if backends is None:
        return False
    return any(access_key in backends[partition].access_keys for partition in PARTITION_NAMES)


def _patch_key_accounts() -> None:
    original_init = IAMBackend.__dict__["__init__"]
    scan = iam_models.get_account_id_from
    MOTO_ACCOUNT_OF.append(scan)

    def __init__(backend: Any, *args: Any, **kwargs: Any) -> None:
        original_init(backend, *args, **kwargs)
        backend.access_keys = _AccessKeys(backend.access_keys)

    def get_account_id_from(access_key: str) -> str:
        added = _keys_added[0]
        kept = _key_accounts.get(access_key)
        if kept is not None and kept[1] == added:
            account = kept[0]
            if account == DEFAULT_ACCOUNT_ID or _still_holds(account, access_key):
                return account
        account = str(scan(access_key))
        if len(_key_accounts) >= _MAX_KEYS:
            _key_accounts.clear()
        _key_accounts[access_key] = (account, added)
        return account

    setattr(IAMBackend, "__init__", __init__)  # noqa: B010 - a method, replaced
    for backends in list(iam_models.iam_backends.values()):  # any made before this patch
        for backend in list(backends.values()):
            if not isinstance(backend.access_keys, _AccessKeys):
                backend.access_keys = _AccessKeys(backend.access_keys)
    iam_models.get_account_id_from = get_account_id_from  # read per call by BaseResponse


def apply() -> None:
    """Idempotent."""
    if getattr(SecretsStore, _APPLIED, False):
        return
    _patch_secrets_store()
    _patch_iam_roles()
    _patch_error_tables()
    _patch_key_accounts()
    setattr(SecretsStore, _APPLIED, True)
