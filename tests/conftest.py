"""Shared fixtures: one embedded sandbox per test session, or LocalStack via AWS_ENDPOINT_URL.

Every AWS client the tests make points at 127.0.0.1 (or the given endpoint) with dummy
credentials, so no test can reach real AWS.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from optimizer_async.sandbox.clock import SystemClock
from optimizer_async.sandbox.config import SandboxConfig
from optimizer_async.sandbox.server import ACCESS_KEY_ID, SECRET_ACCESS_KEY, EmbeddedSandbox
from tests import conformance

REGION = "us-east-1"
EXTERNAL_ENDPOINT = os.environ.get("AWS_ENDPOINT_URL")

if not EXTERNAL_ENDPOINT:
    os.environ.pop("AWS_PROFILE", None)
    os.environ["AWS_ACCESS_KEY_ID"] = ACCESS_KEY_ID
    os.environ["AWS_SECRET_ACCESS_KEY"] = SECRET_ACCESS_KEY
    os.environ.pop("AWS_SESSION_TOKEN", None)
os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

ClientFactory = Callable[..., Any]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Against an external endpoint (LocalStack), skip - never silently: `-rs` lists each
    with its reason - the tests that need the sandbox's own controls, and those relying on
    an AWS behaviour the endpoint lacks (tests/conformance.py)."""
    if not EXTERNAL_ENDPOINT:
        return
    for item in items:
        sandbox_only = item.get_closest_marker("sandbox_only")
        if sandbox_only is not None:
            why = sandbox_only.args[0] if sandbox_only.args else "its controls"
            item.add_marker(pytest.mark.skip(reason=f"{conformance.SANDBOX_CONTROLS}: {why}"))
            continue
        keys = tuple(key for mark in item.iter_markers("aws_behaviour") for key in mark.args)
        reason = conformance.skip_reason(keys) if keys else None
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def embedded_sandbox() -> Iterator[EmbeddedSandbox]:
    """The in-process sandbox (only for tests that need its controls; see `sandbox`)."""
    with EmbeddedSandbox(SandboxConfig()) as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(embedded_sandbox: EmbeddedSandbox) -> Iterator[EmbeddedSandbox]:
    """A clean sandbox for one test: no resources, no counts, default behaviour, real time.

    A test that installed another clock never leaves it behind for the next one.
    """
    embedded_sandbox.reset()
    embedded_sandbox.configure(SandboxConfig())
    embedded_sandbox.set_clock(SystemClock())
    yield embedded_sandbox
    embedded_sandbox.configure(SandboxConfig())
    embedded_sandbox.set_clock(SystemClock())


@pytest.fixture
def endpoint_url(request: pytest.FixtureRequest) -> str:
    """LocalStack's endpoint when AWS_ENDPOINT_URL is set, else a clean embedded sandbox."""
    if EXTERNAL_ENDPOINT:
        return EXTERNAL_ENDPOINT
    sandbox: EmbeddedSandbox = request.getfixturevalue("sandbox")
    return sandbox.endpoint_url


def make_client(endpoint: str, service: str, *, attempts: int = 3, **config: Any) -> Any:
    retries = {"mode": "standard", "total_max_attempts": attempts}
    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        config=Config(retries=retries, **config),  # type: ignore[arg-type]
    )


@pytest.fixture
def client(endpoint_url: str) -> ClientFactory:
    """`client("lambda")`: a boto3 client on the test endpoint."""

    def factory(service: str, **kwargs: Any) -> Any:
        return make_client(endpoint_url, service, **kwargs)

    return factory
