"""The reference: the job written the way the task reads, one function at a time with boto3.

Per environment: the secrets' ARNs, the dead-letter queue, the role's inline policy and the
deployment bucket's versioning and lifecycle (the function update needs the queue and the
role's permission on it first); then per function: read the configuration, update memory,
timeout, tracing, dead-letter queue and variables, wait with boto3's `function_updated`
waiter, then the reservation, the log retention and the two alarms. A role policy is seen
by Lambda only after IAM propagates it: the update is retried until it is accepted.

The values are the product's targets (the same builders), so both tools must reach the same
end state. `--time-scale K` divides the waiter's and the retries' sleeps by K, to run
against a sandbox whose clock runs K times faster; times convert back to AWS's by x K.

    AWS_ENDPOINT_URL=... python -m bench.sequential --suffix a,b --functions-per-env 2
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any, Final

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from optimizer_async.definitions import baseline, naming
from optimizer_async.definitions.naming import EnvironmentNames
from optimizer_async.definitions.targets import Targets
from optimizer_async.steps.alarms import duration_alarm, error_rate_alarm
from optimizer_async.steps.role_policy import policy_document

_WAITER_DELAY_S: Final = 5.0  # botocore's FunctionUpdated: GetFunctionConfiguration every 5 s
_WAITER_ATTEMPTS: Final = 60
_IAM_RETRY_S: Final = 1.0
_IAM_RETRIES: Final = 60


class Reference:
    def __init__(self, time_scale: float = 1.0, region: str | None = None) -> None:
        session = boto3.session.Session(region_name=region)
        config = Config(retries={"mode": "standard", "max_attempts": 10})
        self._client: dict[str, Any] = {
            name: session.client(name, config=config)
            for name in ("lambda", "logs", "cloudwatch", "sqs", "iam", "s3", "secretsmanager")
        }
        self.account_id = str(session.client("sts").get_caller_identity()["Account"])
        self.time_scale = time_scale
        self.targets = Targets()

    def optimise(self, suffix: str, function_bases: Sequence[str]) -> None:
        names = EnvironmentNames(suffix)
        secrets = self._client["secretsmanager"]
        secret_arns = {
            name: str(secrets.describe_secret(SecretId=name)["ARN"])
            for name in (names.database_url_secret, names.api_key_secret)
        }
        queue_arn = self._queue(names)
        self._client["iam"].put_role_policy(
            RoleName=names.role,
            PolicyName=names.optimizer_policy,
            PolicyDocument=json.dumps(policy_document(queue_arn, list(secret_arns.values()))),
        )
        self._bucket(names)
        variables = {
            baseline.DATABASE_URL_SECRET_ARN_VAR: secret_arns[names.database_url_secret],
            baseline.API_KEY_SECRET_ARN_VAR: secret_arns[names.api_key_secret],
        }
        for base in function_bases:
            self._function(names, names.function(base), queue_arn, variables)

    def _queue(self, names: EnvironmentNames) -> str:
        sqs = self._client["sqs"]
        url = sqs.create_queue(
            QueueName=names.dead_letter_queue,
            Attributes={
                "MessageRetentionPeriod": str(self.targets.dlq_retention_s),
                "SqsManagedSseEnabled": "true",
            },
            tags=names.optimizer_tags,
        )["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return str(attributes["Attributes"]["QueueArn"])

    def _bucket(self, names: EnvironmentNames) -> None:
        s3 = self._client["s3"]
        bucket = names.bucket(self.account_id)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        s3.put_bucket_lifecycle_configuration(
            Bucket=bucket,
            LifecycleConfiguration={
                "Rules": baseline.bucket_lifecycle_rules(
                    self.targets.noncurrent_version_expiration_days
                )
            },
        )

    def _function(
        self, names: EnvironmentNames, function: str, queue_arn: str, added: dict[str, str]
    ) -> None:
        lambda_ = self._client["lambda"]
        target = self.targets.function
        current = lambda_.get_function_configuration(FunctionName=function)
        variables = {**current.get("Environment", {}).get("Variables", {}), **added}
        self._update(
            function,
            MemorySize=target.memory_mb,
            Timeout=target.timeout_s,
            TracingConfig={"Mode": target.tracing_mode},
            DeadLetterConfig={"TargetArn": queue_arn},
            Environment={"Variables": variables},
        )
        lambda_.get_waiter("function_updated").wait(
            FunctionName=function,
            WaiterConfig={
                "Delay": _WAITER_DELAY_S / self.time_scale,
                "MaxAttempts": _WAITER_ATTEMPTS,
            },
        )
        lambda_.put_function_concurrency(
            FunctionName=function, ReservedConcurrentExecutions=target.reserved_concurrency
        )
        self._client["logs"].put_retention_policy(
            logGroupName=naming.log_group_name(function),
            retentionInDays=target.log_retention_days,
        )
        tags = [{"Key": k, "Value": v} for k, v in sorted(names.optimizer_tags.items())]
        cloudwatch = self._client["cloudwatch"]
        for alarm in (
            error_rate_alarm(function, self.targets.alarms),
            duration_alarm(function, self.targets.alarms),
        ):
            cloudwatch.put_metric_alarm(**alarm, Tags=tags)

    def _update(self, function: str, **settings: Any) -> None:
        """Retry while Lambda does not yet see the role's new permission on the queue."""
        for attempt in range(_IAM_RETRIES):
            try:
                self._client["lambda"].update_function_configuration(
                    FunctionName=function, **settings
                )
                return
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code")
                if code != "InvalidParameterValueException" or attempt == _IAM_RETRIES - 1:
                    raise
                time.sleep(_IAM_RETRY_S / self.time_scale)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sequential", description=__doc__)
    parser.add_argument("--suffix", required=True, help="comma-separated suffixes")
    parser.add_argument("--functions-per-env", type=int, default=1)
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--region", default=None)
    args = parser.parse_args(argv)
    bases = baseline.function_bases(args.functions_per_env)
    suffixes = naming.parse_suffixes([args.suffix])
    reference = Reference(args.time_scale, args.region)
    started = time.perf_counter()
    for suffix in suffixes:
        reference.optimise(suffix, bases)
    elapsed = time.perf_counter() - started
    print(json.dumps({"elapsed_s": round(elapsed, 3), "functions": len(suffixes) * len(bases)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
