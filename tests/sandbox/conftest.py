"""Sandbox tests run on virtual time: what they see never depends on the machine's speed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from optimizer_async.sandbox.clock import ManualClock
from optimizer_async.sandbox.server import EmbeddedSandbox


@pytest.fixture
def clock(sandbox: EmbeddedSandbox) -> Iterator[ManualClock]:
    """A clean sandbox on a ManualClock at 0 that moves only when the test advances it."""
    with sandbox.use_clock(ManualClock()) as manual:
        yield manual
