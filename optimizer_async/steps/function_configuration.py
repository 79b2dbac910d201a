"""Memory, timeout, tracing, dead-letter queue and secret-ARN variables: ONE update call.

Lambda allows one update at a time per function, so every configuration change goes in a
single UpdateFunctionConfiguration, sent with the RevisionId discovery read (an optimistic
lock: if someone changed the function meanwhile we re-read and re-merge, never overwrite).
Environment variables are merged: existing ones are sent back byte for byte; only the two
secret-ARN variables are added, and only when their names are free and the whole stays
within Lambda's 4 KB (an update over it is refused whole, so the additions are held back
with the reason and the rest of the update goes ahead).

The optimizer only tightens: memory and timeout already below target are kept, and an
existing dead-letter target is kept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any, ClassVar, Final

from optimizer_async.aws import errors, limits
from optimizer_async.aws.limits import MAX_ENVIRONMENT_BYTES, environment_size
from optimizer_async.aws.waiters import IAM_PROPAGATION, wait_function_updated
from optimizer_async.definitions import baseline
from optimizer_async.definitions.naming import EnvironmentNames
from optimizer_async.definitions.targets import Targets
from optimizer_async.steps import monthly
from optimizer_async.steps.base import (
    ApiCall,
    ApplyContext,
    Change,
    Decision,
    FunctionStep,
    Json,
    MoneyLine,
    Permission,
    PlanContext,
    Reliance,
    StepPlan,
    VerifyContext,
    to_json,
)
from optimizer_async.steps.core import FUNCTION, FUNCTION_ARN
from optimizer_async.steps.dead_letter_queue import QUEUE, queue_arn
from optimizer_async.steps.evidence import METRICS, REPORT_LINES, ReportLines, UsageMetrics
from optimizer_async.steps.guardrails import (
    cpu_slowdown,
    decide,
    memory_floor_mb,
    timeout_floor_s,
)
from optimizer_async.steps.inventory import (
    EnvironmentVariables,
    FunctionInventory,
    environment_error,
    function_state,
)
from optimizer_async.steps.secrets import SECRETS, secret_arns
from optimizer_async.steps.verifying import not_own, not_own_secret, not_planned, whole

if TYPE_CHECKING:
    from types_aiobotocore_lambda.type_defs import UpdateFunctionConfigurationRequestTypeDef

MEMORY: Final = "MemorySize"
TIMEOUT: Final = "Timeout"
TRACING: Final = "TracingConfig.Mode"
DEAD_LETTER: Final = "DeadLetterConfig.TargetArn"
ENVIRONMENT_PREFIX: Final = "Environment.Variables."
_MAX_REREADS: Final = 5  # someone keeps changing the function: stop and report


def _secret_variables(ctx: PlanContext) -> dict[str, str]:
    names = ctx.names
    arns = secret_arns(ctx.environment)
    return {variable: arns[secret] for variable, secret in _variable_secrets(names).items()}


def _variable_secrets(names: EnvironmentNames) -> dict[str, str]:
    """The only variables the step adds, each with the secret whose ARN it holds."""
    return {
        baseline.DATABASE_URL_SECRET_ARN_VAR: names.database_url_secret,
        baseline.API_KEY_SECRET_ARN_VAR: names.api_key_secret,
    }


class FunctionConfiguration(FunctionStep):
    name: ClassVar[str] = "function_configuration"
    part = FUNCTION
    uses = (QUEUE, SECRETS, METRICS, REPORT_LINES)
    after: ClassVar[tuple[str, ...]] = ("dead_letter_queue", "role_policy")
    # What a rollback keeps while these settings stay: the queue the dead-letter target
    # names, and the inline policy that lets the role send there and read the secrets.
    relies_on: ClassVar[tuple[Reliance, ...]] = (
        Reliance("dead_letter_queue", (DEAD_LETTER,), "send its failures there"),
        Reliance("role_policy", (DEAD_LETTER,), "need it to send its failures to the queue"),
        Reliance(
            "role_policy",
            (
                ENVIRONMENT_PREFIX + baseline.DATABASE_URL_SECRET_ARN_VAR,
                ENVIRONMENT_PREFIX + baseline.API_KEY_SECRET_ARN_VAR,
            ),
            "need it to read its secrets",
        ),
    )
    # The waiter's last read then shows the reservation too, and is the verification.
    after_if_run: ClassVar[tuple[str, ...]] = ("reserved_concurrency",)
    revision_locked = True
    writes = (ApiCall("lambda", "UpdateFunctionConfiguration"),)
    permissions = (Permission("lambda:UpdateFunctionConfiguration", FUNCTION_ARN),)

    def plan(self, ctx: PlanContext, function: FunctionInventory) -> StepPlan:
        state, target = function.state, ctx.targets.function
        changes: list[Change] = []
        unchanged: list[str] = []
        notes: list[str] = []

        def change(setting: str, before: Any, after: Any) -> None:
            changes.append(Change(self.name, state.name, setting, before, after))

        decisions: list[Decision] = []
        memory, timeout = self._decisions(
            ctx.targets,
            state.memory_mb,
            state.timeout_s,
            function.part(METRICS),
            function.part(REPORT_LINES),
        )
        for setting, decision, unit in ((MEMORY, memory, "MB"), (TIMEOUT, timeout, "s")):
            current, wanted = decision.current, decision.target
            if current <= wanted:  # only tighten: nothing to decide
                unchanged.append(setting)
                if current < wanted:
                    notes.append(f"{setting} {current} {unit} is below target {wanted}; kept")
                continue
            decisions.append(decision)
            if decision.chosen is not None:
                change(setting, current, decision.chosen)
            else:
                unchanged.append(setting)
            if decision.risk == "at risk":
                notes.append(f"WARNING {setting}: {decision.why}")

        if state.tracing_mode != target.tracing_mode:
            change(TRACING, state.tracing_mode, target.tracing_mode)
        else:
            unchanged.append(TRACING)

        queue = queue_arn(ctx.environment)
        if state.dead_letter_target is None:
            change(DEAD_LETTER, None, queue)
        else:
            unchanged.append(DEAD_LETTER)
            if state.dead_letter_target != queue:
                notes.append(f"existing dead-letter target {state.dead_letter_target} kept")

        if state.environment_error is not None:
            notes.append(
                f"environment variables unreadable ({state.environment_error}): secret ARNs "
                "not added, so that no existing variable can be lost"
            )
            return StepPlan(
                tuple(changes), tuple(unchanged), tuple(notes), decisions=tuple(decisions)
            )
        added: dict[str, str] = {}
        for variable, arn in _secret_variables(ctx).items():
            setting = ENVIRONMENT_PREFIX + variable
            if variable not in state.environment:
                added[variable] = arn
            else:
                unchanged.append(setting)
                if state.environment[variable] != arn:
                    notes.append(f"{variable} already set to another value; kept")
        held: list[tuple[Change, str]] = []
        size = environment_size({**state.environment, **added})
        for variable, arn in added.items():
            addition = Change(self.name, state.name, ENVIRONMENT_PREFIX + variable, None, arn)
            if size > MAX_ENVIRONMENT_BYTES:  # Lambda would refuse the whole update
                held.append((addition, _too_large(size)))
            else:
                changes.append(addition)
        return StepPlan(
            tuple(changes),
            tuple(unchanged),
            tuple(notes),
            decisions=tuple(decisions),
            held=tuple(held),
        )

    def _decisions(
        self,
        targets: Targets,
        memory_mb: int,
        timeout_s: int,
        metrics: UsageMetrics,
        lines: ReportLines,
    ) -> tuple[Decision, Decision]:
        """Memory, then the timeout at the memory chosen: the guardrails' arithmetic on the
        evidence, the same for planning and for verifying a plan file's changes."""
        memory = self._memory(targets, memory_mb, metrics, lines)
        lowered = memory.chosen is not None and memory.chosen < memory_mb
        chosen = memory.chosen if lowered and memory.chosen is not None else memory_mb
        return memory, self._timeout(targets, timeout_s, memory_mb, metrics, chosen)

    def _memory(
        self, targets: Targets, current: int, metrics: UsageMetrics, lines: ReportLines
    ) -> Decision:
        """Target memory, never below max memory used x headroom (REPORT lines)."""
        rules, target = targets.guardrails, targets.function.memory_mb
        floor, basis = None, _no_evidence(metrics, lines)
        if lines.memory_max_mb is not None:
            floor = memory_floor_mb(lines.memory_max_mb, rules)
            basis = f"max memory used {lines.memory_max_mb:,.0f} MB x {rules.memory_headroom:g}"
        return decide(
            MEMORY, current, target, floor, rules.mode, "MB", basis, active=not metrics.idle
        )

    def _timeout(
        self,
        targets: Targets,
        current: int,
        current_memory_mb: int,
        metrics: UsageMetrics,
        memory_mb: int,
    ) -> Decision:
        """Target timeout, never below the durations projected at the new memory."""
        rules, target = targets.guardrails, targets.function.timeout_s
        floor, basis = None, _no_evidence(metrics, None)
        p99, highest = metrics.duration_p99_ms, metrics.duration_max_ms
        if not metrics.idle and highest is not None:
            slowdown = cpu_slowdown(metrics.memory_mb or current_memory_mb, memory_mb)
            # Without a p99 (an endpoint that cannot compute it, durations published only as
            # statistic sets) the maximum stands in for it: never less safe than the p99.
            floor = timeout_floor_s(highest if p99 is None else p99, highest, slowdown, rules)
            if p99 is None:
                why = metrics.p99_unavailable or "the metrics hold none"
                measured = (
                    f"maximum {highest / 1000:,.2f} s x {rules.timeout_p99_factor:g} "
                    f"(standing in for the p99: {why})"
                )
            else:
                measured = (
                    f"p99 {p99 / 1000:,.2f} s x {rules.timeout_p99_factor:g} and "
                    f"maximum {highest / 1000:,.2f} s x {rules.timeout_max_factor:g}"
                )
            cpu = f", x {slowdown:.2f} if CPU-bound at {memory_mb} MB" if slowdown > 1 else ""
            basis = measured + cpu
        return decide(
            TIMEOUT, current, target, floor, rules.mode, "s", basis, active=not metrics.idle
        )

    def basis(self, ctx: PlanContext, function: FunctionInventory) -> Json:
        """The settings the plan saw, the evidence its guardrails used, the ARNs it sets."""
        state, lines = function.state, function.part(REPORT_LINES)
        return {
            "memory_mb": state.memory_mb,
            "timeout_s": state.timeout_s,
            "metrics": to_json(function.part(METRICS)),
            "report_lines": {"source": lines.source, "memory_max_mb": lines.memory_max_mb},
            "dead_letter_target": queue_arn(ctx.environment),
            "variables": {
                variable: secret_arns(ctx.environment).get(secret)
                for variable, secret in _variable_secrets(ctx.names).items()
            },
        }

    def verify(self, ctx: VerifyContext, change: Change) -> str | None:
        """The function's own settings only: memory and timeout as the guardrails decide on
        the recorded evidence, the targets' tracing, the environment's queue, and the two
        secret-ARN variables holding the environment's own secrets' ARNs."""
        if change.resource != ctx.function:
            return f"{change.resource!r} is not the function {ctx.function} it is recorded under"
        basis, setting = ctx.basis, change.setting
        if setting in (MEMORY, TIMEOUT):
            memory, timeout = self._decisions(
                ctx.targets,
                basis["memory_mb"],
                basis["timeout_s"],
                UsageMetrics(**basis["metrics"]),
                ReportLines(**basis["report_lines"]),
            )
            if setting == MEMORY:
                return _decided(change, memory, limits.check_memory_mb)
            return _decided(change, timeout, limits.check_timeout_s)
        if setting == TRACING:
            return not_planned(change, change.before, ctx.targets.function.tracing_mode)
        if setting == DEAD_LETTER:
            queue, target = ctx.names.dead_letter_queue, basis["dead_letter_target"]
            return (
                not_own(ctx, change.after, "sqs", queue)
                or not_own(ctx, target, "sqs", queue)
                or not_planned(change, None, target)
            )
        variable = setting.removeprefix(ENVIRONMENT_PREFIX)
        secrets = _variable_secrets(ctx.names)
        if setting.startswith(ENVIRONMENT_PREFIX) and variable in secrets:
            arn = basis["variables"][variable]
            return (
                not_own_secret(ctx, change.after, secrets[variable])
                or not_own_secret(ctx, arn, secrets[variable])
                or not_planned(change, None, arn)
            )
        if setting.startswith(ENVIRONMENT_PREFIX):
            return f"{variable} is not a variable {self.name} adds (only {', '.join(secrets)})"
        return f"{setting} is not a setting {self.name} writes"

    async def apply(
        self, ctx: ApplyContext, function: FunctionInventory, changes: tuple[Change, ...]
    ) -> None:
        aws, state = ctx.aws, function.state
        settings = {change.setting: change.after for change in changes}
        params: UpdateFunctionConfigurationRequestTypeDef = {"FunctionName": state.name}
        if MEMORY in settings:
            params["MemorySize"] = int(settings[MEMORY])
        if TIMEOUT in settings:
            params["Timeout"] = int(settings[TIMEOUT])
        if TRACING in settings:
            params["TracingConfig"] = {"Mode": settings[TRACING]}
        if DEAD_LETTER in settings:  # an empty target removes the dead-letter queue
            params["DeadLetterConfig"] = {"TargetArn": str(settings[DEAD_LETTER] or "")}
        variables = {
            setting.removeprefix(ENVIRONMENT_PREFIX): value
            for setting, value in settings.items()
            if setting.startswith(ENVIRONMENT_PREFIX)
        }
        additions = {name: str(value) for name, value in variables.items() if value is not None}
        removals = {name for name, value in variables.items() if value is None}

        environment, revision = state.environment, state.revision_id
        if state.last_update_status == "InProgress":
            ctx.log.info("function.wait_before_update", reason="an update is in progress")
            environment, revision = await _reread(ctx, state.name)
        # A new dead-letter queue needs a permission IAM may not have propagated yet.
        adds_queue = bool(settings.get(DEAD_LETTER))
        gate = ctx.iam_gate.through(state.role_name) if adds_queue else nullcontext()
        async with gate:
            rereads = 0
            iam_deadline = aws.clock.now() + aws.scaled(IAM_PROPAGATION.deadline)
            iam_delays = IAM_PROPAGATION.delays()
            while True:
                if variables:  # every other variable goes back byte for byte
                    kept = {k: v for k, v in environment.items() if k not in removals}
                    params["Environment"] = {"Variables": {**additions, **kept}}
                if revision:
                    params["RevisionId"] = revision
                try:
                    await aws.lambda_.update_function_configuration(**params)
                    break
                except Exception as error:
                    conflict = errors.is_update_conflict(error)
                    stale = errors.is_stale_revision(error)
                    if (conflict or stale) and rereads < _MAX_REREADS:
                        # Someone else updated (409) or has updated (412) the function: wait
                        # for their update, then merge into what it left, never over it.
                        rereads += 1
                        event = (
                            "function.update_conflict" if conflict else "function.changed_meanwhile"
                        )
                        ctx.log.info(event, attempt=rereads)
                        environment, revision = await _reread(ctx, state.name)
                    elif errors.is_iam_propagation(error) and aws.clock.now() < iam_deadline:
                        delay = next(iam_delays)
                        ctx.log.info(
                            "function.iam_not_propagated", retry_in_s=round(aws.scaled(delay), 2)
                        )
                        await aws.sleep(delay)
                    else:
                        raise
        mark = ctx.latest.mark(state.name)
        answer = await wait_function_updated(aws, state.name, learned=ctx.update_wait)
        ctx.latest.saw(function_state(answer["Configuration"], answer), mark)

    def money(
        self, ctx: PlanContext, function: FunctionInventory, changes: Sequence[Change]
    ) -> tuple[MoneyLine, ...]:
        """Memory no longer allocated saves compute; tracing, a dead-letter queue and the
        secrets the handler now reads add; the request charge and the evidence scan are
        shown beside them."""
        month, book = monthly.Month.of(function.part(METRICS)), ctx.prices
        lines: list[MoneyLine] = []
        secrets = 0
        for change in changes:
            if change.setting == MEMORY:
                before, after = int(change.before), int(change.after)
                lines.append(
                    monthly.compute(month, book, function.state.architecture, before, after)
                )
            elif change.setting == TRACING and change.after == "Active":
                lines.append(monthly.tracing(month, book))
            elif change.setting == DEAD_LETTER and change.before is None:
                lines.append(monthly.dead_letters(month, book))
            elif change.setting.startswith(ENVIRONMENT_PREFIX) and change.before is None:
                secrets += 1
        if secrets:
            cache_s = baseline.HANDLER_SECRET_CACHE_S
            lines.append(monthly.secret_reads(month, book, secrets, cache_s))
        lines.append(monthly.requests(month, book))
        report_lines = function.parts.get(REPORT_LINES.name)
        if isinstance(report_lines, ReportLines):
            scan = monthly.evidence_scan(report_lines, book)
            if scan is not None:
                lines.append(scan)
        return tuple(lines)

    def current(self, ctx: PlanContext, function: FunctionInventory, change: Change) -> Any:
        state = function.state
        if change.setting.startswith(ENVIRONMENT_PREFIX):
            return state.environment.get(change.setting.removeprefix(ENVIRONMENT_PREFIX))
        return {
            MEMORY: state.memory_mb,
            TIMEOUT: state.timeout_s,
            TRACING: state.tracing_mode,
            DEAD_LETTER: state.dead_letter_target,
        }[change.setting]

    def render_setting(self, setting: str) -> str:
        return setting.replace(ENVIRONMENT_PREFIX, "env ")


