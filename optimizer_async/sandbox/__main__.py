"""`python -m optimizer_async.sandbox serve ...`: the sandbox as a standalone AWS endpoint.

`serve` seeds first, straight into this process's moto backends (direct_seeder: the HTTP
Seeder's resources without its HTTP calls), and only then listens on the requested port.
Whatever connects to it sees every seeded resource, so a script may wait for the port (or
for the "sandbox ready" line on stdout) and start at once. Meanwhile the requested port is
bound but not listening: connections are refused until the account is complete, and a busy
port fails at once rather than after seeding.
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys
import threading
from collections.abc import Sequence

from optimizer_async.aws.quotas import BUCKET_NAMES, parse_override
from optimizer_async.naming import InvalidNameError, parse_suffixes
from optimizer_async.sandbox.config import PROFILES, SandboxConfig
from optimizer_async.sandbox.server import EmbeddedSandbox
from optimizer_async.sandbox.workload.profiles import PROFILE_NAMES, check_mix


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m optimizer_async.sandbox",
        description="An AWS endpoint on this machine: moto plus AWS-faithful patches.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="serve until interrupted",
        description="Serve an AWS endpoint until interrupted. Seeding (--seed) finishes before "
        "the port opens: anything that can connect sees the whole seeded account. "
        'Prints "sandbox ready: AWS_ENDPOINT_URL=..." once listening.',
    )
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
        "--profile-mix",
        action="append",
        default=[],
        metavar="PROFILES",
        help="comma-separated workload profiles, given to the seeded functions in order "
        "(environments as given, functions in order within each), cycling: "
        f"{', '.join(PROFILE_NAMES)} (default: default)",
    )
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
    serve.add_argument(
        "--quota",
        action="append",
        default=[],
        metavar="BUCKET=RATE",
        help="an account's raised quota, requests per second (repeatable), as the "
        f"optimizer's --quota: {', '.join(BUCKET_NAMES)}",
    )
    return parser  # fmt: skip


def _config(args: argparse.Namespace) -> SandboxConfig:
    overrides: dict[str, object] = {
        "time_scale": args.time_scale,
        "fault_rate": args.faults,
        "fault_seed": args.fault_seed,
        "update_failure_rate": args.update_failure_rate,
        "collision_rate": args.collision_rate,
        "quotas": tuple(parse_override(text) for text in args.quota),
    }
    if args.update_seconds is not None:
        overrides["update_s"] = args.update_seconds
    if args.iam_propagation_seconds is not None:
        overrides["iam_propagation_s"] = args.iam_propagation_seconds
    return SandboxConfig.for_profile(args.profile, **overrides)


def _reserve(host: str, port: int) -> socket.socket:
    """Bind the public port without listening: fails now if it is busy, refuses connections."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _seed(suffixes: Sequence[str], functions_per_env: int, profiles: Sequence[str]) -> None:
    """Create the environments in this process's backends, before the port opens."""
    EmbeddedSandbox(SandboxConfig()).seed(
        suffixes, functions_per_env=functions_per_env, profiles=profiles
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        config = _config(args)
        suffixes = parse_suffixes(args.seed)
        profiles = check_mix(args.profile_mix)
        if args.functions_per_env < 1:
            raise ValueError("--functions-per-env must be at least 1")
    except (ValueError, InvalidNameError) as error:
        parser.exit(2, f"error: {error}\n")

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())

    try:
        reservation = _reserve(args.host, args.port)
    except OSError as error:
        parser.exit(1, f"error: cannot listen on {args.host}:{args.port}: {error}\n")
    with reservation:
        if suffixes:
            _seed(suffixes, args.functions_per_env, profiles)
    if stop.is_set():  # interrupted while seeding
        return 0
    with EmbeddedSandbox(config, host=args.host, port=args.port) as sandbox:
        sandbox.reset_stats()  # seeding is set-up, not the traffic under study
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
