"""The embedded AWS: moto's server, patched and shaped, on 127.0.0.1 in a background thread."""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

from moto.moto_api._internal.models import moto_api_backend
from werkzeug.serving import BaseWSGIServer, make_server

from optimizer_async.sandbox import dispatch, patches, runtime
from optimizer_async.sandbox.accounts import DEFAULT_ACCOUNT
from optimizer_async.sandbox.clock import Clock
from optimizer_async.sandbox.config import SandboxConfig
from optimizer_async.sandbox.direct_seeder import DirectSeeder
from optimizer_async.sandbox.patches import iam_authorization, sts_assume_role, workload_lambda
from optimizer_async.sandbox.request_handler import QuietRequestHandler, close_connections
from optimizer_async.sandbox.seeder import SeededEnvironment
from optimizer_async.sandbox.shaping import ShapingApp
from optimizer_async.sandbox.workload.model import Outcome
from optimizer_async.sandbox.workload.profiles import DEFAULT_PROFILE

AnyClock = TypeVar("AnyClock", bound=Clock)

# Credentials the sandbox accepts; moto ignores their value, boto3 insists on having some
# (except while it enforces IAM: then only keys of IAM users it holds are accepted).
ACCESS_KEY_ID = "sandbox"
SECRET_ACCESS_KEY = "sandbox"  # noqa: S105 - not a secret: the sandbox accepts anything


class EmbeddedSandbox:
    """Start with `with EmbeddedSandbox(config) as sandbox:`; point clients at `endpoint_url`.

    moto's state, and the runtime with its configuration and clock, are process-wide: every
    sandbox in a process serves the same accounts (`serve` seeds through one, then answers
    on another), so run one at a time. Tests put it on virtual time with `use_clock`.

    Accounts: the sandbox's own credentials act in the default account (123456789012);
    `add_account` stands up an organisation member whose role STS AssumeRole hands out
    credentials for, and those act in the member account (its own resources, quotas,
    workload model and counts).
    """

    def __init__(
        self, config: SandboxConfig | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self._initial_config = config or SandboxConfig()
        self._host = host
        self._port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.runtime = runtime.install(self._initial_config)

    @property
    def endpoint_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the sandbox is not running")
        return f"http://{self._server.host}:{self._server.port}"

    @property
    def config(self) -> SandboxConfig:
        return self.runtime.config

    def start(self) -> str:
        handlers = patches.apply_all()
        dispatch.speed_up_moto()
        app = ShapingApp(
            dispatch.CachingDispatcher(),
            self.runtime,
            handlers,
            reset=self.reset,
            attach_workload=workload_lambda.attach,
            add_account=sts_assume_role.add_member_role,
            authorize=iam_authorization.authorize_call,
        )
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = make_server(
            self._host, self._port, app, threaded=True, request_handler=QuietRequestHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="aws-sandbox", daemon=True
        )
        self._thread.start()
        return self.endpoint_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            close_connections(self._server)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> EmbeddedSandbox:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- in-process equivalents of the /_sandbox control endpoints -------------------------

    def seed(
        self,
        suffixes: Iterable[str],
        *,
        functions_per_env: int = 1,
        profiles: Sequence[str] = (DEFAULT_PROFILE,),
        region: str = "us-east-1",
        account: str = DEFAULT_ACCOUNT,
    ) -> list[SeededEnvironment]:
        """Create environments at baseline as the HTTP Seeder does, but in this process's
        backends, some 20 times faster (see direct_seeder). Works before `start` too."""
        patches.apply_all()
        seeder = DirectSeeder(
            region, functions_per_env=functions_per_env, profiles=profiles, account_id=account
        )
        return seeder.seed(suffixes)

    def stats(self, account: str | None = None) -> dict[str, Any]:
        """The call counts (`GET /_sandbox/stats`); given an account, that account's only."""
        return self.runtime.stats.snapshot(account)

    def reset_stats(self) -> None:
        self.runtime.stats.reset()

    def reset(self) -> None:
        """Forget every AWS resource and count (moto's reset plus ours, the model included)."""
        moto_api_backend.reset()
        gc.unfreeze()  # what `serve` froze after seeding may be garbage now
        self.runtime.accounts.clear()  # every access key is gone with moto's state
        self.runtime.stats.reset()
        self.runtime.stored_bytes.clear()
        self.runtime.forget_workload()

    def add_account(
        self,
        account: str,
        role_name: str,
        trusted_account: str = DEFAULT_ACCOUNT,
        external_id: str | None = None,
    ) -> str:
        """Stand up an organisation member (`POST /_sandbox/accounts`): `role_name` in
        `account`'s IAM, assumable by `trusted_account` (with `external_id` if given); its
        ARN. Calling it again re-trusts the role. Works before `start` too."""
        return sts_assume_role.add_member_role(account, role_name, trusted_account, external_id)

    def attach_workload(
        self, region: str, function_name: str, profile: str, account: str = DEFAULT_ACCOUNT
    ) -> None:
        """Give an existing function a named workload profile (`PUT /_sandbox/workload`)."""
        workload_lambda.attach(account, region, function_name, profile)

    def workload_outcomes(
        self, region: str, start: datetime, end: datetime, account: str = DEFAULT_ACCOUNT
    ) -> dict[str, Outcome]:
        """What [start, end) does to each modelled function (`GET .../workload/outcomes`)."""
        return self.runtime.workload.outcomes(account, region, start, end)

    def model_now(self) -> datetime:
        """The workload model's current UTC time (`GET /_sandbox/workload/now`)."""
        return self.runtime.model_time()

    def configure(self, config: SandboxConfig) -> None:
        self.runtime.configure(config)

    def set_clock(self, clock: Clock) -> None:
        """Run every quota, window and delay of the sandbox on `clock` from now on."""
        self.runtime.set_clock(clock)

    @contextlib.contextmanager
    def use_clock(self, clock: AnyClock) -> Iterator[AnyClock]:
        """Run a block on `clock` (say a ManualClock), then restore the previous clock."""
        previous = self.runtime.clock
        self.runtime.set_clock(clock)
        try:
            yield clock
        finally:
            self.runtime.set_clock(previous)

    @contextlib.contextmanager
    def enforcing_iam(self) -> Iterator[SandboxConfig]:
        """Authorise every request of a block against its signer's IAM policies.

        Seed and create users before: inside, the sandbox's own credentials are refused
        like any unknown key. Afterwards any credentials are accepted again.
        """
        with self.configured(iam_enforcement=True) as config:
            yield config

    @contextlib.contextmanager
    def configured(self, **changes: Any) -> Iterator[SandboxConfig]:
        """Run a block with some settings changed, then restore the previous configuration.

        The clock is not a setting: it stays as it is (see `use_clock`).
        """
        previous = self.runtime.config
        self.runtime.configure(previous.replace(**changes))
        try:
            yield self.runtime.config
        finally:
            self.runtime.configure(previous)
