"""Identical large bodies are held once: S3 object versions and the Lambda code read from them.

moto 5.2.5 copies each S3 object version into its own buffer and each layer version or
function reads its own copy of the code back out; it hashes that code again for every one.
The seeder's 1.2 MB layer package, stored per environment in S3 and in a layer, cost
2.4 MB an environment. Bodies of 64 KiB or more are interned by content: every object
version with the same bytes reads one immutable `bytes` (reads return it without a copy,
so Lambda's code is that object too), and its MD5 and SHA-256 are computed once.
Smaller bodies keep moto's buffer. Behaviour is unchanged: only where the bytes live.
"""

from __future__ import annotations

import base64
import hashlib
import tempfile
import threading
import weakref
from typing import Any, Final

from moto.awslambda import models as lambda_models
from moto.s3.models import FakeKey

MIN_SHARED_SIZE: Final = 64 * 1024
_APPLIED: Final = "__sandbox_shared_blobs__"


class Blob:
    """One interned body and its digests (computed on first use)."""

    __slots__ = ("__weakref__", "_lock", "_md5", "_sha256", "data")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self._md5: str | None = None
        self._sha256: bytes | None = None
        self._lock = threading.Lock()

    def md5_hex(self) -> str:
        with self._lock:
            if self._md5 is None:
                self._md5 = hashlib.md5(self.data, usedforsecurity=False).hexdigest()
            return self._md5

    def sha256(self) -> bytes:
        with self._lock:
            if self._sha256 is None:
                self._sha256 = hashlib.sha256(self.data).digest()
            return self._sha256


# (length, hash) -> blob; a blob goes when the last object version holding it goes.
_blobs: weakref.WeakValueDictionary[tuple[int, int], Blob] = weakref.WeakValueDictionary()
_blobs_lock: Final = threading.Lock()


def intern(data: bytes) -> Blob:
    """The shared blob holding `data` (a new one if none holds it yet)."""
    key = (len(data), hash(data))
    with _blobs_lock:
        blob = _blobs.get(key)
        if blob is not None and blob.data == data:
            return blob
        blob = Blob(data)
        if key not in _blobs:  # a hash collision keeps the first; this one stays unshared
            _blobs[key] = blob
        return blob


def shared_count() -> int:
    """How many distinct large bodies are held (for tests)."""
    return len(_blobs)


class SharedBuffer:
    """What FakeKey reads its value from, over an interned blob; read-only.

    moto only seeks, reads, truncates (before writing a new value, which replaces this
    buffer) and closes it.
    """

    def __init__(self, blob: Blob) -> None:
        self.blob = blob
        self._position = 0

    def seek(self, position: int, whence: int = 0) -> int:
        size = len(self.blob.data)
        base = {0: 0, 1: self._position, 2: size}[whence]
        self._position = max(0, base + position)
        return self._position

    def read(self, size: int = -1) -> bytes:
        data = self.blob.data
        start = min(self._position, len(data))
        end = len(data) if size is None or size < 0 else min(len(data), start + size)
        self._position = end
        if start == 0 and end == len(data):
            return data  # the shared object itself: no copy
        return data[start:end]

    def truncate(self, size: int | None = None) -> int:
        return 0

    def close(self) -> None:
        return


def _set_value(original: Any, key: Any, new_value: bytes | str) -> None:
    if isinstance(new_value, str):
        new_value = new_value.encode("utf-8")
    if len(new_value) >= MIN_SHARED_SIZE:
        previous = key._value_buffer
        key._value_buffer = SharedBuffer(intern(bytes(new_value)))
        key.contentsize = len(new_value)
        previous.close()
        return
    if isinstance(key._value_buffer, SharedBuffer):
        key._value_buffer = tempfile.SpooledTemporaryFile(key._max_buffer_size)  # noqa: SIM115 - moto owns it
    original(key, new_value)


def _etag(original: Any, key: Any) -> str:
    buffer = key._value_buffer
    if key._etag is None and isinstance(buffer, SharedBuffer):
        key._etag = buffer.blob.md5_hex()
    result: str = original(key)
    return result


def _s3_content(original: Any, key: Any) -> tuple[bytes, int, str, str]:
    """Lambda's (code, size, base64 SHA-256, hex SHA-256) of an S3 object, hashed once."""
    buffer = getattr(key, "_value_buffer", None)
    if not isinstance(buffer, SharedBuffer):
        result: tuple[bytes, int, str, str] = original(key)
        return result
    blob = buffer.blob
    digest = blob.sha256()
    return blob.data, len(blob.data), base64.b64encode(digest).decode(), digest.hex()


def apply() -> None:
    value = FakeKey.__dict__["value"]
    etag = FakeKey.__dict__["etag"]
    if not isinstance(value, property) or not isinstance(etag, property) or value.fset is None:
        raise RuntimeError("moto changed: FakeKey.value / etag are not properties; update")
    if getattr(value.fset, _APPLIED, False):
        return
    setter, etag_getter = value.fset, etag.fget

    def set_value(key: Any, new_value: bytes | str) -> None:
        _set_value(setter, key, new_value)

    def get_etag(key: Any) -> str:
        return _etag(etag_getter, key)

    setattr(set_value, _APPLIED, True)
    setattr(FakeKey, "value", value.setter(set_value))  # noqa: B010 - a property, by name
    setattr(FakeKey, "etag", property(get_etag))  # noqa: B010
    s3_content = lambda_models._s3_content

    def lambda_s3_content(key: Any) -> tuple[bytes, int, str, str]:
        return _s3_content(s3_content, key)

    vars(lambda_models)["_s3_content"] = lambda_s3_content
