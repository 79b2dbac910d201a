"""Memory, timeout, tracing, dead-letter queue and secret-ARN variables: ONE update call.

Lambda allows one update at a time per function, so every configuration change goes in a
single UpdateFunctionConfiguration, sent with the RevisionId discovery read (an optimistic
lock: if someone changed the function meanwhile we re-read and re-merge, never overwrite).
Environment variables are merged: existing ones are sent back byte for byte; only the two
secret-ARN variables are added, and only when their names are free.

The optimizer only tightens: memory and timeout already below target are kept, and an
existing dead-letter target is kept.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any, ClassVar, Final

import anyio

from optimizer_async import baseline
from optimizer_async.aws import errors
from optimizer_async.aws.waiters import IAM_PROPAGATION, wait_function_updated
from optimizer_async.inventory import EnvironmentVariables, FunctionInventory, environment_error
from optimizer_async.steps.base import (
    ApiCall,
    ApplyContext,
    Change,
    FunctionStep,
    Permission,
    PlanContext,
    StepPlan,
)

MEMORY: Final = "MemorySize"
TIMEOUT: Final = "Timeout"
TRACING: Final = "TracingConfig.Mode"
DEAD_LETTER: Final = "DeadLetterConfig.TargetArn"
ENVIRONMENT_PREFIX: Final = "Environment.Variables."
_FUNCTION_ARN: Final = "arn:{partition}:lambda:{region}:{account}:function:{function}"
_MAX_REREADS: Final = 5  # someone keeps changing the function: stop and report


def _secret_variables(ctx: PlanContext) -> dict[str, str]:
    names = ctx.names
    arns = ctx.secret_arns
    return {
        baseline.DATABASE_URL_SECRET_ARN_VAR: arns[names.database_url_secret],
        baseline.API_KEY_SECRET_ARN_VAR: arns[names.api_key_secret],
    }


class FunctionConfiguration(FunctionStep):
    name: ClassVar[str] = "function_configuration"
    part = "function"
    after: ClassVar[tuple[str, ...]] = ("dead_letter_queue", "role_policy")
    reads = (ApiCall("lambda", "GetFunction"),)
    writes = (ApiCall("lambda", "UpdateFunctionConfiguration"),)
    permissions = (
        Permission("lambda:GetFunction", _FUNCTION_ARN),
        Permission("lambda:UpdateFunctionConfiguration", _FUNCTION_ARN),
    )

    def plan(self, ctx: PlanContext, function: FunctionInventory) -> StepPlan:
        state, target = function.state, ctx.targets.function
        changes: list[Change] = []
        unchanged: list[str] = []
        notes: list[str] = []

        def change(setting: str, before: Any, after: Any) -> None:
            changes.append(Change(self.name, state.name, setting, before, after))

        for setting, current, wanted, unit in (
            (MEMORY, state.memory_mb, target.memory_mb, "MB"),
            (TIMEOUT, state.timeout_s, target.timeout_s, "s"),
        ):
            if current > wanted:
                change(setting, current, wanted)
            else:
                unchanged.append(setting)
                if current < wanted:
                    notes.append(f"{setting} {current} {unit} is below target {wanted}; kept")

        if state.tracing_mode != target.tracing_mode:
            change(TRACING, state.tracing_mode, target.tracing_mode)
        else:
            unchanged.append(TRACING)

        if state.dead_letter_target is None:
            change(DEAD_LETTER, None, ctx.queue_arn)
        else:
            unchanged.append(DEAD_LETTER)
            if state.dead_letter_target != ctx.queue_arn:
                notes.append(f"existing dead-letter target {state.dead_letter_target} kept")

        if state.environment_error is not None:
            notes.append(
                f"environment variables unreadable ({state.environment_error}): secret ARNs "
                "not added, so that no existing variable can be lost"
            )
            return StepPlan(tuple(changes), tuple(unchanged), tuple(notes))
        for variable, arn in _secret_variables(ctx).items():
            setting = ENVIRONMENT_PREFIX + variable
            if variable not in state.environment:
                change(setting, None, arn)
            else:
                unchanged.append(setting)
                if state.environment[variable] != arn:
                    notes.append(f"{variable} already set to another value; kept")
        return StepPlan(tuple(changes), tuple(unchanged), tuple(notes))

    async def apply(
        self, ctx: ApplyContext, function: FunctionInventory, changes: tuple[Change, ...]
    ) -> None:
        aws, state = ctx.aws, function.state
        settings = {change.setting: change.after for change in changes}
        params: dict[str, Any] = {"FunctionName": state.name}
        if MEMORY in settings:
            params[MEMORY] = settings[MEMORY]
        if TIMEOUT in settings:
            params[TIMEOUT] = settings[TIMEOUT]
        if TRACING in settings:
            params["TracingConfig"] = {"Mode": settings[TRACING]}
        if DEAD_LETTER in settings:
            params["DeadLetterConfig"] = {"TargetArn": settings[DEAD_LETTER]}
        additions = {
            setting.removeprefix(ENVIRONMENT_PREFIX): value
            for setting, value in settings.items()
            if setting.startswith(ENVIRONMENT_PREFIX)
        }

        environment, revision = state.environment, state.revision_id
        if state.last_update_status == "InProgress":
            ctx.log.info("function.wait_before_update", reason="an update is in progress")
            environment, revision = await _reread(ctx, state.name)
        # A new dead-letter queue needs a permission IAM may not have propagated yet.
        gate = ctx.iam_gate.through(state.role_name) if DEAD_LETTER in settings else nullcontext()
        async with gate:
            rereads = 0
            iam_deadline = anyio.current_time() + aws.scaled(IAM_PROPAGATION.deadline)
            iam_delays = IAM_PROPAGATION.delays()
            while True:
                if additions:
                    params["Environment"] = {"Variables": environment.merged(additions)}
                if revision:
                    params["RevisionId"] = revision
                try:
                    await aws.call("lambda", "UpdateFunctionConfiguration", **params)
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
                    elif errors.is_iam_propagation(error) and anyio.current_time() < iam_deadline:
                        delay = aws.scaled(next(iam_delays))
                        ctx.log.info("function.iam_not_propagated", retry_in_s=round(delay, 2))
                        await anyio.sleep(delay)
                    else:
                        raise
        await wait_function_updated(aws, state.name)


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
