"""Our async waiter, counted exactly: the sandbox's update window and the waiter's sleeps run
on one virtual clock, so every poll happens at a known moment whatever the machine's load."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import anyio
import pytest

from optimizer_async.aws.gateway import Aws, AwsSettings
from optimizer_async.aws.learned import LearnedWait
from optimizer_async.aws.waiters import Backoff, UpdateFailed, WaiterTimeout, wait_function_updated
from optimizer_async.sandbox.clock import ManualClock
from optimizer_async.sandbox.server import EmbeddedSandbox
from tests.conftest import REGION, ClientFactory
from tests.integration.conftest import LinkedClock

pytestmark = pytest.mark.sandbox_only("a virtual clock linked to the sandbox's, to count polls")
Seed = Callable[..., list[str]]
FUNCTION = "lambda-function-dev"
EVERY_QUARTER_SECOND = Backoff(initial=0.25, factor=1.0, maximum=0.25, deadline=10.0, jitter=0.0)


@dataclass
class Virtual:
    aws: Aws
    clock: ManualClock

    def polls(self) -> int:
        return sum(n for (_, op, _), n in self.aws.counter.calls.items() if op == "GetFunction")


@pytest.fixture
async def virtual(sandbox: EmbeddedSandbox, seed: Seed) -> AsyncIterator[Virtual]:
    """A seeded sandbox on a ManualClock, and a gateway whose sleeps move that clock."""
    seed("dev")
    with sandbox.use_clock(ManualClock()) as clock:
        settings = AwsSettings(region=REGION, endpoint_url=sandbox.endpoint_url)
        async with Aws.open(settings, clock=LinkedClock(clock)) as aws:
            yield Virtual(aws, clock)


async def test_polls_until_the_window_closes(
    virtual: Virtual, sandbox: EmbeddedSandbox, client: ClientFactory
) -> None:
    with sandbox.configured(update_s=1.0):
        client("lambda").update_function_configuration(FunctionName=FUNCTION, MemorySize=1024)
        answer = await wait_function_updated(virtual.aws, FUNCTION, EVERY_QUARTER_SECOND)
    assert answer["Configuration"]["MemorySize"] == 1024
    # InProgress at 0, 0.25, 0.5 and 0.75; Successful at exactly 1.0.
    assert virtual.polls() == 5
    assert virtual.clock.sleeps == (0.25, 0.25, 0.25, 0.25)


async def test_a_failed_update_fails_at_once_with_the_reason(
    virtual: Virtual, sandbox: EmbeddedSandbox, client: ClientFactory
) -> None:
    with sandbox.configured(update_s=0.5, update_failure_rate=1.0):
        client("lambda").update_function_configuration(FunctionName=FUNCTION, MemorySize=1024)
        with pytest.raises(UpdateFailed) as failed:
            await wait_function_updated(virtual.aws, FUNCTION, EVERY_QUARTER_SECOND)
    assert failed.value.code == "InternalError"
    assert virtual.polls() == 3  # 0 and 0.25 in progress, 0.5 failed: no poll after


async def test_gives_up_at_the_deadline(
    virtual: Virtual, sandbox: EmbeddedSandbox, client: ClientFactory
) -> None:
    doubling = Backoff(initial=1.0, factor=2.0, maximum=4.0, deadline=10.0, jitter=0.0)
    with sandbox.configured(update_s=100.0):
        client("lambda").update_function_configuration(FunctionName=FUNCTION, MemorySize=1024)
        with pytest.raises(WaiterTimeout, match=r"still InProgress after 7\.0 s"):
            await wait_function_updated(virtual.aws, FUNCTION, doubling)
    # Polls at 0, 1, 3 and 7; the next (at 11) would pass the 10 s deadline.
    assert virtual.polls() == 4
    assert virtual.clock.sleeps == (1.0, 2.0, 4.0)


async def test_jitter_stays_within_its_band() -> None:
    delays = Backoff(initial=1.0, factor=2.0, maximum=4.0, deadline=60.0).delays()
    first = [next(delays) for _ in range(5)]
    for delay, nominal in zip(first, (1.0, 2.0, 4.0, 4.0, 4.0), strict=True):
        assert nominal * 0.5 <= delay <= nominal


@pytest.mark.parametrize("draw", ["shortest", "longest", "random"])
def test_a_finished_query_waits_little_for_its_next_poll(
    draw: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whenever a query finishes, the next poll comes within half a second plus 40 % of the
    time already waited (10 s at most), whatever the jitter draws."""
    from optimizer_async.aws import waiters

    rng = random.Random(7)
    uniform = {"shortest": lambda a, b: a, "longest": lambda a, b: b, "random": rng.uniform}
    monkeypatch.setattr(random, "uniform", uniform[draw])
    schedule = waiters.QUERY_FINISHED
    for _ in range(50):
        delays, waited = schedule.delays(), 0.0
        while waited < schedule.deadline:
            wait = next(delays)
            assert wait <= min(0.5 + 0.4 * waited, schedule.maximum), waited
            waited += wait


