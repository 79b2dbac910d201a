"""The SDK's own CPU per call: aioboto3 alone, replaying the very calls a dry run made.

`AWS_ENDPOINT_URL=... python -m bench.sdk_reference --replay FILE` takes the calls
`bench.record_calls` kept (operation and parameters, in order) and makes each again, 64 at a
time, with the gateway's own clients (its botocore session and client configuration), but
no pacing, no counting, no logging, no planning. A dry run changes nothing, so the answers
are the ones the dry run read, and what is left of its CPU once this is taken away is the
optimizer's own.

Prints one JSON document: calls, error answers (a dry run reads some things that do not
exist yet), the process's CPU seconds (imports included, as they are in the optimizer's).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from botocore import xform_name

from bench import record_calls
from optimizer_async.aws.gateway import Aws, AwsSettings

_AT_ONCE = 64  # the optimizer's connections per client (AwsSettings.max_connections)


async def measure(calls: Sequence[record_calls.Call], endpoint_url: str) -> dict[str, Any]:
    errors = 0
    regions = Counter(region for _, region, _, _ in calls)
    settings = AwsSettings(
        region=regions.most_common(1)[0][0] if regions else "us-east-1",
        endpoint_url=endpoint_url,
        max_connections=_AT_ONCE,
    )
    async with Aws.open(settings) as aws:
        methods: dict[tuple[str, str], Any] = {}
        for service, _, operation, _ in calls:
            if (service, operation) not in methods:
                client = await aws._client(service)  # made as the gateway makes it
                methods[service, operation] = getattr(client, xform_name(operation))
        gate = asyncio.Semaphore(_AT_ONCE)

        async def one(service: str, operation: str, params: dict[str, Any]) -> None:
            nonlocal errors
            async with gate:
                try:
                    await methods[service, operation](**params)
                except Exception:  # an error answer still costs a whole call
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(one(s, o, p) for s, _, o, p in calls))
        wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "calls": len(calls),
        "error_answers": errors,
        "wall_s": round(wall, 3),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sdk_reference")
    parser.add_argument("--replay", type=Path, required=True, help="a bench.record_calls file")
    args = parser.parse_args(argv)
    endpoint_url = os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint_url:  # a benchmark of the sandbox, never of an account
        parser.error("AWS_ENDPOINT_URL must name the sandbox")
    result = asyncio.run(measure(record_calls.read(args.replay), endpoint_url))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
