"""BaselineEnvironment: every resource of one environment, at BASELINE, named `{resource}-{suffix}`.

Names come from `naming.py`, values from `baseline.py` through `environment_spec.py` — the
same spec the sandbox seeder builds from, so the two cannot drift (tests/stack/test_parity.py).
Everything is destroyable: no protect, no retain; the bucket is force-destroyed and the
secrets skip the recovery window.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws

from optimizer_async.definitions import baseline, lambda_build
from optimizer_async.definitions.environment_spec import (
    FUNCTION_PACKAGE_KEY,
    LAMBDA_TRUST_POLICY,
    LAYER_PACKAGE_KEY,
    ROLE_LOGS_POLICY_NAME,
    EnvironmentSpec,
    FunctionSpec,
)

COMPONENT_TYPE = "lambda-optimizer:baseline:Environment"
BUILD_DIR = Path(__file__).resolve().parent / ".build"


@dataclass(frozen=True)
class BaselineEnvironmentArgs:
    spec: EnvironmentSpec
    database_url: pulumi.Input[str]
    api_key: pulumi.Input[str]


class BaselineEnvironment(pulumi.ComponentResource):
    """One environment of the workload; see the module docstring."""

    def __init__(
        self, args: BaselineEnvironmentArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        spec = args.spec
        names = spec.names
        suffix = names.suffix
        super().__init__(COMPONENT_TYPE, f"environment-{suffix}", None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(spec.tags)
        account_id = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        region = aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=self))

        # --- deployment bucket and packages ---------------------------------------------
        self.bucket = aws.s3.Bucket(
            f"deployment-bucket-{suffix}",
            bucket=account_id.account_id.apply(names.bucket),
            force_destroy=True,
            tags=tags,
            opts=child,
        )
        versioning = aws.s3.BucketVersioning(
            f"deployment-bucket-versioning-{suffix}",
            bucket=self.bucket.id,
            versioning_configuration={"status": "Enabled"},
            opts=child,
        )
        aws.s3.BucketPublicAccessBlock(
            f"deployment-bucket-public-access-block-{suffix}",
            bucket=self.bucket.id,
            block_public_acls=True,
            ignore_public_acls=True,
            block_public_policy=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"deployment-bucket-encryption-{suffix}",
            bucket=self.bucket.id,
            rules=[
                {
                    "apply_server_side_encryption_by_default": {
                        "sse_algorithm": baseline.BUCKET_SSE_ALGORITHM
                    }
                }
            ],
            opts=child,
        )
        aws.s3.BucketLifecycleConfiguration(
            f"deployment-bucket-lifecycle-{suffix}",
            bucket=self.bucket.id,
            rules=[
                {
                    "id": baseline.BUCKET_LIFECYCLE_RULE_ID,
                    "status": "Enabled",
                    "filter": {},
                    "noncurrent_version_expiration": {
                        "noncurrent_days": baseline.NONCURRENT_VERSION_EXPIRATION_DAYS
                    },
                }
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]),
        )
        after_versioning = pulumi.ResourceOptions(parent=self, depends_on=[versioning])
        function_object, layer_object = (
            aws.s3.BucketObjectv2(
                f"{kind}-package-{suffix}",
                bucket=self.bucket.id,
                key=key,
                source=pulumi.FileAsset(str(lambda_build.write_package(package, BUILD_DIR))),
                source_hash=package.sha256,  # a new object version only when the bytes change
                tags=tags,
                opts=after_versioning,
            )
            for kind, key, package in (
                ("function", FUNCTION_PACKAGE_KEY, lambda_build.function_package()),
                ("layer", LAYER_PACKAGE_KEY, lambda_build.layer_package()),
            )
        )

        # --- layer ------------------------------------------------------------------------
        self.layer = aws.lambda_.LayerVersion(
            f"shared-deps-{suffix}",
            layer_name=names.layer,
            description=f"Shared dependencies of the {suffix} environment",
            s3_bucket=self.bucket.id,
            s3_key=layer_object.key,
            s3_object_version=layer_object.version_id,
            compatible_runtimes=[baseline.RUNTIME],
            compatible_architectures=[baseline.ARCHITECTURE],
            opts=child,
        )

        # --- role: may write its own logs, nothing else -----------------------------------
        self.role = aws.iam.Role(
            f"lambda-role-{suffix}",
            name=names.role,
            description=f"Execution role of the {suffix} environment",
            assume_role_policy=json.dumps(LAMBDA_TRUST_POLICY),
            tags=tags,
            opts=child,
        )
        logs_policy = aws.iam.RolePolicy(
            f"lambda-role-logs-{suffix}",
            name=ROLE_LOGS_POLICY_NAME,
            role=self.role.id,
            policy=pulumi.Output.all(region.region, account_id.account_id).apply(
                lambda values: json.dumps(spec.role_logs_policy(values[0], values[1]))
            ),
            opts=child,
        )

        # --- secrets ----------------------------------------------------------------------
        self.secret_versions: list[aws.secretsmanager.SecretVersion] = []
        self.database_url_secret = self._secret(names.database_url_secret, args.database_url, tags)
        self.api_key_secret = self._secret(names.api_key_secret, args.api_key, tags)

        # --- log groups and functions -----------------------------------------------------
        self.log_groups: list[aws.cloudwatch.LogGroup] = []
        self.functions: list[aws.lambda_.Function] = []
        for function in spec.functions:
            log_group = aws.cloudwatch.LogGroup(
                f"log-group-{function.name}",
                name=function.log_group,
                tags=tags,  # no retention_in_days: never expire (the baseline)
                opts=child,
            )
            self.log_groups.append(log_group)
            self.functions.append(
                self._function(function, tags, function_object, logs_policy, log_group)
            )

        primary = self.functions[0]
        self.register_outputs(
            {
                "functionName": primary.name,
                "functionArn": primary.arn,
                "roleArn": self.role.arn,
                "bucket": self.bucket.bucket,
                "layerArn": self.layer.arn,
                "logGroup": self.log_groups[0].name,
                "databaseUrlSecretArn": self.database_url_secret.arn,
                "apiKeySecretArn": self.api_key_secret.arn,
            }
        )

    def _secret(
        self, name: str, value: pulumi.Input[str], tags: dict[str, str]
    ) -> aws.secretsmanager.Secret:
        secret = aws.secretsmanager.Secret(
            name,
            name=name,
            recovery_window_in_days=0,  # destroyable at once
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.secret_versions.append(
            aws.secretsmanager.SecretVersion(
                f"{name}-value",
                secret_id=secret.id,
                secret_string=pulumi.Output.secret(value),
                opts=pulumi.ResourceOptions(parent=self),
            )
        )
        return secret

    def _function(
        self,
        function: FunctionSpec,
        tags: dict[str, str],
        package: aws.s3.BucketObjectv2,
        logs_policy: aws.iam.RolePolicy,
        log_group: aws.cloudwatch.LogGroup,
    ) -> aws.lambda_.Function:
        settings = function.settings
        return aws.lambda_.Function(
            function.name,
            name=function.name,
            description=function.description,
            role=self.role.arn,
            runtime=function.runtime,
            handler=function.handler,
            architectures=[function.architecture],
            s3_bucket=package.bucket,
            s3_key=package.key,
            s3_object_version=package.version_id,
            memory_size=settings.memory_mb,
            timeout=settings.timeout_s,
            environment={"variables": dict(function.environment)},
            tracing_config={"mode": settings.tracing_mode},
            layers=[self.layer.arn],
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[log_group, logs_policy]),
        )