async def test_a_logs_insights_query_is_polled_until_complete(
    virtual: Virtual, sandbox: EmbeddedSandbox
) -> None:
    from optimizer_async.aws.waiters import wait_query_finished
    from optimizer_async.steps.lambda_reports import REPORT_QUERY

    now = int(sandbox.model_now().timestamp())
    with sandbox.configured(insights_query_s=1.5):
        started = await virtual.aws.logs.start_query(
            logGroupNames=[f"/aws/lambda/{FUNCTION}"],
            startTime=now - 86_400,
            endTime=now,
            queryString=REPORT_QUERY,
        )
        every_half_second = Backoff(initial=0.5, factor=1.0, maximum=0.5, deadline=60, jitter=0)
        answer = await wait_query_finished(virtual.aws, started["queryId"], every_half_second)
    assert answer["status"] == "Complete"
    assert answer["results"]
    polls = virtual.aws.counter.calls[("logs", "GetQueryResults", "ok")]
    assert polls == 4  # Running at 0, 0.5 and 1.0; Complete at exactly 1.5


async def test_a_query_polls_when_another_that_waited_no_longer_finishes(
    aws: Aws, sandbox: EmbeddedSandbox, seed: Seed
) -> None:
    """Queries started together finish together: when the quick poller reads its query
    Complete, the other polls at once instead of sleeping out its 600 s backoff."""
    from optimizer_async.aws.waiters import QueriesFinished, wait_query_finished
    from optimizer_async.steps.lambda_reports import REPORT_QUERY

    seed("dev")
    now = int(sandbox.model_now().timestamp())
    finished = QueriesFinished()
    answers: dict[str, dict[str, Any]] = {}
    every_tenth = Backoff(initial=0.1, factor=1.0, maximum=0.1, deadline=60, jitter=0)
    rarely = Backoff(initial=600, factor=1.0, maximum=600, deadline=900, jitter=0)

    async def start() -> str:
        started = await aws.logs.start_query(
            logGroupNames=[f"/aws/lambda/{FUNCTION}"],
            startTime=now - 86_400,
            endTime=now,
            queryString=REPORT_QUERY,
        )
        return str(started["queryId"])

    async def wait(name: str, query_id: str, backoff: Backoff) -> None:
        answers[name] = await wait_query_finished(aws, query_id, backoff, finished)

    with sandbox.configured(insights_query_s=0.3), anyio.fail_after(60):
        slow, quick = await start(), await start()  # the slow waiter starts first
        async with anyio.create_task_group() as group:
            group.start_soon(wait, "slow", slow, rarely)
            group.start_soon(wait, "quick", quick, every_tenth)
    assert {name: answer["status"] for name, answer in answers.items()} == {
        "slow": "Complete",
        "quick": "Complete",
    }
    assert finished.shortest is not None


async def test_once_learned_each_update_is_polled_once(
    virtual: Virtual, sandbox: EmbeddedSandbox, client: ClientFactory
) -> None:
    learned = LearnedWait()
    lam = client("lambda")
    with sandbox.configured(update_s=1.0):
        lam.update_function_configuration(FunctionName=FUNCTION, MemorySize=1024)
        await wait_function_updated(virtual.aws, FUNCTION, EVERY_QUARTER_SECOND, learned)
        assert virtual.polls() == 5  # the first probes: 0, 0.25, 0.5, 0.75, 1.0
        assert learned.learned == 1.0
        for memory in (512, 768, 896):
            lam.update_function_configuration(FunctionName=FUNCTION, MemorySize=memory)
            answer = await wait_function_updated(
                virtual.aws, FUNCTION, EVERY_QUARTER_SECOND, learned
            )
            assert answer["Configuration"]["MemorySize"] == memory
    assert virtual.polls() == 5 + 3  # then one poll each, a learned second after the update
    assert virtual.clock.sleeps[-3:] == (1.0, 1.0, 1.0)