class UnreadableEnvironment(Exception):
    """The variables cannot be read back, so a merged map cannot be written safely."""


async def _reread(ctx: ApplyContext, name: str) -> tuple[EnvironmentVariables, str | None]:
    """The function's variables and revision once any update in progress has settled."""
    answer = await wait_function_updated(ctx.aws, name)
    config = answer["Configuration"]
    error = environment_error(config)
    if error is not None:
        raise UnreadableEnvironment(
            f"environment variables of {name} became unreadable ({error}); not updated"
        )
    variables = EnvironmentVariables(config.get("Environment", {}).get("Variables", {}))
    return variables, config.get("RevisionId")


def _decided(change: Change, decision: Decision, check: Callable[[int], int]) -> str | None:
    """Why a memory or timeout change is not the one the guardrails decide (None: it is)."""
    if not whole(change.after):
        return f"{change.setting} {change.after!r} is not a whole number"
    try:
        check(change.after)
    except ValueError as error:
        return str(error)
    current, target, chosen = decision.current, decision.target, decision.chosen
    if current <= target:
        return f"{change.setting} {current} is not above the target {target}: it is kept"
    if chosen is None:
        return f"the evidence keeps {change.setting} at {current}: {decision.why}"
    return not_planned(change, current, chosen, decision.why)


def _too_large(size: int) -> str:
    return (
        f"the function's environment variables would be {size:,} bytes, over Lambda's "
        f"{MAX_ENVIRONMENT_BYTES:,}-byte limit (Lambda refuses the whole update): not added"
    )


def _no_evidence(metrics: UsageMetrics, lines: ReportLines | None) -> str:
    """Why there is no floor: said plainly."""
    if metrics.idle:
        return f"no invocations in the last {metrics.lookback_days} days"
    if lines is not None:
        return f"memory used unknown: {lines.source}"
    return "no duration metrics"
