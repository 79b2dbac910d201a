"""Seed environments straight into this process's moto backends: `serve --seed`'s fast path.

The HTTP Seeder makes some 17 calls an environment through boto3, HTTP, werkzeug, Flask
and moto's request parsing: about 160 ms an environment, over 5 minutes for 2,000. This
seeder makes the backend calls moto's response handlers make for those same requests,
with the arguments they would parse from them (moto's patches apply as over HTTP), and
attaches the workload as `PUT /_sandbox/workload` does. The request contents come from
the functions the HTTP Seeder uses; tests/sandbox/test_direct_seeder.py seeds one
environment each way and compares every answer the optimizer reads. The HTTP Seeder stays
the way to seed LocalStack or a sandbox in another process.

Any account: `account_id` names the one the environments are created in (the default
account's unless given), as the HTTP Seeder does through that account's credentials.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Final

from moto.awslambda.models import lambda_backends
from moto.iam.models import iam_backends
from moto.logs.models import logs_backends
from moto.s3.models import s3_backends
from moto.secretsmanager.models import secretsmanager_backends
from moto.utilities.utils import get_partition

from optimizer_async.definitions import baseline, lambda_build
from optimizer_async.definitions.environment_spec import (
    FUNCTION_PACKAGE_KEY,
    LAMBDA_TRUST_POLICY,
    LAYER_PACKAGE_KEY,
    ROLE_LOGS_POLICY_NAME,
    EnvironmentSpec,
    FunctionSpec,
    environment_spec,
)
from optimizer_async.sandbox import runtime
from optimizer_async.sandbox.accounts import DEFAULT_ACCOUNT, checked_account
from optimizer_async.sandbox.patches import workload_lambda
from optimizer_async.sandbox.seeder import (
    SeededEnvironment,
    function_request,
    layer_request,
    secret_values,
)
from optimizer_async.sandbox.workload.profiles import (
    DEFAULT_PROFILE,
    assign,
    check_mix,
    profile_for,
)

_S3_XMLNS: Final = "http://s3.amazonaws.com/doc/2006-03-01/"
_MAX_SESSION_S: Final = 3600  # IAM's default, as moto's CreateRole fills it in


@dataclass(frozen=True)
class _Package:
    """A package as boto3 uploads it: the bytes and the checksums it sends along."""

    data: bytes
    crc32: str  # x-amz-checksum-crc32, base64 of the big-endian CRC
    sha256_hex: str  # x-amz-content-sha256 of the signed request

    @classmethod
    def of(cls, data: bytes) -> _Package:
        crc = zlib.crc32(data).to_bytes(4, "big")
        return cls(data, base64.b64encode(crc).decode(), hashlib.sha256(data).hexdigest())


@cache
def _packages() -> tuple[tuple[str, _Package], ...]:
    """Built and hashed once a process: every environment stores the same two packages."""
    return (
        (FUNCTION_PACKAGE_KEY, _Package.of(lambda_build.function_package().data)),
        (LAYER_PACKAGE_KEY, _Package.of(lambda_build.layer_package().data)),
    )


class DirectSeeder:
    """The HTTP Seeder's environments, created in moto's backends of this process.

    Needs the sandbox runtime installed and its patches applied (EmbeddedSandbox does
    both); `EmbeddedSandbox.seed` is the usual way in.
    """

    def __init__(
        self,
        region: str = "us-east-1",
        *,
        functions_per_env: int = 1,
        profiles: Sequence[str] = (DEFAULT_PROFILE,),
        account_id: str = DEFAULT_ACCOUNT,
    ) -> None:
        self.region = region
        self.account_id = checked_account(account_id)
        self.function_bases = baseline.function_bases(functions_per_env)
        self.profiles = check_mix(profiles)
        self._assigned: dict[str, str] = {}

    def seed(self, suffixes: Iterable[str]) -> list[SeededEnvironment]:
        """Seed environments in the order given; their functions take the mix in order."""
        specs = [environment_spec(suffix, self.function_bases) for suffix in suffixes]
        functions = [function.name for spec in specs for function in spec.functions]
        self._assigned = assign(functions, self.profiles)
        return [self._environment(spec) for spec in specs]

    def profile_of(self, function_name: str) -> str:
        """The profile `seed` gave a function (the mix's first for one it did not seed)."""
        return self._assigned.get(function_name, self.profiles[0])

    def _environment(self, spec: EnvironmentSpec) -> SeededEnvironment:
        role_arn = self._role(spec)
        bucket = spec.names.bucket(self.account_id)
        versions = self._bucket(spec, bucket)
        lam = lambda_backends[self.account_id][self.region]
        layer = lam.publish_layer_version(layer_request(spec, bucket, versions[LAYER_PACKAGE_KEY]))
        secret_arns = self._secrets(spec)
        for function in spec.functions:
            self._log_group(spec, function)
            request = function_request(
                spec, function, role_arn, layer.arn, bucket, versions[FUNCTION_PACKAGE_KEY]
            )
            lam.create_function(json.loads(json.dumps(request)))  # a parsed body: own copies
            self._workload(function, self.profile_of(function.name))
        return SeededEnvironment(
            suffix=spec.names.suffix,
            account_id=self.account_id,
            functions=tuple(f.name for f in spec.functions),
            role_arn=role_arn,
            bucket=bucket,
            layer_version_arn=layer.arn,
            secret_arns=secret_arns,
        )

    def _role(self, spec: EnvironmentSpec) -> str:
        iam = iam_backends[self.account_id][get_partition(self.region)]
        role = iam.create_role(
            role_name=spec.names.role,
            assume_role_policy_document=json.dumps(LAMBDA_TRUST_POLICY),
            path=None,  # type: ignore[arg-type]  # as moto's CreateRole passes an absent Path
            permissions_boundary=None,
            description=f"Execution role of the {spec.names.suffix} environment",
            tags=[{"Key": key, "Value": value} for key, value in sorted(spec.tags.items())],
            max_session_duration=_MAX_SESSION_S,  # type: ignore[arg-type]  # moto's own default
        )
        iam.put_role_policy(
            spec.names.role,
            ROLE_LOGS_POLICY_NAME,
            json.dumps(spec.role_logs_policy(self.region, self.account_id)),
        )
        return str(role.arn)

    def _bucket(self, spec: EnvironmentSpec, bucket_name: str) -> dict[str, str]:
        """The bucket as S3's PUT handlers leave it (values as parsed from their XML)."""
        s3 = s3_backends[self.account_id][get_partition(self.region)]
        bucket = s3.create_bucket(bucket_name, self.region)
        s3.put_bucket_tagging(bucket_name, dict(sorted(spec.tags.items())))
        s3.put_bucket_versioning(bucket_name, "Enabled")
        s3.put_public_access_block(
            bucket_name,
            {
                "BlockPublicAcls": "true",
                "IgnorePublicAcls": "true",
                "BlockPublicPolicy": "true",
                "RestrictPublicBuckets": "true",
            },
        )
        s3.put_bucket_encryption(
            bucket_name,
            {
                "@xmlns": _S3_XMLNS,
                "Rule": {
                    "ApplyServerSideEncryptionByDefault": {
                        "SSEAlgorithm": baseline.BUCKET_SSE_ALGORITHM
                    }
                },
            },
        )
        s3.put_bucket_lifecycle(
            bucket_name,
            [
                {
                    "ID": baseline.BUCKET_LIFECYCLE_RULE_ID,
                    "Status": "Enabled",
                    "Filter": None,  # an empty <Filter/>
                    "NoncurrentVersionExpiration": {
                        "NoncurrentDays": str(baseline.NONCURRENT_VERSION_EXPIRATION_DAYS)
                    },
                },
            ],
        )
        versions = {}
        for key_name, package in _packages():
            key = s3.put_object(
                bucket_name,
                key_name,
                package.data,
                storage="STANDARD",
                checksum_value=package.crc32,
            )
            key.set_metadata({"x-amz-content-sha256": package.sha256_hex})
            key.set_acl(bucket.acl)
            key.checksum_algorithm = "CRC32"
            s3.put_object_tagging(key, {})
            versions[key_name] = str(key.version_id)
        return versions

    def _secrets(self, spec: EnvironmentSpec) -> dict[str, str]:
        backend = secretsmanager_backends[self.account_id][self.region]
        tags = [{"Key": key, "Value": value} for key, value in sorted(spec.tags.items())]
        arns = {}
        for name, value in secret_values(spec).items():
            created = backend.create_secret(
                name=name,
                secret_string=value,
                secret_binary=None,
                description="",
                tags=[dict(tag) for tag in tags],
                kms_key_id=None,
                client_request_token=None,
                replica_regions=[],
                force_overwrite=False,
            )
            arns[name] = str(json.loads(created)["ARN"])
        return arns

    def _log_group(self, spec: EnvironmentSpec, function: FunctionSpec) -> None:
        logs_backends[self.account_id][self.region].create_log_group(
            function.log_group, dict(spec.tags)
        )

    def _workload(self, function: FunctionSpec, profile_name: str) -> None:
        """What the Seeder's `PUT /_sandbox/workload` and `.../stored-bytes` do (the model
        writes the function's log lines)."""
        profile = profile_for(profile_name, function.name)
        workload_lambda.attach(self.account_id, self.region, function.name, profile_name)
        key = (self.account_id, self.region, function.log_group)
        runtime.current().stored_bytes[key] = profile.stored_log_bytes
