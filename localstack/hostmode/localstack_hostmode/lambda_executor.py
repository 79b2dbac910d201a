"""A Lambda runtime executor for hosts without a container engine (LAMBDA_RUNTIME_EXECUTOR=noop).

LocalStack's Lambda provider uses its runtime executor for two things: preparing a function
version, and starting the execution environments that run invocations. The stock "docker"
executor prepares by pulling the runtime's image and downloading the runtime-init binary from
GitHub; when that fails the version goes Failed. Here neither is possible and only the control
plane is needed, so preparing does nothing (a function reaches State Active and an update
LastUpdateStatus Successful at once) and starting an environment fails with the reason, which
Invoke then answers (HTTP 500 ServiceException) instead of hanging or pulling an image.
"""

from __future__ import annotations

from localstack.config import GATEWAY_LISTEN
from localstack.services.lambda_.invocation.lambda_models import FunctionVersion, InvocationResult
from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin
from localstack.services.lambda_.invocation.runtime_executor import (
    LambdaRuntimeException,
    RuntimeExecutor,
)

NOT_SUPPORTED = (
    "Lambda invocations are not supported by this LocalStack: it runs without a container "
    "engine (LAMBDA_RUNTIME_EXECUTOR=noop) and serves Lambda's control plane only"
)


class NoopRuntimeExecutor(RuntimeExecutor):
    """Prepares nothing and refuses to start an execution environment."""

    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        """Nothing to pull, download or build: the version is Active once created."""

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        """prepare_version left nothing behind."""

    @classmethod
    def validate_environment(cls) -> bool:
        """Needs no container engine, so there is nothing to warn about at startup."""
        return True

    def start(self, env_vars: dict[str, str]) -> None:
        """Fails every environment's start, hence every invocation, with the reason."""
        raise LambdaRuntimeException(NOT_SUPPORTED)

    def stop(self) -> None:
        """start() never got anything running."""

    def get_address(self) -> str:
        """Only asked of a started environment, and none ever starts."""
        raise LambdaRuntimeException(NOT_SUPPORTED)

    def get_endpoint_from_executor(self) -> str:
        """LocalStack as a function would reach it: read for the environment's variables,
        before start() fails."""
        return "127.0.0.1"

    def get_runtime_endpoint(self) -> str:
        """Read for the environment's variables too; nothing ever calls it back."""
        return f"http://127.0.0.1:{GATEWAY_LISTEN[0].port}/_localstack_lambda/{self.id}"

    def invoke(self, payload: dict[str, str]) -> InvocationResult:
        """Never reached (start() fails first); fails the same way if it ever is."""
        raise LambdaRuntimeException(NOT_SUPPORTED)

    def get_logs(self) -> str:
        """What LocalStack shows as the environment's log."""
        return NOT_SUPPORTED


class NoopRuntimeExecutorPlugin(RuntimeExecutorPlugin):
    """The plux plugin that LAMBDA_RUNTIME_EXECUTOR=noop names."""

    name = "noop"

    def load(self, *args: object, **kwargs: object) -> type[RuntimeExecutor]:
        """Hands LocalStack the class; it makes one executor per execution environment."""
        return NoopRuntimeExecutor
