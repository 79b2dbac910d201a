"""Leases: never two runs changing one environment at once (the service's cycles, CLI runs,
another machine's). A run holds a lease per (account, region, suffix) while it may write.

A lease is a small document in the state store, `leases/{account}/{region}/{suffix}.json`:
who holds it (run id, host, pid) and until when. It is taken only if there is none or the
one there has expired, renewed by its holder while it runs (every third of its time), and
deleted when the run ends; a holder that dies (kill -9, a lost node) stops renewing, so its
lease expires and the next run takes it (at once when the holder was a process of the same
boot and PID namespace that no longer exists). Taking is atomic where the store is shared:

- the local store (`--state-dir`): the read-and-write under an exclusive `flock` on the
  lease's lock file, so runs on this machine take turns; the lock is the kernel's, freed
  with the process whatever kills it;
- the S3 store (`--state-bucket`): conditional writes (`If-None-Match: *` to create,
  `If-Match: ETag` to take over an expired lease, renew or delete), so runs on any machine
  agree: of two writers, S3 refuses the second (412).

Times are the run's clock (`Clock.utcnow`), so tests expire a lease by moving it.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol

import anyio
import structlog

from optimizer_async.aws import errors
from optimizer_async.aws.clock import Clock
from optimizer_async.records.state import S3StateStore, private_directories

if TYPE_CHECKING:
    pass

log = structlog.get_logger("optimizer_async.leases")

LEASE_S: Final = 120.0  # a holder renews every third of this; a dead one's lapses after it
# S3's answers to a conditional write that lost: the object changed (412), or another
# conditional write to it is in flight (409).
# Or the object went between reading and writing it (its holder gave it back): 404.
_LOST_RACE: Final = frozenset(
    {"PreconditionFailed", "412", "ConditionalRequestConflict", "NoSuchKey", "404"}
)


@dataclass(frozen=True)
class Holder:
    run_id: str
    host: str
    pid: int
    expires_at: str  # ISO-8601 UTC
    # Which processes `pid` is one of: the kernel's boot and PID namespace ("" unknown).
    processes: str = ""

    def expired(self, now: datetime) -> bool:
        """Past its time, or its holder is a process of this very process space (same
        boot, same PID namespace) that is gone: killed, no need to wait the lease out. A
        shared hostname alone (host networking, a shared volume) proves nothing."""
        if datetime.fromisoformat(self.expires_at) <= now:
            return True
        ours = PROCESSES
        return bool(ours) and self.processes == ours and not _alive(self.pid)

    def describe(self) -> str:
        return f"run {self.run_id} on {self.host} (pid {self.pid}) until {self.expires_at}"


def _process_space() -> str:
    """This boot's id and this PID namespace's inode; "" where /proc does not say."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return ""
    return f"{boot}/{namespace}"


PROCESSES: Final = _process_space()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # no signal: only whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def lease_key(account: str, region: str, suffix: str) -> str:
    return f"leases/{account}/{region}/{suffix}.json"


class LeaseStore(Protocol):
    async def take(self, key: str, holder: Holder, now: datetime) -> Holder | None:
        """Take the lease at `key` for `holder`; None if taken (or renewed: it was ours),
        else the live holder it belongs to."""
        ...

    async def release(self, key: str, holder: Holder) -> None:
        """Give the lease back, if it is still `holder`'s."""
        ...


class LocalLeases:
    """Leases beside a local state directory, taken under `flock`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    async def take(self, key: str, holder: Holder, now: datetime) -> Holder | None:
        return await anyio.to_thread.run_sync(self._take, self.root / key, holder, now)

    async def release(self, key: str, holder: Holder) -> None:
        await anyio.to_thread.run_sync(self._release, self.root / key, holder)

    def _take(self, path: Path, holder: Holder, now: datetime) -> Holder | None:
        with _locked(path):
            current = _read(path)
            if current is not None and current.run_id != holder.run_id and not current.expired(now):
                return current
            _replace(path, json.dumps(asdict(holder)))
            return None

    def _release(self, path: Path, holder: Holder) -> None:
        with _locked(path):
            current = _read(path)
            if current is not None and current.run_id == holder.run_id:
                path.unlink(missing_ok=True)


class _locked:
    """An exclusive flock on the lease's lock file (made 0600 beside it)."""

    def __init__(self, path: Path) -> None:
        self.path = path.with_name(f".{path.name}.lock")

    def __enter__(self) -> None:
        private_directories(self.path.parent)
        self.descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.descriptor, fcntl.LOCK_EX)

    def __exit__(self, *_: object) -> None:
        fcntl.flock(self.descriptor, fcntl.LOCK_UN)
        os.close(self.descriptor)


