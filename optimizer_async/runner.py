"""RunConfig -> report(s) -> exit code: sets up logging, the sandbox if asked, AWS, the engine."""

from __future__ import annotations

import contextlib
import secrets
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import anyio
import structlog

from optimizer_async import logs
from optimizer_async.aws.gateway import Aws, AwsSettings
from optimizer_async.config import OutputFormat, RunConfig
from optimizer_async.engine import Engine, EngineSettings
from optimizer_async.report import RunReport, render
from optimizer_async.steps.registry import REGISTRY

log = structlog.get_logger("optimizer_async.runner")


def new_run_id() -> str:
    """Sortable and unique: UTC time to the second, then random hex."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


async def run_once(config: RunConfig, aws_settings: AwsSettings) -> RunReport:
    """One discover-plan-(apply-verify) pass over the configured environments."""
    run_id = new_run_id()
    started_at, started = datetime.now(UTC), time.monotonic()
    steps = REGISTRY.select(config.only, config.skip)
    with structlog.contextvars.bound_contextvars(run_id=run_id):
        log.info(
            "run.started",
            suffixes=list(config.suffixes),
            dry_run=config.dry_run,
            steps=[step.name for step in steps],
        )
        async with Aws.open(aws_settings) as aws:
            engine = Engine(
                aws,
                EngineSettings(
                    targets=config.targets,
                    steps=steps,
                    function_bases=config.function_bases,
                    concurrency=config.concurrency,
                    dry_run=config.dry_run,
                    before_images_dir=config.state_dir / "runs" / run_id / "before-images",
                ),
            )
            fleet = await engine.run(config.suffixes)
        report = RunReport(
            run_id=run_id,
            dry_run=config.dry_run,
            region=config.region,
            started_at=started_at,
            elapsed_s=time.monotonic() - started,
            environments=fleet.environments,
            api_calls=aws.counter.snapshot(),
            steps=tuple(step.name for step in steps),
            selected=bool(config.only or config.skip),
        )
        log.info(
            "run.finished",
            status=report.status,
            elapsed_ms=round(report.elapsed_s * 1000, 1),
            aws_calls=report.api_calls["total"],
        )
    return report


def _emit(report: RunReport, config: RunConfig, heading: str | None = None) -> None:
    if heading and config.output != "json":
        print(f"\n=== {heading} ===")
    sys.stdout.write(render(report, config.output))
    sys.stdout.flush()
    if config.report_file is not None:
        suffix = config.report_file.suffix.lower()
        output: OutputFormat = (
            "json" if suffix == ".json" else "markdown" if suffix == ".md" else config.output
        )
        config.report_file.parent.mkdir(parents=True, exist_ok=True)
        config.report_file.write_text(render(report, output))


@contextlib.contextmanager
def _log_stream(path: Path | None) -> Iterator[TextIO]:
    """The run's log stream; afterwards logging goes back to structlog's defaults, so that
    nothing logs into a closed file once the run is over (callers embedding `main`)."""
    try:
        if path is None:
            yield sys.stderr
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as stream:
            yield stream
    finally:
        structlog.reset_defaults()


def run(config: RunConfig) -> int:
    with _log_stream(config.log_file) as stream:
        logs.configure(config.log_format, config.log_level, stream)
        settings = AwsSettings(
            region=config.region,
            endpoint_url=config.endpoint_url,
            profile=config.profile,
            time_scale=config.time_scale,
            max_connections=max(16, config.concurrency * 2),
        )
        if config.sandbox is None:
            report = anyio.run(run_once, config, settings)
            _emit(report, config)
            return report.exit_code
        return _run_in_sandbox(config, settings)


def _run_in_sandbox(config: RunConfig, settings: AwsSettings) -> int:
    from optimizer_async.sandbox.config import SandboxConfig
    from optimizer_async.sandbox.seeder import Seeder
    from optimizer_async.sandbox.server import ACCESS_KEY_ID, SECRET_ACCESS_KEY, EmbeddedSandbox

    request = config.sandbox
    assert request is not None
    credentials = (ACCESS_KEY_ID, SECRET_ACCESS_KEY)
    with EmbeddedSandbox(SandboxConfig()) as sandbox:
        if request.seed:
            Seeder(
                sandbox.endpoint_url,
                config.region,
                functions_per_env=request.functions_per_env,
                credentials=credentials,
                profiles=request.profile_mix,
            ).seed(request.seed)
            log.info("sandbox.seeded", suffixes=list(request.seed))
        sandbox.configure(SandboxConfig.for_profile(request.profile, time_scale=config.time_scale))
        sandbox.reset_stats()
        settings = replace(settings, endpoint_url=sandbox.endpoint_url, credentials=credentials)
        if not config.demo:
            report = anyio.run(run_once, config, settings)
            _emit(report, config)
            return report.exit_code
        phases = (
            ("1/3 dry run: what would change, and what it would save", True),
            ("2/3 the run: apply, wait, verify", False),
            ("3/3 re-run: nothing left to do", False),
        )
        exit_code = 0
        for heading, dry_run in phases:
            report = anyio.run(run_once, replace(config, dry_run=dry_run), settings)
            _emit(report, config, heading)
            exit_code = max(exit_code, report.exit_code)
        return exit_code
