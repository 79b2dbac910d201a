"""Lambda functions keep a LoggingConfig and return it, as AWS does.

moto 5.2.5 ignores LoggingConfig. AWS returns it in every function configuration
(CreateFunction, GetFunction, GetFunctionConfiguration, UpdateFunctionConfiguration, ...),
by default `{"LogFormat": "Text", "LogGroup": "/aws/lambda/<name>"}`; with the JSON format
it carries both log levels, INFO unless given. The optimizer reads a function's log group
here, so the sandbox must keep a custom one, shared by several functions or not.

AWS's rules, checked before anything changes (this patch wraps the update lifecycle and the
RevisionId, applied after them):
- LogFormat is `JSON` or `Text`; ApplicationLogLevel `TRACE|DEBUG|INFO|WARN|ERROR|FATAL`;
  SystemLogLevel `DEBUG|INFO|WARN`; LogGroup 1-512 characters of `[\\.\\-_/#A-Za-z0-9]+`
  (else ValidationException). https://docs.aws.amazon.com/lambda/latest/api/API_LoggingConfig.html
- Log levels need the JSON format ("To use log-level filtering, your function must be
  configured to use the JSON log format"; default levels INFO):
  https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-log-level.html
  A level with the Text format is InvalidParameterValueException 'LogLevel is not supported
  when LogFormat is set to "Text". Remove LogLevel from your request or change the LogFormat
  to "JSON" and try again.' (LocalStack's wording; aws/aws-cdk#28045 quotes AWS's own,
  through CloudFormation, with "Json").
- An update names only what it changes: a key it leaves out keeps its value, a switch to
  Text drops the levels, a request naming JSON without levels sets them to INFO. AWS's
  documentation does not say; this is what LocalStack's Lambda provider (checked against
  AWS) does. The change goes through the update lifecycle (a Failed update restores it).

`fn.logging_config` is the function's LoggingConfig in AWS's answer shape, always filled in;
`logging_of(fn)` gives its (log group, log format).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from moto.awslambda.exceptions import InvalidParameterValueException, LambdaClientError
from moto.awslambda.models import LambdaBackend, LambdaFunction

from optimizer_async.sandbox.patches._patching import wrap_method

LOG_FORMATS: Final = ("JSON", "Text")
APPLICATION_LOG_LEVELS: Final = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
SYSTEM_LOG_LEVELS: Final = ("DEBUG", "INFO", "WARN")
DEFAULT_LOG_LEVEL: Final = "INFO"
LOG_GROUP_PATTERN: Final = r"[\.\-_/#A-Za-z0-9]+"
MAX_LOG_GROUP_LENGTH: Final = 512
LEVEL_NEEDS_JSON: Final = (
    'LogLevel is not supported when LogFormat is set to "Text". Remove LogLevel from your '
    'request or change the LogFormat to "JSON" and try again.'
)
_LEVELS: Final = ("ApplicationLogLevel", "SystemLogLevel")


class LoggingValidation(LambdaClientError):
    """AWS's ValidationException, naming every member that broke a constraint."""

    def __init__(self, problems: list[str]) -> None:
        count = len(problems)
        noun = "error" if count == 1 else "errors"
        super().__init__(
            "ValidationException", f"{count} validation {noun} detected: " + "; ".join(problems)
        )


