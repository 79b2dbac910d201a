"""GetAccountSettings, PutFunctionConcurrency held to AWS's unreserved floor, and reservation 0.

moto 5.2.5 has no GetAccountSettings route and only checks reservations when an environment
variable is set. AWS always refuses a reservation that would leave the account's unreserved
concurrency below 100, and GetAccountSettings reports the limit and what remains unreserved.

A reservation of 0 is a real one ("To throttle a function, set the reserved concurrency to
zero. This stops any events from being processed until you remove the limit."; its valid
range starts at 0): AWS's GetFunction reports `Concurrency: {ReservedConcurrentExecutions:
0}`, where moto leaves it out (it tests the value's truth), and it counts as reserved.
https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html,
https://docs.aws.amazon.com/lambda/latest/api/API_Concurrency.html
"""

from __future__ import annotations

import json
from typing import Any

from moto.awslambda.exceptions import InvalidParameterValueException
from moto.awslambda.models import LambdaBackend, LambdaFunction, lambda_backends

from optimizer_async.aws.limits import MIN_UNRESERVED_CONCURRENCY
from optimizer_async.sandbox import runtime
from optimizer_async.sandbox.patches._patching import wrap_method
from optimizer_async.sandbox.protocols import CallId

FLOOR_MESSAGE = (
    "Specified ReservedConcurrentExecutions for function decreases account's "
    f"UnreservedConcurrentExecution below its minimum value of [{MIN_UNRESERVED_CONCURRENCY}]."
)


def _reserved(backend: Any, excluding: str | None = None) -> int:
    """Concurrency reserved by the region's functions, except the one named `excluding`."""
    return sum(
        int(fn.reserved_concurrency)
        for fn in backend.list_functions()
        if fn.reserved_concurrency is not None and fn.function_name != excluding
    )


def get_account_settings(call: CallId, _body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    """The GetAccountSettings answer for the caller's account in the caller's region."""
    backend = lambda_backends[call.account][call.region]
    functions = list(backend.list_functions())
    limit = runtime.current().config.account_concurrency
    reserved = _reserved(backend)
    payload = {
        "AccountLimit": {
            "TotalCodeSize": 80_530_636_800,
            "CodeSizeUnzipped": 262_144_000,
            "CodeSizeZipped": 52_428_800,
            "ConcurrentExecutions": limit,
            "UnreservedConcurrentExecutions": limit - reserved,
        },
        "AccountUsage": {
            "TotalCodeSize": sum(int(fn.code_size) for fn in functions),
            "FunctionCount": len(functions),
        },
    }
    return 200, [("Content-Type", "application/json")], json.dumps(payload).encode()


def apply() -> None:
    @wrap_method(LambdaBackend, "put_function_concurrency")
    def put_concurrency(original: Any, backend: Any, function_name: str, reserved: Any) -> Any:
        """Refuse reservations that break the floor, whatever moto's environment says."""
        fn = backend.get_function(function_name)
        limit = runtime.current().config.account_concurrency
        unreserved = limit - int(reserved) - _reserved(backend, excluding=fn.function_name)
        if unreserved < MIN_UNRESERVED_CONCURRENCY:
            raise InvalidParameterValueException(FLOOR_MESSAGE)
        fn.reserved_concurrency = int(reserved)
        return fn.reserved_concurrency

    @wrap_method(LambdaFunction, "get_code")
    def get_code(original: Any, fn: Any) -> dict[str, Any]:
        """GetFunction's answer, with a reservation of 0 kept."""
        answer: dict[str, Any] = original(fn)
        if fn.reserved_concurrency is not None:
            answer["Concurrency"] = {"ReservedConcurrentExecutions": int(fn.reserved_concurrency)}
        return answer
