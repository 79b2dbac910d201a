"""Our own async waiters (botocore's are synchronous and poll at a fixed 1 s).

`wait_function_updated` polls GetFunction (its own 100 requests/second quota, not the
shared 15/s control plane) with exponential backoff and jitter until the function's last
update settles, failing fast on `Failed` with AWS's reason and giving up at a deadline.
Time is read and slept through the gateway's clock, so tests can count polls exactly.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import anyio
import structlog

from optimizer_async.aws.learned import LearnedWait

if TYPE_CHECKING:
    from optimizer_async.aws.gateway import Aws

log = structlog.get_logger("optimizer_async.waiters")

_SETTLED_STATES: Final = frozenset({"Active", "Inactive"})


class WaiterError(Exception):
    """The awaited resource will not reach the wanted state."""


class UpdateFailed(WaiterError):
    def __init__(self, function_name: str, reason: str, code: str | None) -> None:
        suffix = f" ({code})" if code else ""
        super().__init__(f"update of {function_name} failed: {reason}{suffix}")
        self.reason = reason
        self.code = code


class WaiterTimeout(WaiterError):
    pass


@dataclass(frozen=True)
class Backoff:
    """Delays on AWS's clock: `initial`, growing by `factor` up to `maximum`, each with
    jitter (by default half to all of it) so that many waiters do not poll in step; give
    up after `deadline` seconds."""

    initial: float
    factor: float
    maximum: float
    deadline: float
    jitter: float = 0.5  # each delay is cut by up to this fraction, at random

    def delays(self) -> Iterator[float]:
        delay = self.initial
        while True:
            yield delay * random.uniform(1.0 - self.jitter, 1.0)
            delay = min(delay * self.factor, self.maximum)


# Config updates settle in seconds; GetFunction has its own 100/s quota, so poll briskly.
FUNCTION_UPDATED: Final = Backoff(initial=0.5, factor=1.5, maximum=2.0, deadline=300.0)
# A new role permission reaches Lambda in seconds (up to a minute); each retry is an
# UpdateFunctionConfiguration in the shared 15/s control plane, so retry less often.
IAM_PROPAGATION: Final = Backoff(initial=1.0, factor=1.5, maximum=4.0, deadline=90.0)


async def _poll(
    aws: Aws,
    backoff: Backoff,
    what: str,
    read: Callable[[], Awaitable[tuple[dict[str, Any] | None, str]]],
    sleep: Callable[[float], Awaitable[None]] | None = None,
) -> dict[str, Any]:
    """Call `read` until it returns an answer (it raises if the wait is hopeless), sleeping
    the backoff's delays in between (through `sleep`, which may wake early; by default
    the gateway's); give up when the next sleep would pass the deadline.
    `read` returns (answer or None, the status to report)."""
    started = aws.clock.now()
    deadline = aws.scaled(backoff.deadline)
    delays = backoff.delays()
    while True:
        answer, status = await read()
        if answer is not None:
            return answer
        delay = next(delays)
        elapsed = aws.clock.now() - started
        if elapsed + aws.scaled(delay) > deadline:
            raise WaiterTimeout(f"{what} still {status} after {elapsed:.1f} s")
        await (sleep or aws.sleep)(delay)


async def wait_function_updated(
    aws: Aws,
    function_name: str,
    backoff: Backoff = FUNCTION_UPDATED,
    learned: LearnedWait | None = None,
) -> dict[str, Any]:
    """GetFunction's answer once LastUpdateStatus is Successful (and State is settled).

    With `learned` (the run's update times so far), the first poll waits until an update
    has usually settled, so one poll is usually enough (aws/learned.py)."""
    attempt = 0

    async def read() -> tuple[dict[str, Any] | None, str]:
        nonlocal attempt
        attempt += 1
        answer: dict[str, Any] = dict(await aws.lambda_.get_function(FunctionName=function_name))
        config = answer["Configuration"]
        status = config.get("LastUpdateStatus", "Successful")
        state = config.get("State", "Active")
        log.debug(
            "waiter.poll",
            function=function_name,
            attempt=attempt,
            last_update_status=status,
            state=state,
        )
        if state == "Failed":  # the function itself is broken (e.g. its creation failed)
            reason = config.get("StateReason", "no reason given")
            raise WaiterError(f"{function_name} is in state Failed: {reason}")
        if status == "Failed":
            raise UpdateFailed(
                function_name,
                str(config.get("LastUpdateStatusReason", "no reason given")),
                config.get("LastUpdateStatusReasonCode"),
            )
        settled = status == "Successful" and state in _SETTLED_STATES
        return (answer if settled else None), str(status)

    if learned is None:
        return await _poll(aws, backoff, function_name, read)
    started = aws.clock.now()
    async with learned.paced(aws.clock, started):
        answer = await _poll(aws, backoff, function_name, read)
    learned.observe(aws.clock.now() - started)
    return answer


# Logs Insights queries over days of logs take seconds to minutes, and the run waits for
# them before it can plan: poll soon, then back off slowly up to 10 s, so that a finished
# query waits at most half a second plus 40 % of the time already waited. With 1 s x 1.5
# a 1.5 s query was read 1.2 s late: a fifth of a 500-function dry run.
QUERY_FINISHED: Final = Backoff(initial=0.5, factor=1.3, maximum=10.0, deadline=900.0, jitter=0.25)
_QUERY_DONE: Final = frozenset({"Complete", "Failed", "Cancelled", "Timeout", "Unknown"})


class QueryFailed(WaiterError):
    """A Logs Insights query ended without its results."""


class QueriesFinished:
    """When a run's queries finished, shared by their waiters.

    A run starts its queries together over log groups alike, and they finish together; it
    plans once the last is read, and each waiter polls on its own jittered schedule, so one
    of ten read its finished query most of a backoff late. When a query finishes, every
    other waiter that has already waited as long polls at once: at most one poll more per
    finished query, and the last one is read soon after the first."""

    def __init__(self) -> None:
        self._finished = anyio.Event()
        self.shortest: float | None = None  # the quickest wait to Complete, on the run's clock

    def observe(self, waited: float) -> None:
        self.shortest = waited if self.shortest is None else min(self.shortest, waited)
        self._finished.set()
        self._finished = anyio.Event()

    def sleeper(self, aws: Aws, started: float) -> Callable[[float], Awaitable[None]]:
        """A waiter's sleep: `delay`, or until a query finishes that took no longer than
        this waiter has waited since `started`."""

        async def sleep(delay: float) -> None:
            async with anyio.create_task_group() as group:

                async def out() -> None:
                    await aws.sleep(delay)
                    group.cancel_scope.cancel()

                group.start_soon(out)
                while True:
                    await self._finished.wait()
                    if self.shortest is not None and self.shortest <= aws.clock.now() - started:
                        group.cancel_scope.cancel()
                        return

        return sleep


async def wait_query_finished(
    aws: Aws,
    query_id: str,
    backoff: Backoff = QUERY_FINISHED,
    finished: QueriesFinished | None = None,
) -> dict[str, Any]:
    """GetQueryResults' answer once the query is Complete; raises if it ended otherwise.
    With `finished` (the run's other queries), it also polls when one of them finishes."""

    async def read() -> tuple[dict[str, Any] | None, str]:
        answer: dict[str, Any] = dict(await aws.logs.get_query_results(queryId=query_id))
        status = str(answer.get("status", "Unknown"))
        log.debug("waiter.query_poll", query_id=query_id, status=status)
        if status != "Complete" and status in _QUERY_DONE:
            raise QueryFailed(f"Logs Insights query {query_id} ended {status}")
        return (answer if status == "Complete" else None), status

    started = aws.clock.now()
    sleep = None if finished is None else finished.sleeper(aws, started)
    answer = await _poll(aws, backoff, f"Logs Insights query {query_id}", read, sleep)
    if finished is not None:
        finished.observe(aws.clock.now() - started)
    return answer
