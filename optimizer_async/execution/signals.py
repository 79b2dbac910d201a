"""SIGINT and SIGTERM, handled alike from the first line of `main`.

Outside the event loop a signal raises `Stopped` (start-up, between the demo's phases), which
`main` turns into one line and exit 128 + the signal's number (130, 143). Inside a run,
`watch` takes the signals over: the run stops starting writes at once, lets what is in
flight finish for `GRACE_S`, then abandons it, and writes its partial report. The handlers
are set explicitly, whatever the process inherited: a process started with SIGINT ignored
(a background job of a non-interactive shell, some CI runners) still stops on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType
from typing import Final

import anyio
import anyio.abc

HANDLED: Final = (signal.SIGINT, signal.SIGTERM)
GRACE_S: Final = 10.0  # in-flight calls may finish for this long after a stop is asked


class Stopped(BaseException):
    """A stop signal arrived outside a run (a BaseException, like KeyboardInterrupt)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _raise(signum: int, _frame: FrameType | None) -> None:
    raise Stopped(signum)


def install() -> None:
    """Raise `Stopped` on SIGINT and SIGTERM (main thread only; elsewhere, nothing)."""
    try:
        for signum in HANDLED:
            signal.signal(signum, _raise)
    except ValueError:  # not the main thread (an embedding caller): leave theirs alone
        pass


@contextlib.contextmanager
def kept() -> Iterator[None]:
    """Whatever handles SIGINT and SIGTERM now handles them again afterwards: a caller that
    embeds a run (a test process, a service) gets its own handlers back."""
    try:
        before = {signum: signal.getsignal(signum) for signum in HANDLED}
    except ValueError:  # not the main thread
        before = {}
    try:
        yield
    finally:
        for signum, handler in before.items():
            if handler is not None:  # None: set outside Python; nothing to put back
                with contextlib.suppress(ValueError):
                    signal.signal(signum, handler)


class StopRequest:
    """Whether, and by which signal, the run was asked to stop; the scopes to abandon."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.abandoned = False
        self._scopes: list[anyio.CancelScope] = []

    @contextlib.contextmanager
    def guard(self) -> Iterator[anyio.CancelScope]:
        """A scope `abandon` cancels (already cancelled if the run was abandoned)."""
        scope = anyio.CancelScope()
        if self.abandoned:
            scope.cancel()
        self._scopes.append(scope)
        try:
            with scope:
                yield scope
        finally:
            self._scopes.remove(scope)

    def abandon(self) -> None:
        """Give up what is in flight, and whatever would start after."""
        self.abandoned = True
        for scope in self._scopes:
            scope.cancel()

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return "" if self.signum is None else signal.Signals(self.signum).name


async def watch(
    stop: StopRequest,
    grace_s: float = GRACE_S,
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Take SIGINT and SIGTERM for the run: the first asks it to stop (no new writes) and
    abandons what is in flight after `grace_s`; a second abandons at once. Started with
    `TaskGroup.start`: the run begins once the signals are taken over; when it ends, the
    handlers it found are back (the event loop would leave SIGTERM's default: death)."""
    with kept(), anyio.open_signal_receiver(*HANDLED) as received:
        task_status.started()
        async for signum in received:
            stop.signum = int(signum)
            break
        with anyio.move_on_after(grace_s):
            async for _ in received:
                break
        stop.abandon()
        async for _ in received:  # until the run ends: later signals change nothing
            pass


def stopped_in(error: BaseException) -> Stopped | KeyboardInterrupt | None:
    """The stop inside an exception (task groups wrap what their tasks raise)."""
    if isinstance(error, (Stopped, KeyboardInterrupt)):
        return error
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            found = stopped_in(inner)
            if found is not None:
                return found
    return None
