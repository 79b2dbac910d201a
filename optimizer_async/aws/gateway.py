"""The one gateway to AWS: an aioboto3 client per service, paced per quota bucket, counted.

Steps and parts call AWS through typed service views (`aws.lambda_.get_function(...)`):
to mypy each view is the service's aiobotocore client from the `types-aiobotocore` stubs,
so a misspelt operation or parameter fails `make lint`; at run time it routes every
method to `Aws.call`, which
- waits for its quota bucket's rate limiter (one per account, region and bucket, at the
  rates in `quotas.py`), so a run stays under AWS's API quotas instead of provoking throttles;
- lets botocore retry transient errors and throttles (standard mode where AWS publishes
  quotas and we pace ourselves; adaptive mode for IAM, SQS, S3, STS, which publish none);
- counts the call by service, operation and outcome for the report;
- logs one debug event with the operation, attempts and duration (built only when debug
  logging is on: the check is made once per gateway, not per call).

It is also what keeps a large fleet cheap: one client per service (and region) for the
whole run; at most `2 x max_connections` calls of a service inside the SDK at once (the
rest wait before botocore builds and signs their requests, which would otherwise sit in
memory by thousands waiting for a pooled connection; per service, like the connection pools,
so one service's retries never hold up another's calls); one User-Agent for every request
instead of one rebuilt per request.
"""

from __future__ import annotations

import functools
import logging
import os
import platform
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, ParamSpec, TypeVar, cast

import aioboto3
import aiobotocore
import anyio
import botocore
import structlog
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession
from aiolimiter import AsyncLimiter
from botocore import xform_name

from optimizer_async.aws import assumed_role, errors, quotas
from optimizer_async.aws.clock import Clock, EventLoopClock
from optimizer_async.aws.lean_models import LeanLoader
from optimizer_async.aws.operations import is_write

if TYPE_CHECKING:
    from types_aiobotocore_cloudwatch import CloudWatchClient
    from types_aiobotocore_iam import IAMClient
    from types_aiobotocore_lambda import LambdaClient
    from types_aiobotocore_logs import CloudWatchLogsClient
    from types_aiobotocore_pricing import PricingClient
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_secretsmanager import SecretsManagerClient
    from types_aiobotocore_sqs import SQSClient
    from types_aiobotocore_sts import STSClient

P = ParamSpec("P")
R = TypeVar("R")

log = structlog.get_logger("optimizer_async.aws")

_ADAPTIVE_SERVICES: Final = frozenset({"iam", "sqs", "s3", "sts", "pricing"})
_PREFLIGHT_ATTEMPTS: Final = 3  # only for throttles and server errors, never connections
# Services whose endpoint is in one region whatever the run's.
_SERVICE_REGIONS: Final = {"pricing": "us-east-1"}
_MODELS: Final = Path(__file__).parent / "models"  # botocore data merged into its own
# Pace at 95 % of a quota: our clock and AWS's never agree exactly, and a request's arrival
# jitters; AWS's buckets hold a burst, so 5 % is enough (the bench counts the throttles).
QUOTA_HEADROOM: Final = 0.95
_BURST_S: Final = 0.25  # of a second's calls the limiter releases at once (see _paced)
# A paced call still throttled after botocore's retries: rounds more, pausing 1, 2, 3 s.
_THROTTLED_ROUNDS: Final = 3
_THROTTLED_PAUSE_S: Final = 1.0
# Sent as is: botocore would otherwise rebuild its User-Agent for every request (a tenth of
# a call's CPU) only to add telemetry of the SDK features each call used.
USER_AGENT: Final = (
    f"lambda-optimizer aiobotocore/{aiobotocore.__version__} botocore/{botocore.__version__} "
    f"Python/{platform.python_version()} {platform.system()}/{platform.release()}"
)


@dataclass(frozen=True)
class AwsSettings:
    region: str
    endpoint_url: str | None = None
    profile: str | None = None
    credentials: tuple[str, str] | None = None  # else the standard credential chain
    time_scale: float = 1.0  # > 1 only against a sandbox whose clock runs faster
    quotas: tuple[tuple[str, float], ...] = ()  # (bucket, rate): an account's raised quotas
    max_connections: int = 64
    max_attempts: int = 8
    # The part of every quota this process may use: 1/N for one of N shards side by side.
    quota_share: float = 1.0
    # --accounts: act as this role of another account (the credentials above assume it).
    role: assumed_role.RoleToAssume | None = None


class Unavailable(Exception):
    """AWS cannot be used as configured (credentials, profile, region, endpoint): what to do."""


