"""Monthly money: the lines the steps price (`Step.money`), summed per label and net.

Each step knows what its own changes save or add; this module only adds them up, so the
report can say "saves $X/month (saved: compute $A; added: alarms $B)" without knowing any
step. `money_text` is the one place money is put in words for people (tables, Markdown,
headlines, logs): a signed figure or range never reaches them, JSON keeps the numbers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

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
        """`saved: compute $0.60-$1.00; added: alarms $0.30`: what saves, then what adds,
        each amount as it is (never a sign to read)."""
        saved: list[str] = []
        added: list[str] = []
        for label, (effect, amount, low) in self.by_label().items():
            (saved if effect == "saves" else added).append(f"{label} {usd_range(low, amount)}")
        parts = [f"saved: {', '.join(saved)}"] if saved else []
        parts += [f"added: {', '.join(added)}"] if added else []
        return "; ".join(parts)

    def net_text(self, mood: Mood = "does", unit: str = "/month") -> str:
        """The net in words (`money_text`)."""
        return money_text(self.net_low_usd, self.net_usd, mood=mood, unit=unit)


# "does": what a run's changes do (`saves $1.00/month`); "would": a dry run's estimate.
Mood = Literal["does", "would"]


def money_text(low: float, high: float, *, mood: Mood = "does", unit: str = "/month") -> str:
    """A net amount or range (positive: saved) in words, whichever way it goes:
    `saves $0.24-$4.84/month`, `costs $0.24-$4.84/month more`, `between costing $0.37 and
    saving $7.00/month` (`would save`, `would cost ... more`, `would be between ...`).
    Decided on the cents people read: -$0.001 saves $0.00, it does not cost it."""
    low, high = sorted((round(low, 2) + 0.0, round(high, 2) + 0.0))  # + 0.0: no -0.00
    would = mood == "would"
    if low >= 0:
        return f"{'would save' if would else 'saves'} {usd_range(low, high)}{unit}"
    if high <= 0:
        return f"{'would cost' if would else 'costs'} {usd_range(-high, -low)}{unit} more"
    between = f"between costing ${-low:,.2f} and saving ${high:,.2f}{unit}"
    return f"would be {between}" if would else between


def usd_range(low: float, high: float) -> str:
    """`$1.00`, or `$0.60-$1.00` where the evidence leaves a range: amounts that are not
    signed (a line's effect says which way it goes); a net is `money_text`'s."""
    if abs(high - low) < 0.005:
        return f"${high:,.2f}"
    return f"${min(low, high):,.2f}-${max(low, high):,.2f}"
