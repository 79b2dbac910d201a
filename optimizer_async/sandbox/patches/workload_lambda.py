"""The workload model learns each configuration change when it takes effect.

On AWS a configuration update applies when the update settles: until then the function runs
its previous configuration, and a Failed update never applies. So an
UpdateFunctionConfiguration is recorded in the model as of the end of its update window
(`lambda_update_lifecycle`), and not at all if that window ends Failed or the call was
refused; PutFunctionConcurrency and DeleteFunctionConcurrency apply at once. Deleting a
function forgets its model. Functions get a profile through `attach` (the seeder does it
through `PUT /_sandbox/workload`); the model starts from their configuration at that moment.
Each function is modelled in its own account (the Lambda backend's), as AWS keeps them.
Its LoggingConfig (group and format) is part of the configuration: the model's log lines
go where and as it says from the moment an update settles.
"""

from __future__ import annotations

from typing import Any

from moto.awslambda.models import LambdaBackend, lambda_backends

from optimizer_async.definitions.naming import log_group_name
from optimizer_async.sandbox import runtime
from optimizer_async.sandbox.patches._patching import wrap_method
from optimizer_async.sandbox.patches.lambda_update_lifecycle import update_window
from optimizer_async.sandbox.workload.model import (
    JSON,
    TEXT,
    FunctionConfig,
    FunctionModel,
    Logging,
)
from optimizer_async.sandbox.workload.profiles import profile_for


def _reserved(fn: Any) -> int | None:
    value = getattr(fn, "reserved_concurrency", None)
    return None if value is None else int(value)


def _logging(fn: Any) -> Logging:
    """The function's LoggingConfig as the model keeps it (Lambda's default group: None)."""
    config = getattr(fn, "logging_config", None) or {}
    group = config.get("LogGroup")
    return Logging(
        None if not group or group == log_group_name(fn.function_name) else str(group),
        JSON if config.get("LogFormat") == JSON else TEXT,
    )


def attach(account: str, region: str, function_name: str, profile: str) -> FunctionModel:
    """Give an existing function of the account a named profile (KeyError if it does not
    exist there)."""
    backend = lambda_backends[account][region]
    try:
        fn = backend.get_function(function_name)
    except Exception as error:  # moto's UnknownFunctionException
        raise KeyError(f"no function {function_name!r} in {region} of {account}") from error
    config = FunctionConfig(int(fn.memory_size), float(fn.timeout), _reserved(fn), _logging(fn))
    sandbox = runtime.current()
    return sandbox.workload.attach(
        account,
        region,
        fn.function_name,
        profile_for(profile, fn.function_name),
        config,
        sandbox.model_time(),
    )


def apply() -> None:
    @wrap_method(LambdaBackend, "update_function_configuration")
    def update(original: Any, backend: Any, name: str, qualifier: Any, body: Any) -> Any:
        result = original(backend, name, qualifier, body)
        fn = backend.get_function(name, qualifier)
        window = update_window(fn)
        if window is not None and window[1]:
            return result  # it will end Failed: the function keeps its configuration
        sandbox = runtime.current()
        sandbox.workload.change(
            backend.account_id,
            backend.region_name,
            fn.function_name,
            sandbox.model_time(None if window is None else window[0]),
            memory_mb=int(fn.memory_size),
            timeout_s=float(fn.timeout),
            logging=_logging(fn),
        )
        return result

    @wrap_method(LambdaBackend, "put_function_concurrency")
    def put_concurrency(original: Any, backend: Any, function_name: str, reserved: Any) -> Any:
        result = original(backend, function_name, reserved)
        fn = backend.get_function(function_name)
        sandbox = runtime.current()
        sandbox.workload.change(
            backend.account_id,
            backend.region_name,
            fn.function_name,
            sandbox.model_time(),
            reserved=_reserved(fn),
        )
        return result

    @wrap_method(LambdaBackend, "delete_function_concurrency")
    def delete_concurrency(original: Any, backend: Any, function_name: str) -> Any:
        result = original(backend, function_name)
        fn = backend.get_function(function_name)
        sandbox = runtime.current()
        sandbox.workload.change(
            backend.account_id,
            backend.region_name,
            fn.function_name,
            sandbox.model_time(),
            reserved=None,
        )
        return result

    @wrap_method(LambdaBackend, "delete_function")
    def delete(original: Any, backend: Any, function_name: str, qualifier: Any = None) -> Any:
        fn = backend.get_function(function_name)
        result = original(backend, function_name, qualifier)
        if qualifier is None:
            runtime.current().workload.forget(
                backend.account_id, backend.region_name, fn.function_name
            )
        return result
