"""Lambda's reports read event by event (FilterLogEvents), where Logs Insights cannot
compute their statistics: an emulator that runs no `stats`, or a query that failed.

One FilterLogEvents scan per log group over the window, with a filter pattern matching
either log format's report, pages followed to the end; each event parsed
(`lambda_reports.parse_report`) and given to the function its stream names
(`lambda_reports.owner`). Groups are read a few at a time: FilterLogEvents' quota is 5
requests a second per account and region (the gateway paces it). The bytes read count
against the run's scan budget beyond what admitting the group already reserved; a group
whose events would pass the budget is not judged from a part of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Final

import anyio

from optimizer_async.steps.lambda_reports import (
    FILTER_PATTERN,
    Figures,
    Placement,
    Tally,
    owner,
    parse_report,
    stream_function,
)

if TYPE_CHECKING:
    from optimizer_async.aws.gateway import Aws

_GROUPS_AT_ONCE: Final = 4
_EVENT_OVERHEAD_BYTES: Final = 26  # CloudWatch Logs' size of an event beyond its message


class OverBudget(Exception):
    """Reading a group's events would pass the run's scan budget."""


async def _read_group(
    aws: Aws,
    group: str,
    placements: Sequence[Placement],
    start: datetime,
    end: datetime,
    charge: Callable[[int], bool],
) -> dict[str, Tally]:
    tallies: dict[str, Tally] = {}
    async for page in aws.pages(
        "nextToken",
        aws.logs.filter_log_events,
        logGroupName=group,
        startTime=int(start.timestamp() * 1000),
        endTime=int(end.timestamp() * 1000) - 1,  # the window is [start, end)
        filterPattern=FILTER_PATTERN,
    ):
        events = page.get("events", [])
        size = sum(len(e.get("message", "").encode()) + _EVENT_OVERHEAD_BYTES for e in events)
        if not charge(size):
            raise OverBudget(group)
        for event in events:
            report = parse_report(event.get("message", ""))
            if report is None:  # an emulator that ignores the pattern lists everything
                continue
            function = owner(placements, group, stream_function(event.get("logStreamName", "")))
            if function is not None:
                tallies.setdefault(function, Tally()).add(report)
    return tallies


async def read_reports(
    aws: Aws,
    placements: Sequence[Placement],
    start: datetime,
    end: datetime,
    charge: Callable[[int], bool],
) -> dict[str, Figures | Exception]:
    """Per function: its reports' figures over [start, end) (no reports: empty figures),
    or why its group could not be read."""
    groups = sorted({p.log_group for p in placements})
    found: dict[str, Figures | Exception] = {}
    slots = anyio.CapacityLimiter(_GROUPS_AT_ONCE)

    async def one(group: str) -> None:
        members = [p for p in placements if p.log_group == group]
        async with slots:
            try:
                tallies = await _read_group(aws, group, placements, start, end, charge)
            except Exception as error:
                for member in members:
                    found[member.function] = error
                return
        for member in members:
            tally = tallies.get(member.function)
            found[member.function] = tally.figures() if tally else Figures()

    async with anyio.create_task_group() as tasks:
        for group in groups:
            tasks.start_soon(one, group)
    return found
