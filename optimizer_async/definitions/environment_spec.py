"""What one baseline environment consists of, as plain values.

The Pulumi stack and the sandbox seeder both translate this spec into their own API calls,
so what users deploy and what the tests run against cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from optimizer_async.definitions import baseline
from optimizer_async.definitions.naming import DEFAULT_FUNCTION_BASE, EnvironmentNames

LAMBDA_TRUST_POLICY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}
ROLE_LOGS_POLICY_NAME = "write-own-logs"
FUNCTION_PACKAGE_KEY = "packages/function.zip"
LAYER_PACKAGE_KEY = "packages/layer.zip"


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    log_group: str
    settings: baseline.FunctionSettings
    environment: dict[str, str]
    runtime: str = baseline.RUNTIME
    handler: str = baseline.HANDLER
    architecture: str = baseline.ARCHITECTURE
    description: str = baseline.FUNCTION_DESCRIPTION


@dataclass(frozen=True)
class EnvironmentSpec:
    names: EnvironmentNames
    functions: tuple[FunctionSpec, ...]
    tags: dict[str, str] = field(default_factory=dict)

    def log_group_arn(self, function: FunctionSpec, region: str, account_id: str) -> str:
        return f"arn:aws:logs:{region}:{account_id}:log-group:{function.log_group}"

    def role_logs_policy(self, region: str, account_id: str) -> dict[str, Any]:
        """Baseline role permissions: write to its functions' own log groups, nothing else."""
        return {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "WriteOwnLogs",
                    "Effect": "Allow",
                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                    "Resource": [
                        f"{self.log_group_arn(function, region, account_id)}:*"
                        for function in self.functions
                    ],
                }
            ],
        }


def environment_spec(
    suffix: str, function_bases: tuple[str, ...] = (DEFAULT_FUNCTION_BASE,)
) -> EnvironmentSpec:
    """The baseline environment for `suffix`, with one function per base."""
    names = EnvironmentNames(suffix)
    functions = tuple(
        FunctionSpec(
            name=names.function(base),
            log_group=names.function_log_group(base),
            settings=baseline.BASELINE,
            environment=baseline.baseline_environment(suffix),
        )
        for base in function_bases
    )
    return EnvironmentSpec(names=names, functions=functions, tags=names.tags)
