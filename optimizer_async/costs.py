"""Monthly money: the lines the steps price (`Step.money`), summed per label and net.

Each step knows what its own changes save or add; this module only adds them up, so the
report can say "saves $X/month (compute $A - alarms $B)" without knowing any step.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from optimizer_async.steps.base import Effect, MoneyLine


@dataclass(frozen=True)
class Money:
    lines: tuple[MoneyLine, ...] = ()

    def __add__(self, other: Money) -> Money:
        return Money(self.lines + other.lines)

    @classmethod
    def total(cls, parts: Iterable[Money]) -> Money:
        return cls(tuple(line for part in parts for line in part.lines))

    @property
    def net_usd(self) -> float:
        return sum(line.net_usd for line in self.lines)

    @property
    def net_low_usd(self) -> float:
        """The net at the low end of every range."""
        return sum(line.net_low_usd for line in self.lines)

    @property
    def ranged(self) -> bool:
        return abs(self.net_usd - self.net_low_usd) >= 0.005

    def by_label(self) -> dict[str, tuple[Effect, float, float]]:
        """Each label once, in order of first appearance: its effect, its summed amount and
        that amount's low end."""
        summed: dict[str, tuple[Effect, float, float]] = {}
        for line in self.lines:
            if not line.counts:
                continue
            effect, amount, low = summed.get(line.label, (line.effect, 0.0, 0.0))
            line_low = line.monthly_usd if line.low_usd is None else line.low_usd
            summed[line.label] = (effect, amount + line.monthly_usd, low + line_low)
        return summed

    @property
    def shown(self) -> tuple[MoneyLine, ...]:
        """The lines beside the net (context, not savings)."""
        return tuple(line for line in self.lines if not line.counts)

    @property
    def bases(self) -> tuple[str, ...]:
        """What the figures assume, each once."""
        return tuple(dict.fromkeys(line.basis for line in self.lines if line.basis and line.counts))

    def breakdown(self) -> str:
        """`compute $0.60-$1.00 - alarms $0.30`: what saves, then what adds."""
        text = ""
        for label, (effect, amount, low) in self.by_label().items():
            sign = ("" if not text else " + ") if effect == "saves" else " - "
            text += f"{sign}{label} {usd_range(low, amount)}"
        return text.strip()

    def net_text(self) -> str:
        return usd_range(self.net_low_usd, self.net_usd)


def usd_range(low: float, high: float) -> str:
    """`$1.00`, or `$0.60-$1.00` where the evidence leaves a range."""
    if abs(high - low) < 0.005:
        return f"${high:,.2f}"
    return f"${min(low, high):,.2f}-${max(low, high):,.2f}"
