"""`--sandbox`: the run against the embedded AWS, seeded first if asked; `--demo`: a dry
run, the run, and a re-run that finds nothing left to do. Imported only once the input is
valid (it loads moto)."""

from __future__ import annotations

from dataclasses import replace
from typing import Final

import structlog

from optimizer_async.aws.gateway import AwsSettings
from optimizer_async.organisations.organisation import run_anywhere
from optimizer_async.runs import process
from optimizer_async.runs.configs import RunConfig
from optimizer_async.runs.orchestration import Controls, Request
from optimizer_async.runs.replays import FreshPlan
from optimizer_async.sandbox.config import SandboxConfig
from optimizer_async.sandbox.seeder import Seeder
from optimizer_async.sandbox.server import ACCESS_KEY_ID, SECRET_ACCESS_KEY, EmbeddedSandbox

log = structlog.get_logger("optimizer_async.runner")

DEMO_PHASES: Final = (
    ("1/3 dry run: what would change, and what it would save", True),
    ("2/3 the run: apply, wait, verify", False),
    ("3/3 re-run: nothing left to do", False),
)


def in_sandbox(config: RunConfig, settings: AwsSettings) -> int:
    """The run (or the demo's three) against a sandbox that lives as long as the command."""
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
        phases = DEMO_PHASES if config.demo else ((None, config.dry_run),)
        exit_code = 0
        for heading, dry_run in phases:
            phase = Request(FreshPlan(replace(config, dry_run=dry_run)))
            report = process.in_event_loop(run_anywhere, phase, settings, Controls(signals=True))
            code = process.emit(report, config, heading)
            if report.stopped_by is not None:
                return code
            exit_code = max(exit_code, code)
        return exit_code
