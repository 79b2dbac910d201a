"""Functions carry a RevisionId, and an update naming a stale one is refused with 412.

AWS changes a function's RevisionId on every configuration or code update, and
UpdateFunctionConfiguration(RevisionId=...) fails with PreconditionFailedException when the
function changed since it was read: the optimistic lock that keeps a read-merge-write of
environment variables from overwriting someone else's change. moto 5.2.5 has neither.
"""

from __future__ import annotations

import uuid
from typing import Any, Final

from moto.awslambda.exceptions import PreconditionFailedException
from moto.awslambda.models import LambdaBackend, LambdaFunction

from optimizer_async.sandbox.patches._patching import wrap_method

STALE_MESSAGE: Final = (
    "The Revision Id provided does not match the latest Revision Id. "
    "Call the GetFunction/GetAlias API to retrieve the latest Revision Id"
)


class StaleRevision(PreconditionFailedException):
    def __init__(self) -> None:
        super().__init__(STALE_MESSAGE)
        self.code = 412


def _new_revision(fn: Any) -> None:
    fn.sandbox_revision_id = str(uuid.uuid4())


def apply() -> None:
    @wrap_method(LambdaFunction, "__init__")
    def init(original: Any, fn: Any, *args: Any, **kwargs: Any) -> None:
        original(fn, *args, **kwargs)
        _new_revision(fn)

    @wrap_method(LambdaFunction, "get_configuration")
    def configuration(original: Any, fn: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        config: dict[str, Any] = original(fn, *args, **kwargs)
        config["RevisionId"] = fn.sandbox_revision_id
        return config

    def guarded(original: Any, backend: Any, name: str, qualifier: Any, body: Any) -> Any:
        fn = backend.get_function(name, qualifier)
        expected = body.get("RevisionId")
        previous = fn.sandbox_revision_id
        if expected and expected != previous:
            raise StaleRevision()
        _new_revision(fn)  # before the update, so its answer carries the new revision
        try:
            return original(backend, name, qualifier, body)
        except Exception:
            fn.sandbox_revision_id = previous  # a refused update changes nothing
            raise

    # moto's responses pass `body` by keyword: a wrapper must take it by name (with `*args`
    # only, every UpdateFunctionCode answered 500).
    @wrap_method(LambdaBackend, "update_function_configuration")
    def update_configuration(
        original: Any, backend: Any, name: str, qualifier: Any, body: Any
    ) -> Any:
        return guarded(original, backend, name, qualifier, body)

    @wrap_method(LambdaBackend, "update_function_code")
    def update_code(original: Any, backend: Any, name: str, qualifier: Any, body: Any) -> Any:
        return guarded(original, backend, name, qualifier, body)
