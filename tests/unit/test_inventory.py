from __future__ import annotations

import hashlib
import hmac
import json

from optimizer_async.steps.inventory import EnvironmentVariables, function_state


def _config(**extra: object) -> dict[str, object]:
    return {
        "FunctionName": "lambda-function-dev",
        "FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:lambda-function-dev",
        "Role": "arn:aws:iam::123456789012:role/service/lambda-role-dev",
        "MemorySize": 3008,
        "Timeout": 300,
        **extra,
    }


def test_get_function_answer_becomes_state() -> None:
    config = _config(
        Environment={"Variables": {"A": "1"}},
        TracingConfig={"Mode": "Active"},
        DeadLetterConfig={"TargetArn": "arn:aws:sqs:us-east-1:123456789012:q"},
        LoggingConfig={"LogGroup": "/custom/group"},
        RevisionId="r-1",
        LastUpdateStatus="InProgress",
    )
    state = function_state(
        config, {"Concurrency": {"ReservedConcurrentExecutions": 5}, "Tags": {"t": "v"}}
    )
    assert state.role_name == "lambda-role-dev"
    assert state.log_group == "/custom/group"
    assert (state.tracing_mode, state.reserved_concurrency, state.last_update_status) == (
        "Active",
        5,
        "InProgress",
    )
    assert dict(state.environment) == {"A": "1"}
    assert state.environment_error is None


def test_defaults_for_a_bare_function() -> None:
    state = function_state(_config(), {})
    assert state.log_group == "/aws/lambda/lambda-function-dev"
    assert (state.tracing_mode, state.dead_letter_target, state.reserved_concurrency) == (
        "PassThrough",
        None,
        None,
    )
    assert state.architecture == "x86_64"


def test_undecryptable_variables_are_flagged() -> None:
    config = _config(
        Environment={"Error": {"ErrorCode": "AccessDeniedException", "Message": "kms"}}
    )
    state = function_state(config, {})
    assert state.environment_error == "AccessDeniedException"
    assert len(state.environment) == 0


def test_variable_values_never_print() -> None:
    variables = EnvironmentVariables({"DSN": "postgres://u:secret@h/db"})
    assert "secret" not in repr(variables)
    assert "secret" not in str(variables)
    assert "DSN" in repr(variables)
    assert variables.fingerprint() != EnvironmentVariables({"DSN": "other"}).fingerprint()


def test_fingerprints_are_keyed_so_a_guess_cannot_be_confirmed_offline() -> None:
    """An HMAC under the state's key: the bare SHA-256 of the values is not it, and another
    key gives another fingerprint of the same values."""
    variables = EnvironmentVariables({"DSN": "postgres://u:secret@h/db"})
    canonical = json.dumps({"DSN": "postgres://u:secret@h/db"}, sort_keys=True).encode()
    key = b"k" * 32
    assert variables.fingerprint(key) == hmac.new(key, canonical, hashlib.sha256).hexdigest()
    assert variables.fingerprint(key) != hashlib.sha256(canonical).hexdigest()
    assert variables.fingerprint(key) != variables.fingerprint(b"j" * 32)