def unavailable(error: BaseException, settings: AwsSettings) -> str:
    """One line for the user, by the error's kind (botocore's class names, no import)."""
    kind = type(error).__name__
    where = settings.endpoint_url or f"AWS in {settings.region}"
    if isinstance(error, assumed_role.RoleRefused):
        return str(error)
    if kind == "NoCredentialsError":
        return ("no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or run where a role provides them")  # fmt: skip
    if kind == "ProfileNotFound":
        return f"AWS profile {settings.profile!r} is not configured (see ~/.aws/config)"
    if kind in ("EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError"):
        hint = (
            "is the endpoint running?"
            if settings.endpoint_url
            else f"is {settings.region!r} a region this account can use?"
        )
        return f"cannot reach {where}: {hint}"
    if kind == "ReadTimeoutError":
        return f"{where} took too long to answer: try again, or check the network"
    code = errors.error_code(error)
    if code is None:  # not an AWS error answer: a page, garbage
        return f"{where} did not answer like AWS ({kind}): check AWS_ENDPOINT_URL"
    refused = ("InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredToken",
               "UnrecognizedClientException")  # fmt: skip
    if code in refused:
        return f"the AWS credentials were refused ({code}): renew them or pick another profile"
    return f"cannot use {where}: {errors.describe(error)}"


class CallCounter:
    """Calls by (service, operation, outcome); `attempts` includes botocore's retries."""

    def __init__(self) -> None:
        self.calls: Counter[tuple[str, str, str]] = Counter()
        self.attempts: Counter[tuple[str, str]] = Counter()

    def record(self, service: str, operation: str, outcome: str, attempts: int) -> None:
        self.calls[(service, operation, outcome)] += 1
        self.attempts[(service, operation)] += attempts

    def mark(self) -> tuple[Counter[tuple[str, str, str]], Counter[tuple[str, str]]]:
        """The counts so far, for a later `snapshot(since=...)` of one run among several."""
        return Counter(self.calls), Counter(self.attempts)

    def snapshot(
        self, since: tuple[Counter[tuple[str, str, str]], Counter[tuple[str, str]]] | None = None
    ) -> dict[str, Any]:
        calls, attempts = self.calls, self.attempts
        if since is not None:
            calls, attempts = calls - since[0], attempts - since[1]
        by_operation: dict[str, dict[str, int]] = {}
        for (service, operation, _), count in sorted(calls.items()):
            ops = by_operation.setdefault(service, {})
            ops[operation] = ops.get(operation, 0) + count
        return {
            "total": sum(calls.values()),
            "writes": sum(n for (_, op, _), n in calls.items() if is_write(op)),
            "attempts": sum(attempts.values()),
            "by_operation": by_operation,
            "failed": {
                f"{service}.{operation}:{outcome}": count
                for (service, operation, outcome), count in sorted(calls.items())
                if outcome != "ok"
            },
        }


def _paced(rate: float) -> AsyncLimiter:
    """`rate` calls a second, released at most `_BURST_S` of a second's worth at once (and at
    least one call: below 4/s one call per 1/rate seconds).

    AWS's bucket holds a second's worth. Requests released in step can arrive bunched (a
    busy client or network holds the early ones back): a limiter that also bursts a whole
    second's worth leaves AWS's bucket empty after its first burst, and the first bunched
    arrival is throttled. A quarter-second burst leaves the rest of AWS's bucket to absorb
    that jitter, for a quarter of a second's calls less at the start."""
    burst = max(1.0, rate * _BURST_S)
    return AsyncLimiter(burst, burst / rate)


def _botocore_session() -> AioSession:
    """A botocore session that also reads `models/`: CloudWatch over AWS JSON 1.0.

    AWS serves CloudWatch in JSON 1.0 as well as query, and newer botocore speaks JSON; the
    pinned one still speaks query, whose form bodies are URL-encoded twice per call (to sign
    and to send) and whose XML answers with ISO timestamps cost the client more CPU than
    any other part of a large dry run. `models/` merges JSON into botocore's own CloudWatch
    model (an `sdk-extras` file, botocore's documented way to extend a model); a data path
    the user set (`AWS_DATA_PATH`) is searched after it. Its loader trims what a run never
    reads (`lean_models`).
    """
    session = AioSession()
    theirs = session.get_config_variable("data_path") or ""
    paths = [str(_MODELS), *(os.path.expanduser(p) for p in theirs.split(os.pathsep) if p)]
    session.register_component("data_loader", _loader(tuple(paths)))
    return session


