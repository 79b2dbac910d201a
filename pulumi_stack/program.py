"""The Pulumi program: config -> one BaselineEnvironment -> stack outputs."""

from __future__ import annotations

import pulumi

from optimizer_async.definitions.environment_spec import environment_spec
from optimizer_async.definitions.naming import InvalidNameError, validate_suffix
from pulumi_stack.environment import BaselineEnvironment, BaselineEnvironmentArgs


class StackConfigError(pulumi.RunError):
    """Bad stack configuration, reported as one clear message before anything is created."""


def read_suffix(config: pulumi.Config) -> str:
    suffix = config.require("environmentSuffix")
    try:
        return validate_suffix(suffix)
    except InvalidNameError as error:
        raise StackConfigError(f"config environmentSuffix: {error}") from None


def main() -> BaselineEnvironment:
    config = pulumi.Config()
    suffix = read_suffix(config)
    environment = BaselineEnvironment(
        BaselineEnvironmentArgs(
            spec=environment_spec(suffix),
            database_url=config.require_secret("databaseUrl"),
            api_key=config.require_secret("apiKey"),
        )
    )
    function = environment.functions[0]
    pulumi.export("environmentSuffix", suffix)
    pulumi.export("functionName", function.name)
    pulumi.export("functionArn", function.arn)
    pulumi.export("roleArn", environment.role.arn)
    pulumi.export("bucket", environment.bucket.bucket)
    pulumi.export("layerArn", environment.layer.arn)
    pulumi.export("logGroup", environment.log_groups[0].name)
    pulumi.export("databaseUrlSecretArn", environment.database_url_secret.arn)
    pulumi.export("apiKeySecretArn", environment.api_key_secret.arn)
    return environment
