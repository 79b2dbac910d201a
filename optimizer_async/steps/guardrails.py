"""The rules that keep a target from breaking a function: pure arithmetic on its evidence.

Lambda allocates CPU in proportion to memory, one full vCPU at 1,769 MB: below that, the
CPU-bound part of an invocation slows by current/new. The worst case the evidence allows is
a fully CPU-bound function, so projected durations use that factor. Each rule gives a floor;
`decide` turns target, floor and guardrail mode into a `Decision` the report shows.
"""

from __future__ import annotations

import math
from typing import Final

from optimizer_async.definitions.targets import GuardrailMode, Guardrails
from optimizer_async.steps.base import Decision, Risk

FULL_CPU_MB: Final = 1769


def cpu_slowdown(current_mb: int, new_mb: int) -> float:
    """How much longer fully CPU-bound work runs at `new_mb` than at `current_mb`."""
    return min(current_mb, FULL_CPU_MB) / min(new_mb, FULL_CPU_MB)


def memory_floor_mb(max_used_mb: float, rules: Guardrails) -> int:
    """Max memory used x headroom, rounded up to the step."""
    step = rules.memory_step_mb
    return math.ceil(max_used_mb * rules.memory_headroom / step) * step


def timeout_floor_s(p99_ms: float, max_ms: float, slowdown: float, rules: Guardrails) -> int:
    """Above the projected p99 x its factor and the projected maximum x its factor."""
    needed_ms = max(
        p99_ms * slowdown * rules.timeout_p99_factor, max_ms * slowdown * rules.timeout_max_factor
    )
    return max(1, math.ceil(needed_ms / 1000.0))


def concurrency_floor(peak: float, rules: Guardrails) -> int:
    return math.ceil(peak * rules.concurrency_peak_factor)


def decide(
    setting: str,
    current: int | None,
    target: int,
    floor: int | None,
    mode: GuardrailMode,
    unit: str,
    basis: str,
    active: bool = False,
) -> Decision:
    """A setting lowered (or a limit added, when `current` is None) towards `target`, never
    below the evidence's `floor` and never above `current`.

    `basis` says where the floor comes from ("max memory used 1400 MB x 1.25"), or why there
    is none. No floor for an idle function: the target applies, risk unknown (nothing runs
    to break). No floor for an `active` one (its evidence could not be read): it is kept,
    unless the guardrails are off.
    """

    def made(chosen: int | None, risk: Risk, why: str) -> Decision:
        return Decision(setting, current, target, chosen, risk, why)

    unit = f" {unit}" if unit else ""

    if floor is None:
        if mode == "off":
            risk: Risk = "at risk" if active else "unknown"
            return made(target, risk, f"no evidence ({basis}): target applied (--guardrails off)")
        if mode == "strict":
            return made(None, "skipped", f"no evidence ({basis}): strict guardrails skip it")
        if active:
            return made(None, "skipped", f"no evidence ({basis}) for a function in use: kept")
        return made(target, "unknown", f"no evidence ({basis}): target applied, risk unknown")
    if floor <= target:
        return made(target, "none", f"{basis} needs >= {floor}{unit}; target {target} is safe")
    needs = f"{basis} needs >= {floor}{unit}, above target {target}"
    if mode == "off":
        return made(target, "at risk", f"{needs}: target applied anyway (--guardrails off)")
    if mode == "strict":
        return made(None, "skipped", f"{needs}: skipped (--guardrails strict)")
    if current is not None and floor >= current:
        return made(None, "skipped", f"{needs}, and not below the current {current}: kept")
    return made(floor, "adjusted", f"{needs}: set to {floor}")