def _replace(path: Path, text: str) -> None:
    """Write whole or not at all (a temporary file renamed over it), 0600, without fsync:
    a lease a crash loses is a lease no one holds, which the next run simply takes; a run
    takes and renews thousands, and each fsync costs milliseconds."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    os.replace(temporary, path)


def _read(path: Path) -> Holder | None:
    try:
        return Holder(**json.loads(path.read_text()))
    except FileNotFoundError:
        return None


class S3Leases:
    """Leases in the state bucket, taken with S3's conditional writes."""

    def __init__(self, store: S3StateStore) -> None:
        self.store = store

    async def take(self, key: str, holder: Holder, now: datetime) -> Holder | None:
        for _ in range(3):  # lost a race to an expired lease's other taker: look again
            found = await self._read(key)
            if found is not None:
                current, etag = found
                if current.run_id != holder.run_id and not current.expired(now):
                    return current
                condition = {"IfMatch": etag}
            else:
                condition = {"IfNoneMatch": "*"}
            try:
                await self.store.write(key, asdict(holder), **condition)
                return None
            except Exception as error:
                if errors.error_code(error) not in _LOST_RACE:
                    raise
        found = await self._read(key)  # still contended: not ours, whoever has it now
        return found[0] if found is not None else Holder("(contended)", "-", 0, now.isoformat())

    async def release(self, key: str, holder: Holder) -> None:
        found = await self._read(key)
        if found is None or found[0].run_id != holder.run_id:
            return
        try:
            await self.store.delete(key, found[1])
        except Exception as error:  # taken over meanwhile: it is no longer ours to delete
            if errors.error_code(error) not in _LOST_RACE:
                raise

    async def _read(self, key: str) -> tuple[Holder, str] | None:
        found = await self.store.read_tagged(key)
        return None if found is None else (Holder(**found[0]), found[1])


@dataclass
class Held:
    """The leases a run holds, and the environments it could not lease (with their holder)."""

    taken: list[str]
    refused: dict[str, Holder]


@asynccontextmanager
async def holding(
    store: LeaseStore,
    account: str,
    region: str,
    suffixes: Sequence[str],
    run_id: str,
    clock: Clock,
    lease_s: float = LEASE_S,
) -> AsyncIterator[Held]:
    """Take a lease per environment for the block, renewing them while it runs; give them
    back after it, whatever ends it. The block runs the environments in `Held.taken`."""
    me, now = (socket.gethostname(), os.getpid()), clock.utcnow

    def holder() -> Holder:
        until = now() + timedelta(seconds=lease_s)
        return Holder(run_id, me[0], me[1], until.isoformat(), PROCESSES)

    held = Held([], {})
    keys = {suffix: lease_key(account, region, suffix) for suffix in suffixes}
    try:
        for suffix, key in keys.items():
            other = await store.take(key, holder(), now())
            if other is None:
                held.taken.append(suffix)
            else:
                held.refused[suffix] = other
                log.warning("environment.held", suffix=suffix, held_by=other.describe())
        async with anyio.create_task_group() as renewing:
            taken = [keys[suffix] for suffix in held.taken]
            renewing.start_soon(_renew, store, taken, holder, clock, lease_s)
            try:
                yield held
            finally:
                renewing.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            for suffix in held.taken:
                try:  # each on its own: one that fails leaves the others given back
                    await store.release(keys[suffix], holder())
                except Exception as error:  # it lapses by itself: say so, keep the result
                    log.warning(
                        "lease.not_released", key=keys[suffix], error=errors.describe(error)
                    )


async def _renew(
    store: LeaseStore, keys: list[str], holder: Callable[[], Holder], clock: Clock, lease_s: float
) -> None:
    """Renew every third of the lease's time. A renewal that fails is tried again at the
    next (the lease has two more thirds to go); one another run has taken meanwhile (this
    run stalled past its lease) is dropped and said loudly, never taken back."""
    while keys:
        # Real time between renewals, the run's clock for the lease's times: a test's clock
        # linked to a sandbox's virtual time would move that world forward by sleeping.
        await anyio.sleep(lease_s / 3)
        for key in list(keys):
            try:
                other = await store.take(key, holder(), clock.utcnow())
            except Exception as error:
                log.warning("lease.not_renewed", key=key, error=errors.describe(error))
                continue
            if other is not None:
                keys.remove(key)
                log.error("lease.lost", key=key, held_by=other.describe())
