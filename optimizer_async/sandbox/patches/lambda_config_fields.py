"""Keep TracingConfig and DeadLetterConfig on Lambda functions.

moto 5.2.5 stores TracingConfig only at CreateFunction and ignores it on
UpdateFunctionConfiguration; it drops DeadLetterConfig entirely. AWS keeps both, returns
them from GetFunction / GetFunctionConfiguration, and treats an empty TargetArn as "remove".
"""

from __future__ import annotations

from typing import Any

from moto.awslambda.models import LambdaFunction

from optimizer_async.sandbox.patches._patching import wrap_method


def _dead_letter(value: Any) -> dict[str, str] | None:
    if isinstance(value, dict) and value.get("TargetArn"):
        return {"TargetArn": str(value["TargetArn"])}
    return None


def apply() -> None:
    @wrap_method(LambdaFunction, "__init__")
    def init(
        original: Any, fn: Any, account_id: str, spec: dict[str, Any], *a: Any, **k: Any
    ) -> None:
        original(fn, account_id, spec, *a, **k)
        fn.dead_letter_config = _dead_letter(spec.get("DeadLetterConfig"))

    @wrap_method(LambdaFunction, "update_configuration")
    def update(original: Any, fn: Any, updates: dict[str, Any]) -> dict[str, Any]:
        if "TracingConfig" in updates:
            fn.tracing_config = {"Mode": updates["TracingConfig"].get("Mode", "PassThrough")}
        if "DeadLetterConfig" in updates:
            fn.dead_letter_config = _dead_letter(updates["DeadLetterConfig"])
        result: dict[str, Any] = original(fn, updates)
        return result

    @wrap_method(LambdaFunction, "get_configuration")
    def configuration(original: Any, fn: Any, *a: Any, **k: Any) -> dict[str, Any]:
        config: dict[str, Any] = original(fn, *a, **k)
        dead_letter = getattr(fn, "dead_letter_config", None)
        if dead_letter:
            config["DeadLetterConfig"] = dict(dead_letter)
        return config