@functools.cache
def _loader(paths: tuple[str, ...]) -> LeanLoader:
    """One loader per data path for the process: the models and endpoint rules it parses
    are read-only, so every session (an organisation's places: two each) shares them."""
    return LeanLoader(list(paths))


class Aws:
    """Open with `async with Aws.open(settings) as aws:`; clients are made on first use."""

    def __init__(
        self,
        settings: AwsSettings,
        session: aioboto3.Session,
        stack: AsyncExitStack,
        clock: Clock | None = None,
    ):
        self.settings = settings
        self.counter = CallCounter()
        self.clock: Clock = clock or EventLoopClock()
        self._session = session
        self._stack = stack
        self._clients: dict[str, Any] = {}
        self._client_lock = anyio.Lock()
        self._limiters: dict[str, AsyncLimiter] = {}
        self._by_operation: dict[tuple[str, str], tuple[str, AsyncLimiter] | None] = {}
        self._queued: Counter[str] = Counter()  # calls waiting for their bucket, by bucket
        # Calls of a service inside the SDK at once: twice its connection pool, so the pool
        # stays busy while the rest wait as bare coroutines, not as signed requests.
        self._in_flight: dict[str, anyio.Semaphore] = {}
        self._debug = _debug_logged()
        self._account_id: str | None = None
        self._account_lock = anyio.Lock()

    @classmethod
    @asynccontextmanager
    async def open(cls, settings: AwsSettings, clock: Clock | None = None) -> AsyncIterator[Aws]:
        access_key, secret_key = settings.credentials or (None, None)
        try:
            session = aioboto3.Session(
                aws_access_key_id=access_key,
                aws_secret_access_key=secret_key,
                region_name=settings.region,
                profile_name=settings.profile,
                botocore_session=_botocore_session(),
            )
        except Exception as error:  # an unknown profile is found here
            raise Unavailable(unavailable(error, settings)) from error
        async with AsyncExitStack() as stack:
            if settings.role is None:
                yield cls(settings, session, stack, clock)
                return
            # The role's session signs every call; the run's own only assumes the role.
            botocore_session = _botocore_session()
            aws = cls(
                settings,
                aioboto3.Session(region_name=settings.region, botocore_session=botocore_session),
                stack,
                clock,
            )
            counter = aws.counter
            credentials = assumed_role.resolver(
                settings.role,
                session,
                {
                    "endpoint_url": settings.endpoint_url,
                    # STS where the caller is: a place's region may not be one it enabled
                    "region_name": settings.role.sts_region or settings.region,
                },
                stack,
                aws.clock.utcnow,
                lambda outcome: counter.record("sts", "AssumeRole", outcome, 1),
            )
            botocore_session.register_component("credential_provider", credentials)
            yield aws

    @property
    def region(self) -> str:
        return self.settings.region

    # --- typed service views ---------------------------------------------------------------

    @property
    def lambda_(self) -> LambdaClient:
        return cast("LambdaClient", _Service(self, "lambda"))

    @property
    def logs(self) -> CloudWatchLogsClient:
        return cast("CloudWatchLogsClient", _Service(self, "logs"))

    @property
    def cloudwatch(self) -> CloudWatchClient:
        return cast("CloudWatchClient", _Service(self, "cloudwatch"))

    @property
    def sqs(self) -> SQSClient:
        return cast("SQSClient", _Service(self, "sqs"))

    @property
    def iam(self) -> IAMClient:
        return cast("IAMClient", _Service(self, "iam"))

    @property
    def s3(self) -> S3Client:
        return cast("S3Client", _Service(self, "s3"))

    @property
    def secretsmanager(self) -> SecretsManagerClient:
        return cast("SecretsManagerClient", _Service(self, "secretsmanager"))

    @property
    def sts(self) -> STSClient:
        return cast("STSClient", _Service(self, "sts"))

    @property
    def pricing(self) -> PricingClient:
        """The Price List API (its endpoint is in us-east-1, whatever the run's region)."""
        return cast("PricingClient", _Service(self, "pricing"))

    async def preflight(self) -> str:
        """Who the caller is, asked once without retries and with a short connect timeout,
        before anything else: a missing credential, an unknown profile, an unreachable or
        non-AWS endpoint fail here in seconds, as `Unavailable` with what to do."""
        config = AioConfig(
            retries={"mode": "standard", "max_attempts": 1}, connect_timeout=5, read_timeout=20
        )
        try:
            async with self._session.client(
                "sts", endpoint_url=self.settings.endpoint_url, config=config
            ) as sts:
                for attempt in range(_PREFLIGHT_ATTEMPTS):  # a throttle or a 5xx: again
                    try:
                        identity = await sts.get_caller_identity()
                        break
                    except Exception as error:
                        if attempt + 1 == _PREFLIGHT_ATTEMPTS or not errors.is_transient(error):
                            raise
                        await self.sleep(0.5 * 2**attempt)
        except Exception as error:
            if not isinstance(error, assumed_role.RoleRefused):  # that call was never sent
                outcome = f"error:{type(error).__name__}"
                self.counter.record("sts", "GetCallerIdentity", outcome, 1)
            raise Unavailable(unavailable(error, self.settings)) from error
        self.counter.record("sts", "GetCallerIdentity", "ok", 1)
        async with self._account_lock:
            self._account_id = str(identity["Account"])
        return self._account_id

    async def account_id(self) -> str:
        """The caller's account, asked once however many tasks ask at the same time."""
        async with self._account_lock:
            if self._account_id is None:
                identity = await self.sts.get_caller_identity()
                self._account_id = str(identity["Account"])
        return self._account_id

    async def _client(self, service: str) -> Any:
        client = self._clients.get(service)
        if client is not None:
            return client
        async with self._client_lock:  # concurrent first uses make one client, not several
            return await self._make_client(service)

    async def _single_client(self, service: str) -> Any:
        """The service's client that sends each call once (made on first use)."""
        async with self._client_lock:
            return await self._make_client(service, attempts=1)

    async def _make_client(self, service: str, attempts: int | None = None) -> Any:
        key = service if attempts is None else f"{service}#{attempts}"
        client = self._clients.get(key)
        if client is None:
            mode = "adaptive" if service in _ADAPTIVE_SERVICES else "standard"
            retries: dict[str, Any] = (
                {"mode": mode, "max_attempts": self.settings.max_attempts}
                if attempts is None
                else {"mode": mode, "total_max_attempts": attempts}
            )
            config = AioConfig(
                retries=retries,
                max_pool_connections=self.settings.max_connections,
                connect_timeout=10,
                read_timeout=60,
                user_agent=USER_AGENT,
            )
            region = _SERVICE_REGIONS.get(service, self.settings.region)
            client = await self._stack.enter_async_context(
                self._session.client(  # type: ignore[call-overload]
                    service,
                    endpoint_url=self.settings.endpoint_url,
                    config=config,
                    region_name=region,
                )
            )
            self._in_flight.setdefault(service, anyio.Semaphore(2 * self.settings.max_connections))
            self._clients[key] = client
        return client

    def busiest_queue(self) -> tuple[str, int] | None:
        """The quota bucket with the most calls waiting for their turn, and how many: the
        run's bottleneck (progress displays it). None while no call waits."""
        busiest = max(self._queued.items(), key=lambda item: item[1], default=None)
        return busiest if busiest is not None and busiest[1] > 0 else None

    def _pacing(self, service: str, operation: str) -> tuple[str, AsyncLimiter] | None:
        """The operation's quota bucket and limiter (None: no published quota), looked up
        once."""
        key = (service, operation)
        try:
            return self._by_operation[key]
        except KeyError:
            paced = self._by_operation[key] = self._bucket_pacing(service, operation)
            return paced

    def _bucket_pacing(self, service: str, operation: str) -> tuple[str, AsyncLimiter] | None:
        bucket = quotas.bucket_for(service, operation)
        if bucket is None:
            return None
        limiter = self._limiters.get(bucket.name)
        if limiter is None:
            raised = dict(self.settings.quotas)
            rate = quotas.rate_of(bucket, raised) * self.settings.time_scale * QUOTA_HEADROOM
            rate *= self.settings.quota_share
            limiter = _paced(max(rate, 0.01))
            self._limiters[bucket.name] = limiter
        return bucket.name, limiter

    async def call(self, service: str, operation: str, **params: Any) -> dict[str, Any]:
        """Call `service.operation(**params)` under its quota; raises botocore's errors."""
        client = await self._client(service)
        return await self._call(client, service, operation, params)

    @property
    def once(self) -> OnceViews:
        return OnceViews(self)

    async def call_method(
        self, service: str, method: str, *, _once: bool = False, **params: Any
    ) -> dict[str, Any]:
        """Like `call`, by the client's method name (`get_function`): the typed views' path.
        `_once`: without the SDK's retries."""
        client = await (self._single_client(service) if _once else self._client(service))
        operation = client.meta.method_to_api_mapping.get(method)
        if operation is None:
            raise AttributeError(f"{service} has no operation {method!r}")
        return await self._call(client, service, operation, params)

    async def _call(
        self, client: Any, service: str, operation: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        """Under the operation's quota limiter. botocore's standard mode stops retrying once
        its retry quota is spent, which a burst of throttles does (a stalled endpoint, or
        another tool on the account's quota): a paced call that still ends throttled waits
        a moment and goes through its limiter again, a few times, before it fails."""
        paced = self._pacing(service, operation)
        for round_ in range(1, _THROTTLED_ROUNDS + 2):
            if paced is not None:
                bucket, limiter = paced
                self._queued[bucket] += 1
                try:
                    await limiter.acquire()
                finally:
                    self._queued[bucket] -= 1
            try:
                return await self._attempt(client, service, operation, params)
            except Exception as error:
                throttled = errors.error_code(error) in errors.THROTTLE_CODES
                if paced is None or not throttled or round_ > _THROTTLED_ROUNDS:
                    raise
            await self.sleep(_THROTTLED_PAUSE_S * round_)
        raise AssertionError("unreachable: the last round returns or raises")

    async def _attempt(
        self, client: Any, service: str, operation: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        outcome, attempts = "ok", 1
        async with self._in_flight[service]:
            started = time.monotonic()
            try:
                response: dict[str, Any] = await getattr(client, xform_name(operation))(**params)
                attempts += int(response.get("ResponseMetadata", {}).get("RetryAttempts", 0))
                return response
            except Exception as error:
                outcome = errors.error_code(error) or type(error).__name__
                metadata = getattr(error, "response", {}).get("ResponseMetadata", {})
                attempts += int(metadata.get("RetryAttempts", 0))
                raise
            finally:
                self.counter.record(service, operation, outcome, attempts)
                if self._debug:
                    log.debug(
                        "aws.call",
                        aws_service=service,
                        aws_operation=operation,
                        outcome=outcome,
                        attempt=attempts,
                        duration_ms=round((time.monotonic() - started) * 1000, 1),
                    )

    @staticmethod
    async def find(
        method: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs
    ) -> R | None:
        """`await method(...)`, but None where AWS answers that the resource does not exist."""
        try:
            return await method(*args, **kwargs)
        except Exception as error:
            if errors.is_not_found(error):
                return None
            raise

    @staticmethod
    async def pages(
        token: str | tuple[str, str],
        method: Callable[P, Awaitable[R]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> AsyncIterator[R]:
        """Every page of a paginated call. `token` names the request's and the answer's
        token when they are one name (`NextToken`), else both: ListFunctions takes a
        `Marker` and answers a `NextMarker`."""
        asked, answered = (token, token) if isinstance(token, str) else token
        call = cast(Callable[..., Awaitable[R]], method)
        params: dict[str, Any] = dict(kwargs)
        while True:
            page = await call(*args, **params)
            yield page
            next_token = cast(Mapping[str, Any], page).get(answered)
            if not next_token:
                return
            params[asked] = next_token

    def scaled(self, seconds: float) -> float:
        """A wait of `seconds` on AWS's clock, on this run's clock."""
        return seconds / self.settings.time_scale

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` of AWS's time (scaled to the run's clock)."""
        await self.clock.sleep(self.scaled(seconds))


def _debug_logged() -> bool:
    """Whether debug events are kept under the logging configured now (always, for a
    logger that cannot say)."""
    enabled = getattr(log.bind(), "is_enabled_for", None)
    return True if enabled is None else bool(enabled(logging.DEBUG))


class _Service:
    """A service view: any method becomes `Aws.call_method(service, method, ...)`."""

    def __init__(self, aws: Aws, service: str, once: bool = False) -> None:
        self._aws = aws
        self._service = service
        self._once = once

    def __getattr__(self, method: str) -> Callable[..., Awaitable[dict[str, Any]]]:
        if method.startswith("_"):
            raise AttributeError(method)
        return functools.partial(self._aws.call_method, self._service, method, _once=self._once)


class OnceViews:
    """`aws.once.cloudwatch...`: the same calls, paced and counted, but sent once, with no
    SDK retry: for a question the endpoint may be unable to answer at all (a statistic an
    emulator cannot compute answers the same 500 however often it is asked)."""

    def __init__(self, aws: Aws) -> None:
        self._aws = aws

    @property
    def cloudwatch(self) -> CloudWatchClient:
        return cast("CloudWatchClient", _Service(self._aws, "cloudwatch", once=True))
