"""Lambda's 4 KB limit on a function's environment variables.

moto 5.2.5 stores environment variables of any size. AWS refuses a CreateFunction or
UpdateFunctionConfiguration whose variables, stored as the JSON object
`{"KEY":"value",...}` without white space, take more than 4096 bytes in UTF-8 (key names,
values, quotes, commas and brackets all count; a non-ASCII character takes 2-4 bytes):
InvalidParameterValueException "Lambda was unable to configure your environment variables
because the environment variables you have provided exceeded the 4KB limit. String
measured: <that JSON>". A refused update changes nothing: the check runs before the update
lifecycle and the RevisionId see the request (it wraps them, applied after them).

Sources: https://docs.aws.amazon.com/lambda/latest/dg/troubleshooting-deployment.html
(InvalidParameterValueException or RequestEntityTooLargeException) and
https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html (4 KB, in aggregate).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from moto.awslambda.exceptions import InvalidParameterValueException
from moto.awslambda.models import LambdaBackend

from optimizer_async.aws.limits import MAX_ENVIRONMENT_BYTES, environment_size
from optimizer_async.sandbox.patches._patching import wrap_method

TOO_LARGE_MESSAGE: Final = (
    "Lambda was unable to configure your environment variables because the environment "
    "variables you have provided exceeded the 4KB limit. String measured: "
)


def _measured(variables: Mapping[str, str]) -> str:
    """The variables as Lambda stores and measures them: compact JSON, characters unescaped."""
    return json.dumps(dict(variables), separators=(",", ":"), ensure_ascii=False)


def check_environment(environment: Any) -> None:
    """Refuse, as AWS does, an `Environment` request member whose variables exceed 4 KB."""
    variables = environment.get("Variables") if isinstance(environment, dict) else None
    if isinstance(variables, dict) and environment_size(variables) > MAX_ENVIRONMENT_BYTES:
        raise InvalidParameterValueException(TOO_LARGE_MESSAGE + _measured(variables))


def apply() -> None:
    @wrap_method(LambdaBackend, "create_function")
    def create(original: Any, backend: Any, spec: dict[str, Any]) -> Any:
        check_environment(spec.get("Environment"))
        return original(backend, spec)

    @wrap_method(LambdaBackend, "update_function_configuration")
    def update(original: Any, backend: Any, name: str, qualifier: Any, body: Any) -> Any:
        check_environment(body.get("Environment"))
        return original(backend, name, qualifier, body)
