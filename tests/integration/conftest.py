"""Run the optimizer in-process against the test endpoint (sandbox, or LocalStack if set)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from optimizer_async import cli
from optimizer_async.sandbox.seeder import Seeder
from tests.conftest import EXTERNAL_ENDPOINT

Optimize = Callable[..., tuple[int, dict[str, Any]]]


@pytest.fixture
def seed(endpoint_url: str) -> Callable[..., list[str]]:
    def seed(*suffixes: str, functions_per_env: int = 1) -> list[str]:
        seeder = Seeder(
            endpoint_url,
            functions_per_env=functions_per_env,
            sandbox_control=not EXTERNAL_ENDPOINT,
        )
        seeder.seed(suffixes)
        return list(suffixes)

    return seed


@pytest.fixture
def optimize(
    endpoint_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Optimize:
    """`optimize("--suffix", "dev", ...)` -> (exit code, JSON report)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint_url)
    monkeypatch.delenv("ENVIRONMENT_SUFFIX", raising=False)

    def optimize(*args: str) -> tuple[int, dict[str, Any]]:
        capsys.readouterr()
        code = cli.main(
            [
                "--output", "json",
                "--log-level", "warning",
                "--log-file", str(tmp_path / "optimizer.log"),
                "--state-dir", str(tmp_path / "state"),
                *args,
            ]
        )  # fmt: skip
        return code, json.loads(capsys.readouterr().out)

    return optimize
