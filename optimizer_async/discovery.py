"""Read-only discovery: what each environment looks like now.

Per environment, concurrently: each function by exact name with GetFunction (its own
100 requests/second quota; it also returns tags and reserved concurrency), the secrets,
the dead-letter queue, the deployment bucket, the optimizer's role policy. Per function,
its log group, alarms and usage go through batch loaders that coalesce requests from all
environments into few DescribeLogGroups / DescribeAlarms / GetMetricData calls.

A function whose `environment-suffix` tag names another environment is skipped: exact
name matching is the rule, the tag is a second lock on it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import unquote

import anyio
import structlog

from optimizer_async.aws.batching import BatchLoader
from optimizer_async.aws.gateway import Aws
from optimizer_async.inventory import (
    AccountState,
    BucketState,
    EnvironmentInventory,
    EnvironmentVariables,
    FunctionInventory,
    FunctionState,
    LogGroupState,
    QueueState,
    RolePolicyState,
    Usage,
    environment_error,
)
from optimizer_async.naming import (
    DEFAULT_FUNCTION_BASE,
    EnvironmentNames,
    duration_alarm_name,
    error_rate_alarm_name,
    log_group_name,
)
from optimizer_async.steps.base import Part

log = structlog.get_logger("optimizer_async.discovery")

USAGE_DAYS: Final = 30
_FUNCTIONS_PER_ALARMS_CALL: Final = 50  # DescribeAlarms takes 100 names, two per function
_LOG_GROUPS_PER_CALL: Final = 50  # DescribeLogGroups logGroupIdentifiers limit
_FUNCTIONS_PER_METRICS_CALL: Final = 250  # GetMetricData: 500 queries, two per function
SUFFIX_TAG: Final = "environment-suffix"


def function_state(config: Mapping[str, Any], answer: Mapping[str, Any]) -> FunctionState:
    """A FunctionState from a GetFunction answer."""
    logging_config = config.get("LoggingConfig") or {}
    concurrency = (answer.get("Concurrency") or {}).get("ReservedConcurrentExecutions")
    return FunctionState(
        name=str(config["FunctionName"]),
        arn=str(config["FunctionArn"]),
        role_arn=str(config["Role"]),
        memory_mb=int(config["MemorySize"]),
        timeout_s=int(config["Timeout"]),
        tracing_mode=str((config.get("TracingConfig") or {}).get("Mode", "PassThrough")),
        dead_letter_target=(config.get("DeadLetterConfig") or {}).get("TargetArn") or None,
        environment=EnvironmentVariables((config.get("Environment") or {}).get("Variables", {})),
        environment_error=environment_error(config),
        reserved_concurrency=None if concurrency is None else int(concurrency),
        log_group=str(
            logging_config.get("LogGroup") or log_group_name(str(config["FunctionName"]))
        ),
        architecture=str((config.get("Architectures") or ["x86_64"])[0]),
        revision_id=config.get("RevisionId"),
        last_update_status=str(config.get("LastUpdateStatus", "Successful")),
        tags=dict(answer.get("Tags") or {}),
    )


@dataclass(frozen=True)
class _Core:
    """What phase one of discovery found for an environment."""

    names: EnvironmentNames
    account_id: str
    states: tuple[FunctionState, ...]
    skipped: tuple[str, ...]
    secret_arns: dict[str, str | None]
    queue: QueueState | None
    bucket: BucketState


class Discovery:
    """Discovers environments through one `Aws` gateway; share one per run (batching)."""

    def __init__(self, aws: Aws, function_bases: Sequence[str] = (DEFAULT_FUNCTION_BASE,)):
        self.aws = aws
        self.function_bases = tuple(function_bases)
        self._alarms: BatchLoader[str, dict[str, dict[str, Any] | None]] = BatchLoader(
            self._fetch_alarms, _FUNCTIONS_PER_ALARMS_CALL
        )
        self._log_groups: BatchLoader[str, LogGroupState] = BatchLoader(
            self._fetch_log_groups, _LOG_GROUPS_PER_CALL
        )
        self._usage: BatchLoader[str, Usage] = BatchLoader(
            self._fetch_usage, _FUNCTIONS_PER_METRICS_CALL
        )

    # --- account ------------------------------------------------------------------------

    async def account(self) -> AccountState:
        settings = await self.aws.call("lambda", "GetAccountSettings")
        limit = settings["AccountLimit"]
        return AccountState(
            account_id=await self.aws.account_id(),
            region=self.aws.region,
            concurrency_limit=int(limit["ConcurrentExecutions"]),
            unreserved_concurrency=int(limit["UnreservedConcurrentExecutions"]),
        )

    # --- environments -------------------------------------------------------------------

    async def environments(
        self, suffixes: Sequence[str], *, with_usage: bool = True
    ) -> dict[str, EnvironmentInventory | Exception]:
        """Discover several environments; a failure is returned for its suffix, not raised.

        Two phases: first every environment's own resources, concurrently; then the log
        groups, alarms and usage of all their functions at once, so the batch loaders fill
        whole batches instead of one per environment.
        """
        cores: dict[str, _Core | Exception] = {}
        found: dict[str, EnvironmentInventory | Exception] = {}

        async def core(suffix: str) -> None:
            try:
                cores[suffix] = await self._core(suffix)
            except Exception as error:
                cores[suffix] = error

        async def details(suffix: str, part: _Core) -> None:
            try:
                found[suffix] = await self._assemble(part, with_usage)
            except Exception as error:
                found[suffix] = error

        async with anyio.create_task_group() as group:
            for suffix in suffixes:
                group.start_soon(core, suffix)
        async with anyio.create_task_group() as group:
            for suffix in suffixes:
                part = cores[suffix]
                if isinstance(part, Exception):
                    found[suffix] = part
                else:
                    group.start_soon(details, suffix, part)
        return {suffix: found[suffix] for suffix in suffixes}

    async def environment(self, suffix: str, *, with_usage: bool = True) -> EnvironmentInventory:
        found = (await self.environments([suffix], with_usage=with_usage))[suffix]
        if isinstance(found, Exception):
            raise found
        return found

    async def _core(self, suffix: str) -> _Core:
        """Phase one: the environment's functions, secrets, queue and bucket."""
        names = EnvironmentNames(suffix)
        account_id = await self.aws.account_id()
        functions: dict[str, FunctionState] = {}
        skipped: list[str] = []
        secret_arns: dict[str, str | None] = {}
        found: dict[str, Any] = {}

        async def one_function(base: str) -> None:
            state = await self.function(names.function(base))
            if state is None:
                return
            tagged = state.tags.get(SUFFIX_TAG)
            if tagged is not None and tagged != suffix:
                log.warning("function.skipped", function=state.name, reason=f"tagged {tagged}")
                skipped.append(state.name)
            else:
                functions[base] = state

        async def one_secret(name: str) -> None:
            secret_arns[name] = await self.secret_arn(name)

        async def queue() -> None:
            found["queue"] = await self.queue(names.dead_letter_queue)

        async def bucket() -> None:
            found["bucket"] = await self.bucket(names.bucket(account_id))

        async with anyio.create_task_group() as group:
            for base in self.function_bases:
                group.start_soon(one_function, base)
            for name in (names.database_url_secret, names.api_key_secret):
                group.start_soon(one_secret, name)
            group.start_soon(queue)
            group.start_soon(bucket)
        return _Core(
            names=names,
            account_id=account_id,
            states=tuple(functions[base] for base in self.function_bases if base in functions),
            skipped=tuple(sorted(skipped)),
            secret_arns={name: secret_arns[name] for name in sorted(secret_arns)},
            queue=found["queue"],
            bucket=found["bucket"],
        )

    async def _assemble(self, core: _Core, with_usage: bool) -> EnvironmentInventory:
        """Phase two: per-function details (batched across environments), role policies."""
        inventories, role_policies = await self._function_details(
            core.states, core.names, with_usage
        )
        return EnvironmentInventory(
            suffix=core.names.suffix,
            account_id=core.account_id,
            region=self.aws.region,
            functions=inventories,
            secret_arns=core.secret_arns,
            queue=core.queue,
            role_policies=role_policies,
            bucket=core.bucket,
            skipped=core.skipped,
        )

    async def _function_details(
        self, states: Sequence[FunctionState], names: EnvironmentNames, with_usage: bool
    ) -> tuple[tuple[FunctionInventory, ...], tuple[RolePolicyState, ...]]:
        details: dict[str, FunctionInventory] = {}
        policies: dict[str, RolePolicyState] = {}

        async def one(state: FunctionState) -> None:
            found: dict[str, Any] = {}

            async def load(key: str, read: Awaitable[Any]) -> None:
                found[key] = await read

            # The three reads join three different batches: wait for them side by side.
            async with anyio.create_task_group() as group:
                group.start_soon(load, "log_group", self._log_groups.load(state.log_group))
                group.start_soon(load, "alarms", self.alarms(state.name))
                if with_usage:
                    group.start_soon(load, "usage", self._usage.load(state.name))
            details[state.name] = FunctionInventory(state=state, **found)

        async def policy(role_name: str) -> None:
            policies[role_name] = await self.role_policy(role_name, names.optimizer_policy)

        async with anyio.create_task_group() as group:
            for state in states:
                group.start_soon(one, state)
            for role_name in sorted({state.role_name for state in states}):
                group.start_soon(policy, role_name)
        return (
            tuple(details[state.name] for state in states),
            tuple(policies[name] for name in sorted(policies)),
        )

    async def refresh(
        self, inventory: EnvironmentInventory, parts: set[Part], functions: set[str]
    ) -> EnvironmentInventory:
        """Re-read only the given parts (of only the given functions): verification."""
        names = EnvironmentNames(inventory.suffix)
        updated = {fn.name: fn for fn in inventory.functions}
        found: dict[str, Any] = {}

        async def one(fn: FunctionInventory) -> None:
            state = fn.state
            if "function" in parts:
                state = await self.function(fn.name) or state
            log_group = fn.log_group
            if "log_group" in parts:
                log_group = await self._log_groups.load(state.log_group)
            alarms = await self.alarms(fn.name) if "alarms" in parts else fn.alarms
            updated[fn.name] = replace(fn, state=state, log_group=log_group, alarms=alarms)

        async def environment_parts() -> None:
            if "queue" in parts:
                found["queue"] = await self.queue(names.dead_letter_queue)
            if "bucket" in parts:
                found["bucket"] = await self.bucket(inventory.bucket.name)
            if "role_policies" in parts:
                found["role_policies"] = tuple(
                    [
                        await self.role_policy(policy.role_name, policy.policy_name)
                        for policy in inventory.role_policies
                    ]
                )

        async with anyio.create_task_group() as group:
            for fn in inventory.functions:
                if fn.name in functions:
                    group.start_soon(one, fn)
            group.start_soon(environment_parts)
        return replace(
            inventory,
            functions=tuple(updated[fn.name] for fn in inventory.functions),
            **found,
        )

    # --- single resources ---------------------------------------------------------------

    async def function(self, name: str) -> FunctionState | None:
        answer = await self.aws.find("lambda", "GetFunction", FunctionName=name)
        return None if answer is None else function_state(answer["Configuration"], answer)

    async def secret_arn(self, name: str) -> str | None:
        secret = await self.aws.find("secretsmanager", "DescribeSecret", SecretId=name)
        if secret is None or secret.get("DeletedDate") or secret.get("Name") != name:
            return None  # missing, scheduled for deletion, or a different secret
        return str(secret["ARN"])

    async def queue(self, name: str) -> QueueState | None:
        found = await self.aws.find("sqs", "GetQueueUrl", QueueName=name)
        if found is None:
            return None
        url = found["QueueUrl"]
        answer = await self.aws.call(
            "sqs", "GetQueueAttributes", QueueUrl=url, AttributeNames=["All"]
        )
        attributes = dict(answer.get("Attributes", {}))
        return QueueState(name=name, url=url, arn=attributes["QueueArn"], attributes=attributes)

    async def role_policy(self, role_name: str, policy_name: str) -> RolePolicyState:
        answer = await self.aws.find(
            "iam", "GetRolePolicy", RoleName=role_name, PolicyName=policy_name
        )
        if answer is None:
            return RolePolicyState(role_name, policy_name, None)
        document = answer["PolicyDocument"]
        if isinstance(document, str):  # IAM returns it URL-encoded; botocore may not decode
            document = json.loads(unquote(document))
        return RolePolicyState(role_name, policy_name, document)

    async def bucket(self, name: str) -> BucketState:
        versioning = await self.aws.find("s3", "GetBucketVersioning", Bucket=name)
        if versioning is None:
            return BucketState(name, exists=False, versioning=None, lifecycle_rules=())
        lifecycle = await self.aws.find("s3", "GetBucketLifecycleConfiguration", Bucket=name)
        rules = tuple((lifecycle or {}).get("Rules", []))
        return BucketState(name, True, versioning.get("Status"), rules)

    async def alarms(self, function_name: str) -> dict[str, dict[str, Any] | None]:
        """The function's two alarms by name, None where missing."""
        return await self._alarms.load(function_name) or {}

    # --- batched fetches ----------------------------------------------------------------

    async def _fetch_alarms(
        self, functions: Sequence[str]
    ) -> dict[str, dict[str, dict[str, Any] | None]]:
        wanted = {
            function: (error_rate_alarm_name(function), duration_alarm_name(function))
            for function in functions
        }
        names = [name for pair in wanted.values() for name in pair]
        found: dict[str, dict[str, Any]] = {}
        async for page in self.aws.pages(
            "cloudwatch", "DescribeAlarms", "NextToken", AlarmNames=names, MaxRecords=100
        ):
            for alarm in page.get("MetricAlarms", []):
                found[alarm["AlarmName"]] = alarm
        return {
            function: {name: found.get(name) for name in pair} for function, pair in wanted.items()
        }

    async def _fetch_log_groups(self, names: Sequence[str]) -> dict[str, LogGroupState]:
        found: dict[str, LogGroupState] = {}
        async for page in self.aws.pages(
            "logs", "DescribeLogGroups", "nextToken", logGroupIdentifiers=list(names)
        ):
            for group in page.get("logGroups", []):
                found[group["logGroupName"]] = LogGroupState(
                    name=group["logGroupName"],
                    retention_days=group.get("retentionInDays"),
                    stored_bytes=int(group.get("storedBytes", 0)),
                )
        return found

    async def _fetch_usage(self, functions: Sequence[str]) -> dict[str, Usage]:
        end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        queries = []
        for index, function in enumerate(functions):
            for prefix, metric in (("i", "Invocations"), ("d", "Duration")):
                queries.append(
                    {
                        "Id": f"{prefix}{index}",
                        "MetricStat": {
                            "Metric": {
                                "Namespace": "AWS/Lambda",
                                "MetricName": metric,
                                "Dimensions": [{"Name": "FunctionName", "Value": function}],
                            },
                            "Period": 86400,
                            "Stat": "Sum",
                        },
                        "ReturnData": True,
                    }
                )
        sums: dict[str, float] = {}
        async for page in self.aws.pages(
            "cloudwatch",
            "GetMetricData",
            "NextToken",
            MetricDataQueries=queries,
            StartTime=end - timedelta(days=USAGE_DAYS),
            EndTime=end,
        ):
            for result in page.get("MetricDataResults", []):
                sums[result["Id"]] = sums.get(result["Id"], 0.0) + sum(result.get("Values", []))
        return {
            function: Usage(USAGE_DAYS, sums.get(f"i{index}", 0.0), sums.get(f"d{index}", 0.0))
            for index, function in enumerate(functions)
        }
