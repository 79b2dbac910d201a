"""What an environment looks like after a tool ran, comparable across environments.

Everything the job sets, read back with boto3 and written with the environment's own
names replaced by placeholders (`{suffix}`, `{account}`, `{secret:NAME}`), so that the end
states of two environments optimised by different tools compare equal exactly when both
tools did the same.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import boto3
from botocore.exceptions import ClientError

from optimizer_async.definitions import naming
from optimizer_async.definitions.naming import EnvironmentNames
from optimizer_async.steps.alarms import definition
from optimizer_async.steps.role_policy import canonical


def _missing(error: ClientError, *codes: str) -> bool:
    return error.response.get("Error", {}).get("Code") in codes


class EndState:
    def __init__(self, region: str | None = None) -> None:
        session = boto3.session.Session(region_name=region)
        self._client: dict[str, Any] = {
            name: session.client(name)
            for name in ("lambda", "logs", "cloudwatch", "sqs", "iam", "s3", "secretsmanager")
        }
        self.account_id = str(session.client("sts").get_caller_identity()["Account"])

    def read(self, suffix: str, function_bases: Sequence[str]) -> dict[str, Any]:
        names = EnvironmentNames(suffix)
        secrets = {
            str(self._client["secretsmanager"].describe_secret(SecretId=name)["ARN"]): name
            for name in (names.database_url_secret, names.api_key_secret)
        }
        state = {
            "functions": [self._function(names.function(base)) for base in function_bases],
            "queue": self._queue(names),
            "role_policies": self._role_policies(names),
            "bucket": self._bucket(names),
        }
        text = json.dumps(state, sort_keys=True, default=str)
        for arn, name in secrets.items():
            text = text.replace(arn, "{secret:" + name.replace(suffix, "{suffix}") + "}")
        text = text.replace(self.account_id, "{account}").replace(suffix, "{suffix}")
        normalised: dict[str, Any] = json.loads(text)
        return normalised

    def _function(self, name: str) -> dict[str, Any]:
        lambda_ = self._client["lambda"]
        config = lambda_.get_function_configuration(FunctionName=name)
        reserved = lambda_.get_function_concurrency(FunctionName=name)
        log_group = naming.log_group_name(name)
        groups = self._client["logs"].describe_log_groups(logGroupNamePrefix=log_group)
        retention = [
            g.get("retentionInDays") for g in groups["logGroups"] if g["logGroupName"] == log_group
        ]
        alarm_names = [naming.error_rate_alarm_name(name), naming.duration_alarm_name(name)]
        alarms = self._client["cloudwatch"].describe_alarms(AlarmNames=alarm_names)
        found = alarms["MetricAlarms"] + alarms.get("CompositeAlarms", [])
        return {
            "name": name,
            "memory_mb": config["MemorySize"],
            "timeout_s": config["Timeout"],
            "tracing": config.get("TracingConfig", {}).get("Mode"),
            "dead_letter": config.get("DeadLetterConfig", {}).get("TargetArn"),
            "variables": config.get("Environment", {}).get("Variables", {}),
            "reserved_concurrency": reserved.get("ReservedConcurrentExecutions"),
            "log_retention_days": retention,
            "alarms": sorted(
                (
                    {
                        "name": alarm["AlarmName"],
                        "description": alarm.get("AlarmDescription"),
                        **definition(alarm),
                    }
                    for alarm in found
                ),
                key=lambda alarm: str(alarm["name"]),
            ),
        }

    def _queue(self, names: EnvironmentNames) -> dict[str, Any] | None:
        sqs = self._client["sqs"]
        try:
            url = sqs.get_queue_url(QueueName=names.dead_letter_queue)["QueueUrl"]
        except ClientError as error:
            if _missing(error, "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
                return None
            raise
        attributes = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["MessageRetentionPeriod", "SqsManagedSseEnabled"]
        )["Attributes"]
        return {"name": names.dead_letter_queue, **attributes}

    def _role_policies(self, names: EnvironmentNames) -> dict[str, Any]:
        iam = self._client["iam"]
        policies = iam.list_role_policies(RoleName=names.role)["PolicyNames"]
        return {
            policy: canonical(
                iam.get_role_policy(RoleName=names.role, PolicyName=policy)["PolicyDocument"]
            )
            for policy in sorted(policies)
        }

    def _bucket(self, names: EnvironmentNames) -> dict[str, Any]:
        s3 = self._client["s3"]
        bucket = names.bucket(self.account_id)
        versioning = s3.get_bucket_versioning(Bucket=bucket).get("Status")
        try:
            rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
        except ClientError as error:
            if not _missing(error, "NoSuchLifecycleConfiguration"):
                raise
            rules = []
        return {"versioning": versioning, "lifecycle": rules}
