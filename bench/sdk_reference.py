"""The SDK's own CPU per call: aioboto3 alone, making the same kinds of calls as a dry run.

`python -m bench.sdk_reference --suffix S,... --function-base B ... --calls N` makes N calls
against AWS_ENDPOINT_URL, 50 at a time, cycling through a dry run's per-environment reads
(GetFunction, DescribeSecret, GetBucketVersioning, GetQueueUrl, GetRolePolicy), with the
client configuration the optimizer uses. No pacing, no logging, no planning: what is left
of our client's CPU per call once this is taken away is the optimizer's own.

Prints one JSON document: calls, error answers (GetQueueUrl and GetRolePolicy find nothing
at baseline, as in the dry run), the process's CPU seconds (imports included, as they are
in the optimizer's figure).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import resource
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aioboto3
from aiobotocore.config import AioConfig

from optimizer_async.aws.gateway import USER_AGENT
from optimizer_async.naming import EnvironmentNames

_AT_ONCE = 50


def _reads(
    clients: dict[str, Any], account: str, suffix: str, base: str
) -> list[Callable[[], Awaitable[Any]]]:
    names = EnvironmentNames(suffix)
    return [
        lambda: clients["lambda"].get_function(FunctionName=names.function(base)),
        lambda: clients["secretsmanager"].describe_secret(SecretId=names.api_key_secret),
        lambda: clients["s3"].get_bucket_versioning(Bucket=names.bucket(account)),
        lambda: clients["sqs"].get_queue_url(QueueName=names.dead_letter_queue),
        lambda: clients["iam"].get_role_policy(
            RoleName=names.role, PolicyName=names.optimizer_policy
        ),
    ]


async def measure(suffixes: Sequence[str], bases: Sequence[str], calls: int) -> dict[str, Any]:
    config = AioConfig(
        retries={"mode": "standard", "max_attempts": 3},
        max_pool_connections=_AT_ONCE,
        user_agent=USER_AGENT,
    )
    session = aioboto3.Session()
    errors = 0  # at baseline there is no queue and no optimizer policy yet: nor in a dry run
    async with contextlib.AsyncExitStack() as stack:
        clients: dict[str, Any] = {
            service: await stack.enter_async_context(session.client(service, config=config))
            for service in ("lambda", "secretsmanager", "s3", "sqs", "iam", "sts")
        }
        account = str((await clients["sts"].get_caller_identity())["Account"])  # bucket names
        reads = [r for s in suffixes for b in bases for r in _reads(clients, account, s, b)]
        work = itertools.cycle(reads)
        gate = asyncio.Semaphore(_AT_ONCE)

        async def one(read: Callable[[], Awaitable[Any]]) -> None:
            nonlocal errors
            async with gate:
                try:
                    await read()
                except Exception:  # an error answer still costs a whole call
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(one(next(work)) for _ in range(calls)))
        wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "calls": calls,
        "error_answers": errors,
        "wall_s": round(wall, 3),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sdk_reference")
    parser.add_argument("--suffix", required=True)
    parser.add_argument("--function-base", action="append", required=True)
    parser.add_argument("--calls", type=int, required=True)
    args = parser.parse_args(argv)
    result = asyncio.run(measure(args.suffix.split(","), args.function_base, args.calls))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
