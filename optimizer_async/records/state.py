"""Where runs keep what undoing them needs: a store of JSON documents under `runs/{run_id}/`.

    runs/{run_id}/run.json                  what the run was asked to do, who runs it (host,
                                            pid, process space; the leases it holds: how
                                            `runs` tells a dead holder), and how it ended
    runs/{run_id}/before-images/{suffix}.json   the environment before the run's first write
                                            to it, and the changes the run planned for it
    runs/{run_id}/report.json               the run's report

A before-image is written, and durable, before the first write to its environment (a
failed store write fails the environment before anything is changed); a run killed at any
moment after that (SIGINT, SIGKILL) leaves all that rollback needs. The local store writes
atomically (temp file, fsync, rename, fsync of the directory), readable by the owner only;
the S3 store (`--state-bucket`) serves CI runners whose disks do not outlive them.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

import anyio

from optimizer_async.aws import errors
from optimizer_async.jsonio import json_text

if TYPE_CHECKING:
    from optimizer_async.aws.gateway import Aws


class UnreadableRecord(Exception):
    """A document in the state store that is not the JSON object it should be: what we
    wrote earlier is input too, refused in one line naming it."""


def record_document(payload: str | bytes, where: str) -> dict[str, Any]:
    """The JSON object a stored document holds; UnreadableRecord, naming it, if it is not
    one (cut short, edited, not UTF-8)."""
    try:
        document = json.loads(payload)
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError alike
        raise UnreadableRecord(f"{where} is not a readable record ({error})") from None
    if not isinstance(document, dict):
        kind = type(document).__name__
        raise UnreadableRecord(f"{where} is not a readable record (a JSON {kind}, not an object)")
    return document


class StateStore(Protocol):
    """A place for JSON documents, addressed by slash-separated keys."""

    @property
    def location(self) -> str:
        """Where a key's document is, for people (a path, an s3:// URL)."""
        ...

    def where(self, key: str) -> str: ...

    async def write(self, key: str, document: Mapping[str, Any]) -> str:
        """Store durably (replacing any document at `key`); returns where it is. The
        document may hold `json_text.Lazy` lists, made while they are written."""
        ...

    async def read(self, key: str) -> dict[str, Any] | None:
        """The document at `key`, or None."""
        ...

    async def keys(self, prefix: str) -> list[str]:
        """Every key under `prefix`, sorted."""
        ...


def run_key(run_id: str, *parts: str) -> str:
    return "/".join(("runs", run_id, *parts))


