"""S3's conditional writes are atomic, as S3's are.

moto 5.2.5 answers PutObject with `If-None-Match: *` or `If-Match`, and DeleteObject with
`If-Match`, by checking the condition and then writing, unguarded: two requests on the
sandbox's worker threads can both pass the check, where S3 lets exactly one win and
refuses the other (412). Leases rely on that; this patch makes the check and the write of
every conditional request one step, under one lock.
"""

from __future__ import annotations

import threading
from typing import Any, Final

from moto.s3.responses import S3Response

from optimizer_async.sandbox.patches._patching import wrap_method

_CONDITIONAL: Final = ("If-Match", "If-None-Match")
_LOCK: Final = threading.Lock()


def apply() -> None:
    for name in ("put_object", "delete_object"):

        @wrap_method(S3Response, name)
        def atomic(original: Any, response: Any) -> Any:
            if not any(response.headers.get(header) for header in _CONDITIONAL):
                return original(response)
            with _LOCK:
                return original(response)
