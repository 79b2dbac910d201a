"""`serve`: the optimizer as a service - a reconcile every --interval, run requests over
HTTP, health and metrics (`service/`)."""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Final

from optimizer_async.commands import run
from optimizer_async.commands.base import Command
from optimizer_async.commands.common import PROG, duration_s
from optimizer_async.runs.configs import ServeConfig, ServeSettings, UsageError

if TYPE_CHECKING:
    from optimizer_async.aws.gateway import AwsSettings

_TOKEN_RE: Final = re.compile(r"[\x21-\x7e]{16,4096}")  # printable ASCII, no spaces
_TOKEN_FILE_BYTES: Final = 4096
_LOOPBACK: Final = ("127.0.0.1", "localhost", "::1")


def build_parser() -> argparse.ArgumentParser:
    """A run's options (not its one-off ones), and the service's own."""
    parser = run.build_parser(sandbox=False)
    parser.prog = f"{PROG} serve"
    parser.description = (
        "Run as a service: reconcile every --interval (jittered), take run requests over "
        "HTTP (POST /runs), expose /healthz, /readyz and /metrics. SIGTERM ends it: the "
        "cycle under way stops starting writes, writes its report, gives its leases back."
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    add("--port", type=int, default=8080, help="port to listen on (8080)")
    add("--interval", default="15m", metavar="D", help="between cycles: 30s, 15m, 1h (15m)")
    add(
        "--max-changes-per-cycle",
        type=int,
        metavar="N",
        help="apply at most N changes a cycle (whole environments, in order; the rest wait)",
    )
    add(
        "--token-file",
        type=Path,
        metavar="F",
        help="the API's bearer token (else LAMBDA_OPTIMIZER_API_TOKEN); required to listen "
        "beyond 127.0.0.1",
    )
    return parser


def serve_config(args: argparse.Namespace, environ: Mapping[str, str]) -> ServeConfig:
    interval = duration_s(args.interval)
    if interval is None or not 1 <= interval <= 24 * 3600:
        raise UsageError(f"--interval {args.interval!r} is not a duration from 1s to 24h "
                         "(e.g. 30s, 15m, 1h)")  # fmt: skip
    if not 0 < args.port < 65536:
        raise UsageError(f"--port {args.port} is not a TCP port")
    if args.max_changes_per_cycle is not None and args.max_changes_per_cycle < 1:
        raise UsageError("--max-changes-per-cycle must be at least 1")
    if args.max_changes_per_cycle is not None and args.accounts is not None:
        raise UsageError("--max-changes-per-cycle counts one account and region's changes: "
                         "leave out --accounts")  # fmt: skip
    token = _token(args.token_file, environ)
    if token is None and args.host not in _LOOPBACK:
        raise UsageError(f"--host {args.host} without a token would serve anyone who can "
                         "reach it: set LAMBDA_OPTIMIZER_API_TOKEN or --token-file")  # fmt: skip
    cycle = run.run_config(args, environ)
    settings = ServeSettings(
        host=args.host,
        port=args.port,
        interval_s=float(interval),
        max_changes=args.max_changes_per_cycle,
        token=token,
    )
    return ServeConfig.of(cycle, settings)


def _token(path: Path | None, environ: Mapping[str, str]) -> str | None:
    """The API's bearer token: the file's first line, else the environment's; None: none
    given. At least 16 printable ASCII characters without spaces, whichever it comes from:
    a blank one is refused, never taken as no token."""
    if path is None:
        if "LAMBDA_OPTIMIZER_API_TOKEN" not in environ:
            return None
        # Set but blank is a mistake (an empty secret mounted), not "no token": refused.
        token, where = environ["LAMBDA_OPTIMIZER_API_TOKEN"].strip(), "LAMBDA_OPTIMIZER_API_TOKEN"
    else:
        where = f"--token-file {path}"
        try:
            if not path.is_file():
                raise UsageError(f"{where} is not a file")
            if path.stat().st_size > _TOKEN_FILE_BYTES:
                raise UsageError(f"{where} is larger than {_TOKEN_FILE_BYTES} bytes: not a token")
            lines = path.read_text(encoding="ascii").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise UsageError(
                f"{where}: {getattr(error, 'strerror', None) or 'not ASCII text'}"
            ) from None
        token = lines[0].strip() if lines else ""
    if not _TOKEN_RE.fullmatch(token):
        raise UsageError(
            f"{where}: the token must be at least 16 printable ASCII characters, no spaces"
        )
    return token


def execute(config: ServeConfig) -> int:
    """The service, until a signal stops it (exit 0, its cycle's report written)."""
    from optimizer_async.runs import process
    from optimizer_async.service.serve import serve

    def command(settings: AwsSettings) -> int:
        return serve(config, settings)

    return process.execute(config, command)


COMMAND: Final = Command[ServeConfig](
    name="serve",
    parser=build_parser,
    config=serve_config,
    execute=execute,
)
