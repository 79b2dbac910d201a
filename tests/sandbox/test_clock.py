"""The sandbox's clock: virtual time for tests, kept across reconfiguration, always restored."""

from __future__ import annotations

import threading

import pytest

from optimizer_async.aws.quotas import BUCKETS
from optimizer_async.sandbox import runtime
from optimizer_async.sandbox.accounts import DEFAULT_ACCOUNT as ACCOUNT
from optimizer_async.sandbox.clock import ManualClock, SystemClock
from optimizer_async.sandbox.config import SandboxConfig
from optimizer_async.sandbox.server import EmbeddedSandbox


def test_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock()
    assert clock.now() == 0.0
    clock.sleep(0.25)
    clock.advance(1.0)
    clock.sleep(0.5)
    assert clock.now() == 1.75
    assert clock.sleeps == (0.25, 0.5)  # advancing is not sleeping
    with pytest.raises(ValueError, match="non-negative"):
        clock.sleep(-1.0)
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1.0)
    assert clock.now() == 1.75


def test_manual_clock_counts_every_sleep_from_many_threads() -> None:
    clock = ManualClock()

    def sleeper() -> None:
        for _ in range(2_000):
            clock.sleep(1.0)

    threads = [threading.Thread(target=sleeper) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (clock.now(), len(clock.sleeps)) == (16_000.0, 16_000)


def test_reconfiguring_keeps_the_clock_and_use_clock_restores_it(
    sandbox: EmbeddedSandbox,
) -> None:
    assert type(sandbox.runtime.clock) is SystemClock  # what every test starts on
    manual = ManualClock()

    def reconfigure_then_fail() -> None:
        with sandbox.use_clock(manual):
            sandbox.configure(SandboxConfig.for_profile("aws"))
            with sandbox.configured(time_scale=2.0):
                assert sandbox.runtime.clock is manual
            assert runtime.install(SandboxConfig()).clock is manual
            raise RuntimeError("the block fails")

    with pytest.raises(RuntimeError, match="the block fails"):
        reconfigure_then_fail()
    assert type(sandbox.runtime.clock) is SystemClock


def test_a_new_clock_refills_the_quota_buckets(sandbox: EmbeddedSandbox) -> None:
    """Buckets stamped on one clock would refill by nonsense amounts on another."""
    bucket = next(b for b in BUCKETS if b.name == "logs.DescribeLogGroups")
    with sandbox.use_clock(ManualClock(start=1_000_000.0)):
        sandbox.configure(SandboxConfig(rate_limits=True))
        taken = sum(sandbox.runtime.allow(ACCOUNT, "us-east-1", bucket) for _ in range(20))
        assert taken == 10
        sandbox.set_clock(ManualClock())  # time "goes back" a million seconds
        taken = sum(sandbox.runtime.allow(ACCOUNT, "us-east-1", bucket) for _ in range(20))
        assert taken == 10
