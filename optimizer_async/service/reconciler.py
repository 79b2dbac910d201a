"""The service's runs: a reconcile cycle every interval (jittered), and the runs the API
asks for, one at a time, each a normal run (run id, record, before-images, report in the
state store, leases).

A cycle with `--max-changes-per-cycle N` plans first (a dry run), then applies whole
environments in the run's order while their changes fit in N; the others wait for the next
cycle (their plan says so). A fleet with nothing to change costs a cycle reads only.
A stop (SIGTERM) asks the run under way to start no new write, lets it finish what is in
flight and write its report, and starts nothing after it. A run the API accepted is
recorded as queued in the state store before its id is given: a restarted service takes it
up again (`resume`), or records it cancelled with the reason; it is never lost.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final

import anyio
import structlog
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from optimizer_async.aws import errors
from optimizer_async.aws.clock import Clock
from optimizer_async.aws.gateway import Aws, AwsSettings
from optimizer_async.execution.signals import StopRequest
from optimizer_async.jsonio import json_text
from optimizer_async.money import realised
from optimizer_async.organisations.organisation import run_anywhere
from optimizer_async.records.state import StateStore, run_key
from optimizer_async.runs.configs import RunConfig, ServeConfig
from optimizer_async.runs.orchestration import Controls, Request
from optimizer_async.runs.replays import FreshPlan
from optimizer_async.runs.store import new_run_id
from optimizer_async.service.metrics import Metrics
from optimizer_async.service.requests import requested

log = structlog.get_logger("optimizer_async.service")

JITTER: Final = 0.1  # a cycle starts within ±10 % of the interval: many services, no herd
_QUEUED: Final = 16  # run requests waiting at most; more: 503, ask again
_RETRY_FULL_S: Final = 30  # Retry-After when the queue is full
_RETRY_STOPPING_S: Final = 60  # ... and while stopping (the next service takes requests)
REALISED_RUNS: Final = 10  # the service's recent runs whose savings it measures
REALISED_DAYS: Final = 14  # the longest window before and since a run (as `savings`)


@dataclass(frozen=True)
class RunRequest:
    run_id: str
    config: RunConfig
    trigger: str


class Busy(Exception):
    """No run can be queued now: the queue is full, or the service is stopping; when to
    ask again."""

    def __init__(self, reason: str, retry_after_s: int) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


class Reconciler:
    def __init__(
        self,
        config: ServeConfig,
        settings: AwsSettings,
        home: Aws,
        store: StateStore,
        metrics: Metrics,
        clock: Clock | None = None,
        seed: int | None = None,
    ) -> None:
        serve = config.serve
        # Each cycle and request is a run of its own: recorded as one.
        self.config = config.cycle()
        self.settings, self.home, self.store = settings, home, store
        self.metrics, self.clock = metrics, clock
        self.interval_s, self.budget = serve.interval_s, serve.max_changes
        self.stop = StopRequest()
        self.cycles = 0
        self.current: str | None = None
        self.recent: deque[str] = deque(maxlen=100)
        self._random = random.Random(seed)
        self._send: MemoryObjectSendStream[RunRequest | None]
        self._receive: MemoryObjectReceiveStream[RunRequest | None]
        # Room for every queued request and the stop's wake-up.
        self._send, self._receive = anyio.create_memory_object_stream(_QUEUED + 1)
        # Everything the service's own gateway calls counts, from its start (its preflight).
        self._home_calls: tuple[Counter[tuple[str, str, str]], Counter[tuple[str, str]]] = (
            Counter(),
            Counter(),
        )
        self._queued: set[str] = set()
        self._changed: dict[str, dict[str, Any]] = {}  # recent runs that changed something

    @property
    def stopping(self) -> bool:
        return self.stop.requested

    async def submit(self, config: RunConfig, asked: Mapping[str, Any]) -> str:
        """Queue a run the API asked for: recorded as queued in the state store before its
        id is given, so that a restart runs it (or says why not), never loses it."""
        if self.stopping:
            raise Busy("the service is stopping; ask the next one", _RETRY_STOPPING_S)
        if len(self._queued) >= _QUEUED:
            raise Busy(f"{_QUEUED} runs are already waiting", _RETRY_FULL_S)
        request = RunRequest(new_run_id(), config, "api")
        record = {
            "run_id": request.run_id,
            "command": "run",
            "trigger": "service-api",
            "status": "queued",
            "queued_at": datetime.now(UTC).isoformat(),
            "dry_run": config.dry_run,
            "suffixes": list(config.suffixes),
            "request": dict(asked),
        }
        await self.store.write(run_key(request.run_id, "run.json"), record)
        self._queued.add(request.run_id)
        self._send.send_nowait(request)  # room: at most _QUEUED are ever queued
        return request.run_id

    async def resume(self) -> None:
        """The runs a previous service accepted and never started (stopped, or killed):
        each queued again under its own id, checked again against this service's
        configuration; one it no longer admits is recorded cancelled, with the reason."""
        for key in await self.store.keys("runs"):
            if not key.endswith("/run.json"):
                continue
            record = await self.store.read(key)
            if record is None or record.get("status") != "queued":
                continue
            run_id = str(record["run_id"])
            try:
                config = requested(self.config, record.get("request") or {})
                if len(self._queued) >= _QUEUED:
                    raise ValueError(f"{_QUEUED} runs were already queued at the restart")
            except ValueError as error:
                cancelled = {**record, "status": "cancelled", "reason": str(error)}
                await self.store.write(key, cancelled)
                log.warning("service.queued_run_cancelled", run_id=run_id, reason=str(error))
                continue
            self._queued.add(run_id)
            self._send.send_nowait(RunRequest(run_id, config, "api"))
            log.info("service.queued_run_resumed", run_id=run_id)

    def queued(self) -> frozenset[str]:
        """The requested runs not started yet."""
        return frozenset(self._queued)

    def request_stop(self, signum: int) -> None:
        """A stop: the run under way starts no new write; nothing starts after it."""
        self.stop.signum = signum
        with contextlib.suppress(anyio.WouldBlock):  # a full queue wakes the loop anyway
            self._send.send_nowait(None)  # wake the loop if it waits

    async def loop(self) -> None:
        """Cycles every interval, requested runs in between, until a stop."""
        due = time.monotonic()
        while not self.stopping:
            request: RunRequest | None = None
            with anyio.move_on_after(max(0.0, due - time.monotonic())):
                request = await self._receive.receive()
            if self.stopping:
                break
            if request is not None:
                await self._budgeted(request.config, request.trigger, request.run_id)
                continue
            await self.cycle()
            due = time.monotonic() + self.interval_s * self._random.uniform(1 - JITTER, 1 + JITTER)
        if self._queued:  # recorded as queued: a restarted service runs them
            log.info("service.queued_left", runs=sorted(self._queued))
        log.info("service.loop_ended", cycles=self.cycles)

    async def cycle(self) -> None:
        """One reconcile cycle (see the module's docstring)."""
        started = time.monotonic()
        self.cycles += 1
        await self._budgeted(self.config, "cycle", new_run_id())
        self.metrics.cycle_seconds.observe(time.monotonic() - started)
        if not self.stopping:
            await self._measure_realised()

    async def _budgeted(self, config: RunConfig, trigger: str, run_id: str) -> None:
        """A run within the change budget, if there is one: planned first, then applied to
        the environments that fit (the requested run's id is the applying run's)."""
        if self.budget is None or config.dry_run:
            await self._run(RunRequest(run_id, config, trigger))
            return
        planning = RunRequest(new_run_id(), replace(config, dry_run=True), f"{trigger}-plan")
        chosen = within_budget(await self._run(planning), self.budget)
        if chosen and not self.stopping:
            only = replace(config, suffixes=tuple(chosen), find_all=False, match=(), exclude=())
            await self._run(RunRequest(run_id, only, trigger))

    async def _measure_realised(self) -> None:
        """What the service's recent runs that changed something really saved (as
        `savings --run-id` measures it), once each is an hour old; the realised gauge is
        their sum. Reads only (CloudWatch), through the service's own gateway."""
        total, measured = 0.0, False
        for run_id, report in list(self._changed.items()):
            try:
                record = await self.store.read(run_key(run_id, "run.json"))
                if record is None:
                    continue
                found = await realised.measure(self.home, record, report, REALISED_DAYS)
            except realised.TooSoonError:
                continue
            except Exception as error:  # CloudWatch or the store unusable: the next cycle
                log.warning("service.realised_failed", run_id=run_id, error=str(error))
                continue
            total, measured = total + float(found["realised_monthly_usd"]), True
        if measured:
            self.metrics.savings.labels("realised").set(total)

    async def _run(self, request: RunRequest) -> dict[str, Any]:
        self.current = request.run_id
        self._queued.discard(request.run_id)
        log.info("service.run", run_id=request.run_id, trigger=request.trigger)
        try:
            run = Request(FreshPlan(request.config), f"service-{request.trigger}", request.run_id)
            report = await run_anywhere(run, self.settings, Controls(self.clock, self.stop))
        except Exception as error:  # AWS or the store unusable this time: the next cycle
            log.error("service.run_failed", run_id=request.run_id, error=errors.describe(error))
            self.metrics.runs.labels(request.trigger, request.config.command, "error").inc()
            return {}
        finally:
            self.current = None
        document: dict[str, Any] = json_text.materialised(report.document())
        self.metrics.observe_report(document, request.trigger, estimate=request.trigger != "api")
        self.recent.appendleft(request.run_id)
        if document["status"] == "converged" and not document.get("places"):
            self._changed[request.run_id] = document  # its savings, measured once it is old
            while len(self._changed) > REALISED_RUNS:
                del self._changed[next(iter(self._changed))]
        return document

    def export_home_calls(self) -> None:
        """The service's own calls since the last export (readiness, the API's reads)."""
        snapshot = self.home.counter.snapshot(since=self._home_calls)
        self._home_calls = self.home.counter.mark()
        self.metrics.observe_calls(snapshot)


def within_budget(plan: Mapping[str, Any], budget: int) -> list[str]:
    """The environments of a dry run's report to apply, in order, while their planned
    changes fit in `budget` (an environment is applied whole or not at all; the first
    always, even when it alone is larger)."""
    chosen: list[str] = []
    spent = 0
    for env in plan.get("environments", ()):
        if env["status"] != "planned":
            continue
        changes = len(_planned(env))
        # In order: the first that does not fit waits, and so do those after it. One larger
        # than the budget goes alone in a cycle of its own, or it would wait for ever.
        if chosen and spent + changes > budget:
            log.info("service.deferred", suffix=env["suffix"], changes=changes, budget=budget)
            break
        chosen.append(env["suffix"])
        spent += changes
        if spent >= budget:
            break
    return chosen


def _planned(env: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
    changes = [c for c in env["changes"] if c["status"] == "planned"]
    return changes + [
        c for fn in env["functions"] for c in fn["changes"] if c["status"] == "planned"
    ]
