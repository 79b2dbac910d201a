"""Which AWS account a request acts in, and the checks on account ids the control API takes.

moto keeps one set of backends per account and serves a request in the account of its
signing key: an IAM user's key in the user's account, a key STS AssumeRole handed out in
the role's account, any other key (the sandbox's own `sandbox`) in the default account.
The shaper needs the same answer for every request (quotas and counts are per account), so
it asks moto once per access key and remembers: moto's lookup scans every account's keys.
A key is only ever seen after moto made it, so the remembered answer stays right until a
reset forgets every key (and the shaper's memory with them).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Final

from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.iam.models import get_account_id_from

# The account of the sandbox's own credentials, of moto's default and of every control
# payload that names none.
DEFAULT_ACCOUNT: Final[str] = DEFAULT_ACCOUNT_ID
_ACCOUNT_RE: Final = re.compile(r"\d{12}", re.ASCII)


def checked_account(value: object, what: str = "account") -> str:
    """A 12-digit account id from a control payload; ValueError (a 400) otherwise."""
    if not isinstance(value, str) or not _ACCOUNT_RE.fullmatch(value):
        raise ValueError(f"{what} must be a 12-digit AWS account id as a string, not {value!r}")
    return value


class KeyAccounts:
    """The account of each access key seen, asked of moto once per key. Thread-safe: a
    miss may be looked up twice at once, with the same answer."""

    def __init__(self, lookup: Callable[[str], str] = get_account_id_from) -> None:
        self._lookup = lookup
        self._known: dict[str, str] = {}
        self._lock = threading.Lock()

    def of(self, access_key: str | None) -> str:
        if not access_key:
            return DEFAULT_ACCOUNT
        account = self._known.get(access_key)
        if account is None:
            account = str(self._lookup(access_key))
            with self._lock:
                self._known[access_key] = account
        return account

    def clear(self) -> None:
        """Forget every key (after a reset moto knows none of them)."""
        with self._lock:
            self._known.clear()
