"""`python -m optimizer_async.sandbox serve ...`: the sandbox as a standalone AWS endpoint.

`serve` seeds first, straight into this process's moto backends (direct_seeder: the HTTP
Seeder's resources without its HTTP calls), and only then listens on the requested port.
Whatever connects to it sees every seeded resource, so a script may wait for the port (or
for the "sandbox ready" line on stdout) and start at once. Meanwhile the requested port is
bound but not listening: connections are refused until the account is complete, and a busy
port fails at once rather than after seeding.

The process is the sandbox's alone, which lets it tune the interpreter for serving:

- while nothing is shaped (no quotas, latency or faults: the `none` profile), the
  interpreter lock passes between request threads every 50 ms rather than every 5 ms: a
  fleet's client keeps some hundred connections busy, each with its own thread, and at 5 ms
  a call of a few milliseconds was made to give the lock up part way, waking another
  thread for it (a tenth of the sandbox's CPU). A request thread still lets the others run
  whenever it waits on its socket or sleeps. Shaped, the interpreter's own 5 ms stays:
  there a call held back 50 ms behind a long one (a Logs Insights query) met its quota
  bucket in a burst with those held with it, and was throttled where AWS would not have;
- what seeding built is frozen out of the cyclic garbage collector (`gc.freeze`, after one
  collection): a seeded fleet is half a million objects, and each full collection walked
  them all (a quarter of a second, five times in a large dry run). Frozen objects are still
  freed when their last reference goes; only cycles among them wait for a reset (which
  unfreezes them).
"""

from __future__ import annotations

import argparse
import gc
import signal
import socket
import sys
import threading
from collections.abc import Sequence
from typing import Final

from optimizer_async.aws.quotas import BUCKET_NAMES, parse_override
from optimizer_async.definitions.naming import InvalidNameError, parse_suffixes
from optimizer_async.sandbox.config import PROFILES, SandboxConfig
from optimizer_async.sandbox.server import EmbeddedSandbox
from optimizer_async.sandbox.workload.profiles import PROFILE_NAMES, check_mix

_UNSHAPED_SWITCH_S: Final = 0.05
_SHAPED_SWITCH_S: Final = sys.getswitchinterval()  # the interpreter's own (5 ms)


def tune_interpreter(config: SandboxConfig) -> None:
    """The lock's switch interval for this configuration (see the module docstring)."""
    shaped = config.rate_limits or config.latency_median_ms > 0 or config.fault_rate > 0
    sys.setswitchinterval(_SHAPED_SWITCH_S if shaped else _UNSHAPED_SWITCH_S)


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
        sandbox.runtime.on_configure = tune_interpreter
        tune_interpreter(sandbox.config)
        sandbox.reset_stats()  # seeding is set-up, not the traffic under study
        gc.collect()
        gc.freeze()  # the seeded state: long-lived, never walked by the collector again
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
