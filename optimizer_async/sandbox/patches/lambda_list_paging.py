"""ListFunctions in pages, as AWS answers it.

moto 5.2.5 returns every function in one answer, ignoring `MaxItems` and `Marker`. AWS
returns at most 50 a page (`MaxItems`, 1 to 50) and a `NextMarker` while more remain, so a
client that read the wrong token would see only the first page; the sandbox must page for
such a bug to show. The marker is opaque to clients; here it is the next function's index.
"""

from __future__ import annotations

import json
from typing import Any, Final

from moto.awslambda.responses import LambdaResponse

from optimizer_async.sandbox.patches._patching import wrap_method

PAGE_MAX: Final = 50  # AWS's default and largest ListFunctions page


def apply() -> None:
    @wrap_method(LambdaResponse, "list_functions")
    def list_functions(original: Any, self: LambdaResponse) -> Any:
        answer = json.loads(original(self))
        functions = answer["Functions"]
        query = self.querystring
        size = max(1, min(int(query.get("MaxItems", [PAGE_MAX])[0]), PAGE_MAX))
        marker = query.get("Marker", ["0"])[0]
        start = int(marker) if str(marker).isdigit() else 0
        answer["Functions"] = functions[start : start + size]
        if start + size < len(functions):
            answer["NextMarker"] = str(start + size)
        return json.dumps(answer)
