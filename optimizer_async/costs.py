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

    def by_label(self) -> dict[str, tuple[Effect, float]]:
        """Each label once, in order of first appearance: its effect and summed amount."""
        summed: dict[str, tuple[Effect, float]] = {}
        for line in self.lines:
            effect, amount = summed.get(line.label, (line.effect, 0.0))
            summed[line.label] = (effect, amount + line.monthly_usd)
        return summed

    @property
    def bases(self) -> tuple[str, ...]:
        """What the figures assume, each once."""
        return tuple(dict.fromkeys(line.basis for line in self.lines if line.basis))

    def breakdown(self) -> str:
        """`compute $1.00 - alarms $0.30`: what saves first, what adds after."""
        text = ""
        for label, (effect, amount) in self.by_label().items():
            sign = ("" if not text else " + ") if effect == "saves" else " - "
            text += f"{sign}{label} ${amount:,.2f}"
        return text.strip()
