"""Where runs keep what undoing them needs: a store of JSON documents under `runs/{run_id}/`.

    runs/{run_id}/run.json                  what the run was asked to do, and how it ended
    runs/{run_id}/before-images/{suffix}.json   the environment before the run's first write
                                            to it, and the changes the run planned for it
    runs/{run_id}/report.json               the run's report

A before-image is written, and durable, before the first write to its environment; a run
killed at any moment after that (SIGINT, SIGKILL) leaves all that rollback needs. The local
store writes atomically (temp file, fsync, rename, fsync of the directory), readable by the
owner only.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import anyio


class StateStore(Protocol):
    """A place for JSON documents, addressed by slash-separated keys."""

    @property
    def location(self) -> str:
        """Where a key's document is, for people (a path, an s3:// URL)."""
        ...

    def where(self, key: str) -> str: ...

    async def write(self, key: str, document: Mapping[str, Any]) -> str:
        """Store durably (replacing any document at `key`); returns where it is."""
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
        payload = json.dumps(document, indent=2, sort_keys=True, default=str)
        return await anyio.to_thread.run_sync(write_atomically, self.root / key, payload)

    async def read(self, key: str) -> dict[str, Any] | None:
        path = self.root / key
        try:
            text = await anyio.Path(path).read_text()
        except FileNotFoundError:
            return None
        document: dict[str, Any] = json.loads(text)
        return document

    async def keys(self, prefix: str) -> list[str]:
        base = anyio.Path(self.root / prefix)
        if not await base.is_dir():
            return []
        found = [str(Path(str(path)).relative_to(self.root)) async for path in base.rglob("*.json")]
        return sorted(key for key in found if not Path(key).name.startswith("."))


def write_atomically(target: Path, payload: str) -> str:
    """Write `payload` to `target` so that a crash leaves the old file or the new, whole."""
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.")
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(payload)
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
