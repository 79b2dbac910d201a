"""How far a run has got, for people watching it: a live display on a terminal, else a
`progress` log event every few seconds.

The engine and discovery count into a `Counts` (plain integer increments: a run that nobody
watches pays nothing else); the gateway knows which quota bucket has the most calls waiting
for their turn, the run's bottleneck. `watch` renders both until it is cancelled: a rich
`Live` table on stderr when stderr is a terminal (never on stdout, which is the report's),
otherwise one `progress` event per interval into the logs.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any, Final

import anyio
import structlog
from rich.console import Console
from rich.live import Live
from rich.table import Table

log = structlog.get_logger("optimizer_async.progress")

LOG_INTERVAL_S: Final = 5.0  # a `progress` event this often in a shipped log
_REFRESH_S: Final = 0.5  # the live display's redraw


@dataclass
class Counts:
    """One account and region's run so far: environments and changes."""

    run_id: str = ""  # known once the run has started
    environments: int = 0  # to discover (known once the suffixes are)
    discovered: int = 0  # environments whose functions were read (or failed to be)
    planned: int = 0  # environments planned
    applied: int = 0  # changes applied
    verified: int = 0  # changes re-read as planned
    failed: int = 0  # environments and changes that failed

    def to_json(self) -> dict[str, int]:
        """The counts (the run id goes on the event itself)."""
        counts = asdict(self)
        del counts["run_id"]
        return counts


@dataclass(frozen=True)
class Place:
    """Where a run runs: its account and region, and what it has counted so far."""

    account: str
    region: str
    counts: Counts
    waiting: Callable[[], tuple[str, int] | None]  # the bucket with most calls queued


def _bottleneck(place: Place) -> str:
    busiest = place.waiting()
    return "-" if busiest is None else f"{busiest[0]} ({busiest[1]} queued)"


def table(places: list[Place]) -> Table:
    """The live display: a row per account and region, and the total."""
    grid = Table(title="lambda-optimizer", title_justify="left", expand=False)
    for header in ("account / region", "discovered", "planned", "applied", "verified"):
        grid.add_column(header, justify="left" if header.startswith("account") else "right")
    grid.add_column("failed", justify="right")
    grid.add_column("waiting on (quota bucket)")
    total = Counts()
    for place in places:
        c = place.counts
        for name, value in c.to_json().items():
            setattr(total, name, getattr(total, name) + value)
        grid.add_row(
            f"{place.account} {place.region}",
            f"{c.discovered}/{c.environments}",
            f"{c.planned}/{c.environments}",
            str(c.applied),
            str(c.verified),
            str(c.failed),
            _bottleneck(place),
        )
    if len(places) > 1:
        grid.add_row(
            "all",
            f"{total.discovered}/{total.environments}",
            f"{total.planned}/{total.environments}",
            str(total.applied),
            str(total.verified),
            str(total.failed),
            "",
        )
    return grid


def event(places: list[Place]) -> dict[str, Any]:
    """The `progress` log event's fields."""
    return {
        "places": [
            {
                "account": place.account,
                "region": place.region,
                **place.counts.to_json(),
                "waiting_on": _bottleneck(place),
            }
            for place in places
        ]
    }


def on_terminal() -> bool:
    """Whether a live display can be shown: stderr is a terminal."""
    return sys.stderr.isatty()


async def watch(
    places: list[Place],
    live: bool,
    interval_s: float = LOG_INTERVAL_S,
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
) -> None:
    """Show progress until cancelled: live on stderr, or a `progress` event per interval
    (`sleep`: how an interval passes; tests pass their own). The live display redirects
    stderr, so log lines print above it, not through it."""
    if not live:
        while True:
            await sleep(interval_s)
            run_ids = [place.counts.run_id for place in places if place.counts.run_id]
            log.info("progress", **event(places), **({"run_id": run_ids[0]} if run_ids else {}))
    console = Console(stderr=True)
    with Live(
        table(places),
        console=console,
        refresh_per_second=1 / _REFRESH_S,
        redirect_stdout=False,
        redirect_stderr=True,
        transient=False,
    ) as display:
        try:
            while True:
                await anyio.sleep(_REFRESH_S)
                display.update(table(places))
        finally:
            display.update(table(places))  # the last counts stay on the screen
