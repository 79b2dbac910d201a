"""`python -m optimizer_async.sandbox serve ...`: the sandbox as a standalone AWS endpoint."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

from optimizer_async.naming import InvalidNameError, parse_suffixes
from optimizer_async.sandbox.config import PROFILES, SandboxConfig
from optimizer_async.sandbox.server import ACCESS_KEY_ID, SECRET_ACCESS_KEY, EmbeddedSandbox


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m optimizer_async.sandbox",
        description="An AWS endpoint on this machine: moto plus AWS-faithful patches.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve until interrupted")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=4566)
    serve.add_argument(
        "--seed",
        action="append",
        default=[],
        metavar="SUFFIXES",
        help="comma-separated environment suffixes to create at baseline",
    )
    serve.add_argument("--functions-per-env", type=int, default=1, metavar="N")
    serve.add_argument(
        "--profile",
        choices=PROFILES,
        default="none",
        help="none: no traffic shaping; aws: AWS quotas, latency, slow updates",
    )
    serve.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        metavar="K",
        help="run the clock K times faster: rates x K, delays / K",
    )
    serve.add_argument(
        "--faults",
        type=float,
        default=0.0,
        metavar="RATE",
        help="probability that a call gets an injected fault",
    )
    serve.add_argument("--fault-seed", type=int, default=0, metavar="S")
    serve.add_argument(
        "--update-seconds",
        type=float,
        default=None,
        metavar="S",
        help="how long a function update stays InProgress",
    )
    serve.add_argument("--update-failure-rate", type=float, default=0.0, metavar="P")
    serve.add_argument(
        "--collision-rate",
        type=float,
        default=0.0,
        metavar="P",
        help="probability that a function's first update meets another one",
    )
    serve.add_argument("--iam-propagation-seconds", type=float, default=None, metavar="S")
    return parser  # fmt: skip


def _config(args: argparse.Namespace) -> SandboxConfig:
    overrides: dict[str, object] = {
        "time_scale": args.time_scale,
        "fault_rate": args.faults,
        "fault_seed": args.fault_seed,
        "update_failure_rate": args.update_failure_rate,
        "collision_rate": args.collision_rate,
    }
    if args.update_seconds is not None:
        overrides["update_s"] = args.update_seconds
    if args.iam_propagation_seconds is not None:
        overrides["iam_propagation_s"] = args.iam_propagation_seconds
    return SandboxConfig.for_profile(args.profile, **overrides)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        config = _config(args)
        suffixes = parse_suffixes(args.seed)
        if args.functions_per_env < 1:
            raise ValueError("--functions-per-env must be at least 1")
    except (ValueError, InvalidNameError) as error:
        parser.exit(2, f"error: {error}\n")

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())

    # Seed without shaping (seeding is set-up, not the traffic under study), then shape.
    with EmbeddedSandbox(SandboxConfig(), host=args.host, port=args.port) as sandbox:
        if suffixes:
            from optimizer_async.sandbox.seeder import Seeder

            Seeder(
                sandbox.endpoint_url,
                functions_per_env=args.functions_per_env,
                credentials=(ACCESS_KEY_ID, SECRET_ACCESS_KEY),
            ).seed(suffixes)
        sandbox.configure(config)
        sandbox.reset_stats()
        seeded = ", ".join(suffixes) or "nothing"
        print(
            f"sandbox ready: AWS_ENDPOINT_URL={sandbox.endpoint_url} "
            f"(profile {config.profile}, time scale {config.time_scale:g}, seeded {seeded})",
            flush=True,
        )
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
