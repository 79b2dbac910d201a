"""What every run reads before any step: the account, and each function by its exact name.

The function's configuration (GetFunction: settings, tags, reserved concurrency, revision)
is the core part, `FUNCTION`: steps that change the function itself name it as their part,
and verification re-reads it with one GetFunction (its own 100 requests/second quota).
A function whose `environment-suffix` tag names another environment is not taken: exact
name matching is the rule, the tag is a second lock on it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Final

from optimizer_async.steps import latest_reads
from optimizer_async.steps.base import (
    ApiCall,
    FunctionPart,
    Json,
    Permission,
    ReadContext,
)
from optimizer_async.steps.inventory import EnvironmentInventory, FunctionState, function_state
from optimizer_async.steps.latest_reads import LatestReads

if TYPE_CHECKING:
    from optimizer_async.aws.gateway import Aws

SUFFIX_TAG: Final = "environment-suffix"
FUNCTION_ARN: Final = "arn:{partition}:lambda:{region}:{account}:function:{function}"

# The core's own calls: who the caller is (no permission needed), and each function.
CORE_READS: Final = (ApiCall("sts", "GetCallerIdentity"), ApiCall("lambda", "GetFunction"))
CORE_PERMISSIONS: Final = (
    Permission("lambda:GetFunction", FUNCTION_ARN),
    # GetFunction returns the function's tags only to a caller allowed lambda:ListTags
    # (else TagsError): without it the suffix-tag lock would silently see no tag.
    Permission("lambda:ListTags", FUNCTION_ARN),
)


async def find_function(aws: Aws, name: str) -> FunctionState | None:
    """The function called exactly `name`, or None if there is none."""
    answer = await aws.find(aws.lambda_.get_function, FunctionName=name)
    return None if answer is None else function_state(answer["Configuration"], answer)


def belongs_elsewhere(state: FunctionState, suffix: str) -> str | None:
    """The other environment the function's suffix tag names, if it names one."""
    tagged = state.tags.get(SUFFIX_TAG)
    return tagged if tagged is not None and tagged != suffix else None


class FunctionConfigurationPart(FunctionPart[FunctionState]):
    """The core part: the function as GetFunction shows it (read by the core itself)."""

    name: ClassVar[str] = "function"
    reads = CORE_READS[1:]
    permissions = CORE_PERMISSIONS

    async def read(
        self, ctx: ReadContext, environment: EnvironmentInventory, function: FunctionState
    ) -> FunctionState:
        # Deleted since discovery: keep what was seen; verification then finds it unchanged.
        return await find_function(ctx.aws, function.name) or function

    async def refresh(
        self, ctx: ReadContext, environment: EnvironmentInventory, function: FunctionState
    ) -> FunctionState:
        """The function as read after the run's last write to it, else read again."""
        latest = ctx.shared(latest_reads.SHARED_NAME, LatestReads).take(function.name)
        return latest or await self.read(ctx, environment, function)

    def image(self, value: FunctionState) -> Json:
        """Enough to put every setting back; variable names and a hash, never values."""
        return {
            "name": value.name,
            "arn": value.arn,
            "revision_id": value.revision_id,
            "memory_mb": value.memory_mb,
            "timeout_s": value.timeout_s,
            "tracing_mode": value.tracing_mode,
            "dead_letter_target": value.dead_letter_target,
            "environment_variable_names": sorted(value.environment),
            "environment_fingerprint": value.environment.fingerprint(),
            "reserved_concurrency": value.reserved_concurrency,
        }


FUNCTION: Final = FunctionConfigurationPart()
