"""Run the optimizer in-process against the test endpoint (sandbox, or LocalStack if set)."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from optimizer_async import cli
from optimizer_async.aws.gateway import Aws, AwsSettings
from optimizer_async.definitions.targets import Targets
from optimizer_async.execution.engine import Engine, EngineSettings
from optimizer_async.records.state import LocalStateStore
from optimizer_async.sandbox.clock import ManualClock
from optimizer_async.sandbox.seeder import Seeder
from optimizer_async.steps.base import Step
from optimizer_async.steps.registry import REGISTRY
from tests.conftest import EXTERNAL_ENDPOINT, REGION

Optimize = Callable[..., tuple[int, dict[str, Any]]]
Unique = Callable[[str], str]


@pytest.fixture
def unique() -> Unique:
    """`unique("dev")` -> a suffix no other test uses, e.g. `t3f9a1-dev`.

    The embedded sandbox is reset for every test, but LocalStack is not: unique suffixes let
    the same tests run against both. `unique("dev2")` keeps its relation to `unique("dev")`.
    """
    token = f"t{secrets.token_hex(3)}"
    return lambda name: f"{token}-{name}"


@pytest.fixture
def account_id(client: Callable[..., Any]) -> str:
    """The endpoint's account (moto: 123456789012, LocalStack: 000000000000)."""
    return str(client("sts").get_caller_identity()["Account"])


@pytest.fixture
def seed(endpoint_url: str, client: Callable[..., Any]) -> Iterator[Callable[..., list[str]]]:
    """Seed baseline environments; afterwards give back their reserved concurrency.

    The reservations matter on a long-lived endpoint (LocalStack): the account's pool is
    shared, and the optimizer rightly refuses to reserve once it would drop below 100.
    """
    functions: list[str] = []

    def seed(
        *suffixes: str, functions_per_env: int = 1, profiles: tuple[str, ...] = ("steady",)
    ) -> list[str]:
        """Functions with the given workload profiles (in order, cycling); `steady` by
        default: every target is safe for it, so tests of other things see the targets."""
        seeder = Seeder(
            endpoint_url,
            functions_per_env=functions_per_env,
            sandbox_control=not EXTERNAL_ENDPOINT,
            profiles=profiles,
        )
        for environment in seeder.seed(suffixes):
            functions.extend(environment.functions)
        return list(suffixes)

    yield seed
    lam = client("lambda")
    for function in functions:
        lam.delete_function_concurrency(FunctionName=function)


@pytest.fixture
def optimize(
    endpoint_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Optimize:
    """`optimize("--suffix", "dev", ...)` or `optimize("rollback", "--run-id", ID)` ->
    (exit code, JSON report). Every run of a test shares one state directory (unless it
    names a --state-bucket)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint_url)
    monkeypatch.delenv("ENVIRONMENT_SUFFIX", raising=False)

    def optimize(*args: str) -> tuple[int, dict[str, Any]]:
        command: tuple[str, ...] = ()
        if args and args[0] in cli.COMMANDS:
            command, args = args[:1], args[1:]
        capsys.readouterr()
        options = ["--output", "json"]
        if "--state-bucket" not in args:  # records go to one store: the bucket, or this dir
            options += ["--state-dir", str(tmp_path / "state")]
        if command != ("runs",):
            options += ["--log-level", "warning", "--log-file", str(tmp_path / "optimizer.log")]
        code = cli.main([*command, *options, *args])
        out = capsys.readouterr().out
        return code, json.loads(out) if out.strip() else {}

    return optimize


@pytest.fixture
async def aws(endpoint_url: str) -> AsyncIterator[Aws]:
    """The optimizer's own gateway on the test endpoint (credentials from the environment)."""
    async with Aws.open(AwsSettings(region=REGION, endpoint_url=endpoint_url)) as gateway:
        yield gateway


def new_engine(
    aws: Aws, tmp_path: Path, steps: Sequence[Step] = (), *, dry_run: bool = False
) -> Engine:
    """An engine with the default targets over the given steps (else every registered one)."""
    targets = Targets()
    settings = EngineSettings(
        targets=targets,
        steps=tuple(steps) or tuple(REGISTRY),
        function_bases=("lambda-function",),
        concurrency=4,
        dry_run=dry_run,
        store=LocalStateStore(tmp_path / "state"),
        run_id="20261127T000000Z-000000",
    )
    return Engine(aws, settings)


class LinkedClock:
    """The optimizer's clock on a sandbox's virtual time: a sleep moves the sandbox on by
    exactly that long, so waiters and windows meet at exact, countable moments. `utc`: the
    sandbox's model time (`EmbeddedSandbox.model_now`), for metric windows."""

    def __init__(
        self, sandbox_clock: ManualClock, utc: Callable[[], datetime] | None = None
    ) -> None:
        self.sandbox_clock = sandbox_clock
        self._utc = utc

    def utcnow(self) -> datetime:
        return self._utc() if self._utc else datetime.now(UTC)

    def now(self) -> float:
        return self.sandbox_clock.now()

    async def sleep(self, seconds: float) -> None:
        self.sandbox_clock.sleep(seconds)
        await anyio.lowlevel.checkpoint()  # still a checkpoint: other tasks run