class LocalStateStore:
    """A directory on this machine (`--state-dir`)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def location(self) -> str:
        return str(self.root)

    def where(self, key: str) -> str:
        return str(self.root / key)

    async def write(self, key: str, document: Mapping[str, Any]) -> str:
        payload = json_text.chunks(document, sort_keys=True)
        return await anyio.to_thread.run_sync(write_atomically, self.root / key, payload)

    async def read(self, key: str) -> dict[str, Any] | None:
        path = self.root / key
        try:
            payload = await anyio.Path(path).read_bytes()
        except FileNotFoundError:
            return None
        return record_document(payload, str(path))

    async def keys(self, prefix: str) -> list[str]:
        base = anyio.Path(self.root / prefix)
        if not await base.is_dir():
            return []
        found = [str(Path(str(path)).relative_to(self.root)) async for path in base.rglob("*.json")]
        return sorted(key for key in found if not Path(key).name.startswith("."))


def private_directories(directory: Path) -> None:
    """Make `directory` and each missing parent 0700 (mkdir's mode applies to the last only)."""
    missing = [d for d in (directory, *directory.parents) if not d.exists()]
    for path in reversed(missing):
        path.mkdir(mode=0o700, exist_ok=True)
        os.chmod(path, 0o700)


def write_atomically(target: Path, payload: str | Iterable[str]) -> str:
    """Write `payload` (text, or its pieces) to `target` so that a crash leaves the old
    file or the new, whole."""
    private_directories(target.parent)
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.")
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.writelines([payload] if isinstance(payload, str) else payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a crash
    finally:
        os.close(directory)
    return str(target)


FINGERPRINT_KEY_NAME: Final = ".fingerprint-key.json"  # hidden from `runs` (a dot name)


async def fingerprint_key(store: StateStore) -> bytes:
    """The store's HMAC key for variable fingerprints, made on first use and kept beside
    the state (0600 on disk; encrypted like every object in a bucket)."""
    found = await store.read(FINGERPRINT_KEY_NAME)
    if found is not None:
        return bytes.fromhex(str(found["key"]))
    key = secrets.token_bytes(32)
    await store.write(FINGERPRINT_KEY_NAME, {"key": key.hex(), "use": "HMAC-SHA256 of variables"})
    return key


_STATE_OBJECT_ARN: Final = "arn:{partition}:s3:::{state_bucket}/{state_prefix}*"
_STATE_BUCKET_ARN: Final = "arn:{partition}:s3:::{state_bucket}"
# What `--state-bucket` needs, for the optimizer's own IAM policy.
STATE_BUCKET_PERMISSIONS: Final = (
    ("s3:GetBucketVersioning", _STATE_BUCKET_ARN),
    ("s3:GetEncryptionConfiguration", _STATE_BUCKET_ARN),
    ("s3:GetBucketPublicAccessBlock", _STATE_BUCKET_ARN),
    ("s3:ListBucket", _STATE_BUCKET_ARN),
    ("s3:GetObject", _STATE_OBJECT_ARN),
    ("s3:PutObject", _STATE_OBJECT_ARN),
    ("s3:DeleteObject", _STATE_OBJECT_ARN),  # a lease given back (leases.py)
)


class StateBucketError(Exception):
    """The state bucket cannot keep rollback material safely; the message says why."""


class S3StateStore:
    """An S3 bucket (`--state-bucket s3://bucket/prefix`): what ephemeral CI runners need.

    The bucket must be versioned (an overwritten record stays recoverable), encrypted by
    default and closed to the public; `check` says which it is not, before any run writes.
    Objects are written with server-side encryption whatever the bucket's default.
    """

    def __init__(self, aws: Aws, bucket: str, prefix: str = "", page_size: int = 1000) -> None:
        self.aws = aws
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.page_size = page_size  # keys a listing page holds (S3's most: 1000)

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def where(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{key}"

    async def check(self) -> None:
        try:
            await self._check()
        except StateBucketError:
            raise
        except Exception as error:  # e.g. AccessDenied: a record could not be kept either
            raise StateBucketError(
                f"state bucket {self.bucket} cannot be checked: {errors.describe(error)}"
            ) from None

    async def _check(self) -> None:
        s3, problems = self.aws.s3, []
        versioning = await self.aws.find(s3.get_bucket_versioning, Bucket=self.bucket)
        if versioning is None:
            raise StateBucketError(f"state bucket {self.bucket} does not exist")
        if versioning.get("Status") != "Enabled":
            problems.append("versioning is not enabled")
        encryption = await self.aws.find(s3.get_bucket_encryption, Bucket=self.bucket)
        rules = encryption["ServerSideEncryptionConfiguration"].get("Rules") if encryption else None
        if not rules:
            problems.append("it has no default encryption")
        block = await self.aws.find(s3.get_public_access_block, Bucket=self.bucket)
        settings: Mapping[str, Any] = block["PublicAccessBlockConfiguration"] if block else {}
        flags = (
            "BlockPublicAcls",
            "IgnorePublicAcls",
            "BlockPublicPolicy",
            "RestrictPublicBuckets",
        )
        if not all(settings.get(flag) for flag in flags):
            problems.append("its public access block is not fully on")
        if problems:
            raise StateBucketError(
                f"state bucket {self.bucket} cannot keep rollback material: " + "; ".join(problems)
            )

    async def write(self, key: str, document: Mapping[str, Any], **condition: str) -> str:
        """`condition`: S3's `IfNoneMatch="*"` (only if there is none) or `IfMatch=ETag`
        (only if unchanged since read); a lost condition raises S3's 412 (leases.py)."""
        payload = "".join(json_text.chunks(document, sort_keys=True)).encode()
        await self.aws.s3.put_object(
            Bucket=self.bucket,
            Key=self.prefix + key,
            Body=payload,
            ContentType="application/json",
            ServerSideEncryption="AES256",
            **condition,  # type: ignore[arg-type]
        )
        return self.where(key)

    async def read(self, key: str) -> dict[str, Any] | None:
        found = await self.read_tagged(key)
        return None if found is None else found[0]

    async def read_tagged(self, key: str) -> tuple[dict[str, Any], str] | None:
        """The document at `key` and its ETag (for a conditional write), or None."""
        found = await self.aws.find(
            self.aws.s3.get_object, Bucket=self.bucket, Key=self.prefix + key
        )
        if found is None:
            return None
        async with found["Body"] as body:
            document = record_document(await body.read(), self.where(key))
        return document, str(found["ETag"])

    async def delete(self, key: str, etag: str) -> None:
        """Delete the document at `key` if it is still the one with `etag`."""
        await self.aws.s3.delete_object(Bucket=self.bucket, Key=self.prefix + key, IfMatch=etag)

    async def keys(self, prefix: str) -> list[str]:
        found: list[str] = []
        async for page in self.aws.pages(
            ("ContinuationToken", "NextContinuationToken"),
            self.aws.s3.list_objects_v2,
            Bucket=self.bucket,
            Prefix=self.prefix + prefix,
            MaxKeys=self.page_size,
        ):
            found += [str(item.get("Key"))[len(self.prefix) :] for item in page.get("Contents", [])]
        return sorted(key for key in found if key.endswith(".json"))
