"""A command as a process: its log stream, its report (stdout, and `--report-file`), what a
signal stopped, and its exit code - bad input found before any write is exit 2, AWS or the
environment failing is one line and exit 1 (the traceback only at --log-level debug)."""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Final, TextIO, TypeVar, TypeVarTuple, Unpack, cast

import anyio
import structlog

from optimizer_async.aws import errors
from optimizer_async.aws.gateway import AwsSettings, Unavailable
from optimizer_async.execution import signals
from optimizer_async.execution.recorded import RecordError
from optimizer_async.money import realised
from optimizer_async.records import plan_file
from optimizer_async.records.state import StateBucketError, UnreadableRecord, write_atomically
from optimizer_async.reporting import logs
from optimizer_async.reporting.formats import OutputFormat
from optimizer_async.reporting.org_report import OrganisationReport
from optimizer_async.reporting.report import RunReport
from optimizer_async.runs.configs import CommonConfig, RunConfig, UsageError

log = structlog.get_logger("optimizer_async.runner")
T = TypeVar("T")
Ts = TypeVarTuple("Ts")

# Refusals a run makes before its first write: bad input, reported as such (exit 2).
_FOUND_BEFORE_ANY_WRITE: Final = (
    RecordError,
    StateBucketError,
    UnreadableRecord,
    realised.TooSoonError,
    plan_file.PlanFileError,
)


def aws_settings(config: CommonConfig) -> AwsSettings:
    """The gateway's settings for a command's config."""
    shard = config.shard if isinstance(config, RunConfig) else None
    return AwsSettings(
        region=config.region,
        endpoint_url=config.endpoint_url,
        profile=config.profile,
        time_scale=config.time_scale,
        quotas=config.quotas,
        max_connections=max(16, config.concurrency * 2),
        # N shards run side by side on one account's quotas: each paces at 1/N of them.
        quota_share=1.0 / shard.count if shard is not None else 1.0,
    )


def execute(config: CommonConfig, command: Callable[[AwsSettings], int]) -> int:
    """`command`'s exit code, run with the config's logging; its failures mapped to one
    line and an exit code (the module's docstring)."""
    with _log_stream(config.log_file) as stream:
        logs.configure(config.log_format, config.log_level, stream)
        try:
            return command(aws_settings(config))
        except BaseException as raised:
            stopped = signals.stopped_in(raised)  # also from inside a task group
            if stopped is not None:
                raise stopped from None
            if not isinstance(raised, (Exception, BaseExceptionGroup)):
                raise  # SystemExit and the like
            error = _cause(raised)
            if isinstance(error, (UsageError, *_FOUND_BEFORE_ANY_WRITE)):
                raise UsageError(str(error)) from None
            log.debug("run.failed", exc_info=raised)
            text = str(error) if isinstance(error, Unavailable) else errors.describe(error)
            print(f"lambda-optimizer: {text}", file=sys.stderr)
            return 1


def in_event_loop(function: Callable[[Unpack[Ts]], Awaitable[T]], *args: *Ts) -> T:
    """`anyio.run`, and our signal handlers back afterwards (the loop restores the
    defaults when it closes)."""
    try:
        return anyio.run(function, *args)
    finally:
        signals.install()


def emit(
    report: RunReport | OrganisationReport, config: CommonConfig, heading: str | None = None
) -> int:
    """The report on stdout (and in `--report-file`, in the format its name says), a line
    on stderr if a signal stopped it; its exit code."""
    _write(report, config, heading)
    if report.stopped_by is not None:
        name = signal.Signals(report.stopped_by).name
        print(f"lambda-optimizer: interrupted by {name}: the report says what was done and "
              "what was not", file=sys.stderr)  # fmt: skip
    return report.exit_code


def _write(
    report: RunReport | OrganisationReport, config: CommonConfig, heading: str | None
) -> None:
    details = config.details
    if heading and config.output != "json":
        print(f"\n=== {heading} ===")
    if config.report_file is None:
        report.write(config.output, sys.stdout, details=details)
        sys.stdout.flush()
        return
    output = _file_format(config.report_file, config.output)
    try:
        config.report_file.parent.mkdir(parents=True, exist_ok=True)
        stream = config.report_file.open("w")
    except OSError:  # stdout still gets the report
        report.write(config.output, sys.stdout, details=details)
        sys.stdout.flush()
        raise
    with stream:
        if output == config.output:  # one report made once, written to both
            report.write(output, sys.stdout, stream, details=details)
        else:
            report.write(config.output, sys.stdout, details=details)
            report.write(output, stream, details=details)
    sys.stdout.flush()


def emit_text(render: Callable[[OutputFormat], str], config: CommonConfig) -> None:
    """A listing (`runs`, `savings`) on stdout, and in `--report-file` in its format."""
    text = render(config.output)
    sys.stdout.write(text)  # first: a file that cannot be written loses nothing
    sys.stdout.flush()
    if config.report_file is not None:
        output = _file_format(config.report_file, config.output)
        write_atomically(config.report_file, text if output == config.output else render(output))


def _file_format(path: Path, output: OutputFormat) -> OutputFormat:
    """The format a report file's name asks for: .json, .md, else the stdout's."""
    suffix = path.suffix.lower()
    return "json" if suffix == ".json" else "markdown" if suffix == ".md" else output


def _cause(error: BaseException) -> BaseException:
    """The first real error inside task groups' exception groups."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


class _Stderr:
    """stderr as it is at each write, not as it was when logging was configured: the live
    progress display redirects it, so log lines print above the display, not through it."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


@contextlib.contextmanager
def _log_stream(path: Path | None) -> Iterator[TextIO]:
    """The run's log stream; afterwards logging goes back to structlog's defaults, so that
    nothing logs into a closed file once the run is over (callers embedding `main`)."""
    try:
        if path is None:
            yield cast(TextIO, _Stderr())  # write and flush: all that logging uses of it
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as stream:
            yield stream
    finally:
        structlog.reset_defaults()
