"""`lambda-optimizer serve`: the reconciler and the HTTP API in one anyio process.

uvicorn serves the API on the same event loop as the runs; the service, not uvicorn, owns
SIGTERM and SIGINT: the first asks the run under way to start no new write (it finishes
what is in flight, for at most `signals.GRACE_S`, then is abandoned), writes its report and
gives its leases back; then the API closes and the process exits 0. A second signal
abandons the run at once.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Final

import anyio
import anyio.abc
import structlog
import uvicorn

from optimizer_async.aws.clock import Clock
from optimizer_async.aws.gateway import Aws, AwsSettings, Unavailable
from optimizer_async.execution.signals import GRACE_S, HANDLED
from optimizer_async.runs.configs import ServeConfig
from optimizer_async.runs.store import open_store
from optimizer_async.service.http import app
from optimizer_async.service.metrics import Metrics
from optimizer_async.service.reconciler import Reconciler

log = structlog.get_logger("optimizer_async.service")

# uvicorn's own loggers: the service says what it does in its own events.
_SERVER_LOGGERS: Final = ("uvicorn", "uvicorn.error", "uvicorn.access")


class _Server(uvicorn.Server):
    """uvicorn's server without its signal handlers: the service's own decide the stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class Running:
    url: str
    reconciler: Reconciler
    done: anyio.Event  # set once the reconciler has stopped


@contextlib.asynccontextmanager
async def running(
    config: ServeConfig, settings: AwsSettings, clock: Clock | None = None
) -> AsyncIterator[Running]:
    """The service, started: the API listening, the first cycle under way. Leaving the
    block stops it as SIGTERM would (the run under way finishes and reports)."""
    for name in _SERVER_LOGGERS:
        logging.getLogger(name).handlers = [logging.NullHandler()]
        logging.getLogger(name).propagate = False
    listening = _listen(config.serve.host, config.serve.port)  # a port in use: said first
    async with Aws.open(settings, clock) as home:
        await home.preflight()
        store = await open_store(config, home)
        reconciler = Reconciler(config, settings, home, store, Metrics(), clock)
        await reconciler.resume()  # what a previous service accepted and never ran
        server = _Server(
            uvicorn.Config(
                app(reconciler, config.serve.token),
                log_config=None,
                access_log=False,
                lifespan="off",
                timeout_graceful_shutdown=5,  # a request still open (a slow probe) waits no longer
            )
        )
        done = anyio.Event()

        async def reconcile() -> None:
            try:
                await reconciler.loop()
            finally:
                done.set()
                server.should_exit = True

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(server.serve, [listening])
            port = listening.getsockname()[1]
            url = f"http://{config.serve.host}:{port}"
            log.info("service.listening", url=url, interval_s=config.serve.interval_s)
            tasks.start_soon(reconcile)
            try:
                yield Running(url, reconciler, done)
            finally:
                if not reconciler.stopping:
                    reconciler.request_stop(signal.SIGTERM)
                await wind_down(reconciler, done)
    log.info("service.stopped", cycles=reconciler.cycles)


async def wind_down(reconciler: Reconciler, done: anyio.Event) -> None:
    """After a stop: the run under way may finish for `GRACE_S`, then is abandoned (its
    report is written either way)."""
    with anyio.move_on_after(GRACE_S):
        await done.wait()
    reconciler.stop.abandon()
    await done.wait()


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listening = socket.socket(family, socket.SOCK_STREAM)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind((host, port))
    except OSError as error:
        listening.close()
        raise Unavailable(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    listening.listen(128)
    return listening


async def _serve(config: ServeConfig, settings: AwsSettings) -> int:
    # The signals are the service's from before it starts (one during start-up stops it
    # once it is up) until it has closed (one during the teardown changes nothing).
    with anyio.open_signal_receiver(*HANDLED) as received:
        async with running(config, settings) as service:
            async for signum in received:
                log.info("service.stopping", signal=signal.Signals(signum).name)
                service.reconciler.request_stop(int(signum))
                break
            async with anyio.create_task_group() as second:
                second.start_soon(_abandon_on_second, received, service.reconciler)
                await wind_down(service.reconciler, service.done)
                second.cancel_scope.cancel()
    return 0


async def _abandon_on_second(
    received: AsyncIterator[signal.Signals], reconciler: Reconciler
) -> None:
    async for _ in received:
        reconciler.stop.abandon()
        return


def serve(config: ServeConfig, settings: AwsSettings) -> int:
    """The command: exit 0 once stopped by a signal (its cycle's report written)."""
    return anyio.run(_serve, config, settings)
