"""Lambda's update lifecycle: InProgress for a while, then Successful (or Failed).

On AWS an UpdateFunctionConfiguration / UpdateFunctionCode returns at once with
`LastUpdateStatus: InProgress`; the function reports InProgress until the update settles,
and a second update meanwhile is refused with 409 ResourceConflictException. moto 5.2.5
reports Successful immediately. Here the window lasts `update_s` (sandbox clock), and with
probability `update_failure_rate` it ends `Failed` with a reason, the function keeping its
previous configuration and code.

With probability `collision_rate`, a function's first update collides with someone else's
(a deploy pipeline, say): it is refused with 409 and the other update holds the function
for one window, changing nothing.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Final

from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda.models import LambdaBackend, LambdaFunction

from optimizer_async.sandbox import runtime
from optimizer_async.sandbox.patches._patching import wrap_method

# Attributes of moto's LambdaFunction that an update may change (restored on failure).
_CONFIG_ATTRIBUTES: Final = (
    "description", "handler", "memory_size", "role", "run_time", "timeout", "_vpc_config",
    "environment_vars", "layers", "tracing_config", "dead_letter_config", "logging_config",
)  # fmt: skip
# What UpdateFunctionCode changes: replaced, never changed in place (but for `code`, a dict
# of strings), so a shallow copy keeps them, without copying a package per update.
_CODE_ATTRIBUTES: Final = (
    "code", "code_bytes", "code_size", "code_sha_256", "code_digest", "_architectures",
)  # fmt: skip
FAILED_REASON: Final = "An internal error occurred while updating the function configuration."
FAILED_REASON_CODE: Final = "InternalError"


@dataclass
class _Update:
    ends_at: float
    fails: bool
    before: dict[str, Any]
    settled: bool = False


class ResourceConflict(LambdaClientError):
    def __init__(self, function_arn: str) -> None:
        super().__init__(
            "ResourceConflictException",
            "The operation cannot be performed at this time. "
            f"An update is in progress for resource: {function_arn}",
        )
        self.code = 409


def _now() -> float:
    return runtime.current().clock.now()


def _in_progress(fn: Any) -> bool:
    update: _Update | None = getattr(fn, "_sandbox_update", None)
    return update is not None and _now() < update.ends_at


def _settle(fn: Any) -> str:
    """The function's LastUpdateStatus now; a failed update's changes are undone once."""
    update: _Update | None = getattr(fn, "_sandbox_update", None)
    if update is None:
        return "Successful"
    if _now() < update.ends_at:
        return "InProgress"
    if update.fails and not update.settled:
        for name, value in update.before.items():
            setattr(fn, name, value)
    update.settled = True
    return "Failed" if update.fails else "Successful"


def update_window(fn: Any) -> tuple[float, bool] | None:
    """The function's latest update: (when it settles on the sandbox clock, whether it fails)."""
    update: _Update | None = getattr(fn, "_sandbox_update", None)
    return None if update is None else (update.ends_at, update.fails)


def _collides(fn: Any) -> bool:
    """Whether this update meets a concurrent one (decided once per function)."""
    if getattr(fn, "_sandbox_collided", False):
        return False
    fn._sandbox_collided = True
    return runtime.current().chance(runtime.current().config.collision_rate)


def _begin(fn: Any) -> _Update | None:
    """Start an update window (or refuse with 409 if one is open); returns the previous one."""
    if _in_progress(fn):
        raise ResourceConflict(fn.function_arn)
    _settle(fn)
    config = runtime.current().config
    if _collides(fn):
        fn._sandbox_update = _Update(
            ends_at=_now() + config.scaled(config.update_s), fails=False, before={}
        )
        raise ResourceConflict(fn.function_arn)
    previous: _Update | None = getattr(fn, "_sandbox_update", None)
    fn._sandbox_update = _Update(
        ends_at=_now() + config.scaled(config.update_s),
        fails=runtime.current().chance(config.update_failure_rate),
        before={name: copy.deepcopy(getattr(fn, name, None)) for name in _CONFIG_ATTRIBUTES}
        | {name: copy.copy(getattr(fn, name, None)) for name in _CODE_ATTRIBUTES},
    )
    return previous


def _run_update(original: Any, backend: Any, name: str, qualifier: Any, body: Any) -> Any:
    fn = backend.get_function(name, qualifier)
    previous = _begin(fn)
    try:
        return original(backend, name, qualifier, body)
    except Exception:
        fn._sandbox_update = previous  # a rejected update never started
        raise


def apply() -> None:
    @wrap_method(LambdaBackend, "update_function_configuration")
    def update_configuration(
        original: Any, backend: Any, name: str, qualifier: Any, body: dict[str, Any]
    ) -> Any:
        return _run_update(original, backend, name, qualifier, body)

    @wrap_method(LambdaBackend, "update_function_code")
    def update_code(original: Any, backend: Any, name: str, qualifier: Any, body: Any) -> Any:
        return _run_update(original, backend, name, qualifier, body)

    @wrap_method(LambdaFunction, "get_configuration")
    def configuration(original: Any, fn: Any, *a: Any, **k: Any) -> dict[str, Any]:
        status = _settle(fn)
        config: dict[str, Any] = original(fn, *a, **k)
        if "LastUpdateStatus" in config:  # absent in CreateFunction's own answer
            config["LastUpdateStatus"] = status
            if status == "Failed":
                config["LastUpdateStatusReason"] = FAILED_REASON
                config["LastUpdateStatusReasonCode"] = FAILED_REASON_CODE
        return config