def default_logging(function_name: str) -> dict[str, str]:
    """What AWS reports for a function created without a LoggingConfig."""
    return {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{function_name}"}


def _problems(requested: Mapping[str, Any]) -> list[str]:
    found = []
    for key, allowed in (
        ("LogFormat", LOG_FORMATS),
        ("ApplicationLogLevel", APPLICATION_LOG_LEVELS),
        ("SystemLogLevel", SYSTEM_LOG_LEVELS),
    ):
        value = requested.get(key)
        if value is not None and value not in allowed:
            where = key[0].lower() + key[1:]
            found.append(
                f"Value '{value}' at 'loggingConfig.{where}' failed to satisfy constraint: "
                f"Member must satisfy enum value set: [{', '.join(allowed)}]"
            )
    group = requested.get("LogGroup")
    if group is not None:
        prefix = f"Value '{group}' at 'loggingConfig.logGroup' failed to satisfy constraint: "
        if not isinstance(group, str) or not group:
            found.append(prefix + "Member must have length greater than or equal to 1")
        elif len(group) > MAX_LOG_GROUP_LENGTH:
            found.append(prefix + "Member must have length less than or equal to 512")
        elif re.fullmatch(LOG_GROUP_PATTERN, group) is None:
            found.append(
                prefix + f"Member must satisfy regular expression pattern: {LOG_GROUP_PATTERN}"
            )
    return found


def resolve(
    requested: Any, current: Mapping[str, str] | None, function_name: str
) -> dict[str, str]:
    """The LoggingConfig after a request's (None: the function's first), or AWS's error."""
    base = dict(current) if current is not None else default_logging(function_name)
    if requested is None:
        return base
    if not isinstance(requested, Mapping):
        raise InvalidParameterValueException("LoggingConfig must be an object.")
    problems = _problems(requested)
    if problems:
        raise LoggingValidation(problems)
    given = {key: str(value) for key, value in requested.items() if value is not None}
    if given.get("LogFormat") == "JSON":
        given = dict.fromkeys(_LEVELS, DEFAULT_LOG_LEVEL) | given
    merged = base | given
    if merged.get("LogFormat") != "JSON":
        if any(level in given for level in _LEVELS):
            raise InvalidParameterValueException(LEVEL_NEEDS_JSON)
        for level in _LEVELS:
            merged.pop(level, None)
    return {key: merged[key] for key in ("LogFormat", *_LEVELS, "LogGroup") if key in merged}


def logging_config(fn: Any) -> dict[str, str]:
    """The function's LoggingConfig (its default if it was made before this patch)."""
    found = getattr(fn, "logging_config", None)
    return dict(found) if found else default_logging(str(fn.function_name))


def logging_of(fn: Any) -> tuple[str, str]:
    """The function's (log group, log format), e.g. ("/aws/lambda/f", "Text")."""
    config = logging_config(fn)
    return config["LogGroup"], config["LogFormat"]


def apply() -> None:
    @wrap_method(LambdaFunction, "__init__")
    def init(
        original: Any, fn: Any, account_id: str, spec: dict[str, Any], *a: Any, **k: Any
    ) -> None:
        name = str(spec.get("FunctionName", ""))
        chosen = resolve(spec.get("LoggingConfig"), None, name)  # refused before it exists
        original(fn, account_id, spec, *a, **k)
        fn.logging_config = chosen

    @wrap_method(LambdaBackend, "update_function_configuration")
    def check(original: Any, backend: Any, name: str, qualifier: Any, body: Any) -> Any:
        """Refuse a bad LoggingConfig before the update opens a window or a revision."""
        if "LoggingConfig" in body:
            fn = backend.get_function(name, qualifier)
            resolve(body["LoggingConfig"], logging_config(fn), str(fn.function_name))
        return original(backend, name, qualifier, body)

    @wrap_method(LambdaFunction, "update_configuration")
    def update(original: Any, fn: Any, updates: dict[str, Any]) -> dict[str, Any]:
        if "LoggingConfig" not in updates:
            changed: dict[str, Any] = original(fn, updates)
            return changed
        chosen = resolve(updates["LoggingConfig"], logging_config(fn), str(fn.function_name))
        result: dict[str, Any] = original(fn, updates)
        fn.logging_config = chosen  # a new dict: published versions keep their own
        result["LoggingConfig"] = dict(chosen)
        return result

    @wrap_method(LambdaFunction, "get_configuration")
    def configuration(original: Any, fn: Any, *a: Any, **k: Any) -> dict[str, Any]:
        config: dict[str, Any] = original(fn, *a, **k)
        config["LoggingConfig"] = logging_config(fn)
        return config
