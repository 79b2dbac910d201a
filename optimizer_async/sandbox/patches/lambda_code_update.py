"""UpdateFunctionCode as AWS serves it: Architectures, DryRun, and S3 errors as 400s.

moto 5.2.5 ignores UpdateFunctionCode's `Architectures`; AWS sets the function's
instruction set with its new code (one of `x86_64`, `arm64`; more than one, or another, is a
ValidationException). A `DryRun` only validates the request "without modifying the function
code": no update window, no new RevisionId. Code named in S3 must exist there, on
CreateFunction too: a missing bucket, key or version is AWS's InvalidParameterValueException
"Error occurred while GetObject. S3 Error Code: NoSuchKey. ..." (S3's own code and message),
where moto raised a bare ValueError (a 500) or took an empty package.
https://docs.aws.amazon.com/lambda/latest/api/API_UpdateFunctionCode.html

The request is checked before the update lifecycle and the RevisionId see it (this patch
wraps them, applied after them); the new architecture goes through the update lifecycle
with the code (a Failed update restores both).
"""

from __future__ import annotations

from typing import Any, Final

from moto.awslambda.exceptions import InvalidParameterValueException, LambdaClientError
from moto.awslambda.models import LambdaBackend, LambdaFunction
from moto.s3.exceptions import MissingBucket, MissingKey
from moto.s3.models import s3_backends

from optimizer_async.sandbox.patches._patching import wrap_method

ARCHITECTURES: Final = ("x86_64", "arm64")
NO_SUCH_BUCKET: Final = (
    "Error occurred while GetObject. S3 Error Code: NoSuchBucket. "
    "S3 Error Message: The specified bucket does not exist"
)
NO_SUCH_KEY: Final = (
    "Error occurred while GetObject. S3 Error Code: NoSuchKey. "
    "S3 Error Message: The specified key does not exist."
)
NO_SUCH_VERSION: Final = (
    "Error occurred while GetObject. S3 Error Code: NoSuchVersion. "
    "S3 Error Message: The specified version does not exist."
)


def check_architectures(architectures: Any) -> None:
    """AWS's ValidationException for anything but one known architecture."""
    if architectures is None:
        return
    values = list(architectures) if isinstance(architectures, list) else [architectures]
    shown = "[" + ", ".join(str(value) for value in values) + "]"
    where = f"1 validation error detected: Value '{shown}' at 'architectures' failed to "
    if len(values) > 1:
        raise LambdaClientError(
            "ValidationException",
            where + "satisfy constraint: Member must have length less than or equal to 1",
        )
    if not values or values[0] not in ARCHITECTURES:
        raise LambdaClientError(
            "ValidationException",
            where + "satisfy constraint: Member must satisfy constraint: "
            "[Member must satisfy enum value set: [x86_64, arm64], Member must not be null]",
        )


def check_s3_code(backend: Any, code: Any) -> None:
    """The package `code` names in S3 (`S3Bucket`, `S3Key`, `S3ObjectVersion`) is there."""
    if not isinstance(code, dict) or "S3Bucket" not in code or "S3Key" not in code:
        return
    s3 = s3_backends[backend.account_id][backend.partition]
    bucket, key, version = code["S3Bucket"], code["S3Key"], code.get("S3ObjectVersion")
    try:
        if version is None and s3.get_object(bucket, key) is None:
            raise InvalidParameterValueException(NO_SUCH_KEY)
        if version is not None and s3.get_object(bucket, key, version_id=version) is None:
            known = s3.get_object(bucket, key) is not None or key in s3.get_bucket(bucket).keys
            raise InvalidParameterValueException(NO_SUCH_VERSION if known else NO_SUCH_KEY)
    except MissingBucket:
        raise InvalidParameterValueException(NO_SUCH_BUCKET) from None
    except MissingKey:
        raise InvalidParameterValueException(NO_SUCH_KEY) from None


def apply() -> None:
    @wrap_method(LambdaFunction, "_set_function_code")
    def set_code(original: Any, fn: Any, spec: dict[str, Any]) -> None:
        try:
            original(fn, spec)
        except ValueError as error:  # moto's ValueError(code, message) for a missing S3 key
            if len(error.args) == 2 and error.args[0] == "InvalidParameterValueException":
                raise InvalidParameterValueException(str(error.args[1])) from None
            raise

    @wrap_method(LambdaFunction, "update_function_code")
    def update_code(original: Any, fn: Any, spec: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = original(fn, spec)
        if spec.get("Architectures") and not spec.get("DryRun"):
            fn.architectures = list(spec["Architectures"])
            result["Architectures"] = list(fn.architectures)
        return result

    @wrap_method(LambdaBackend, "create_function")
    def create(original: Any, backend: Any, spec: dict[str, Any]) -> Any:
        check_architectures(spec.get("Architectures"))
        check_s3_code(backend, spec.get("Code"))
        return original(backend, spec)

    @wrap_method(LambdaBackend, "update_function_code")
    def check(original: Any, backend: Any, name: str, qualifier: Any, body: Any) -> Any:
        """Refuse a bad request, and answer a dry run, before any update begins."""
        fn = backend.get_function(name, qualifier)  # ResourceNotFoundException first
        check_architectures(body.get("Architectures"))
        check_s3_code(backend, body)
        if body.get("DryRun"):
            return fn.get_configuration()
        return original(backend, name, qualifier, body)
