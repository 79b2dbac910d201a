"""Run records in S3 (`--state-bucket`): for CI runners whose disks do not outlive them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from optimizer_async.aws.gateway import Aws
from optimizer_async.records.state import FINGERPRINT_KEY_NAME, S3StateStore
from tests.conftest import ClientFactory
from tests.integration.conftest import Optimize, Unique
from tests.integration.test_rollback import assert_as_before

Seed = Callable[..., list[str]]


def safe_bucket(client: ClientFactory, name: str, *, safe: bool = True) -> str:
    s3 = client("s3")
    s3.create_bucket(Bucket=name)
    if safe:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        s3.put_bucket_encryption(
            Bucket=name,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
        )
        s3.put_public_access_block(
            Bucket=name,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
    return name


@pytest.mark.aws_behaviour("s3-conditional-delete")
def test_records_in_the_bucket_roll_back_with_no_local_state(
    seed: Seed, optimize: Optimize, client: ClientFactory, unique: Unique, tmp_path: Path
) -> None:
    (dev,) = seed(unique("dev"))
    bucket = safe_bucket(client, unique("state"))
    where = f"s3://{bucket}/team-a"
    code, run = optimize("--suffix", dev, "--state-bucket", where)
    assert code == 0, run
    (env,) = run["environments"]
    assert env["before_images"] == f"{where}/runs/{run['run_id']}/before-images/{dev}.json"
    s3 = client("s3")
    key = env["before_images"].removeprefix(f"s3://{bucket}/")
    stored = s3.get_object(Bucket=bucket, Key=key)
    assert stored["ServerSideEncryption"] == "AES256"
    image = json.loads(stored["Body"].read())
    assert not (tmp_path / "state" / "runs").exists()  # nothing on the runner's disk

    code, rollback = optimize("rollback", "--run-id", run["run_id"], "--state-bucket", where)
    assert code == 0, rollback
    stored_key = s3.get_object(Bucket=bucket, Key=f"team-a/{FINGERPRINT_KEY_NAME}")
    assert stored_key["ServerSideEncryption"] == "AES256"
    key = bytes.fromhex(json.loads(stored_key["Body"].read())["key"])
    assert_as_before(client, image, key)
    code, listed = optimize("runs", "--state-bucket", where)
    assert code == 0
    assert {r["run_id"] for r in listed["runs"]} == {run["run_id"], rollback["run_id"]}


def test_a_bucket_that_cannot_keep_records_safely_is_refused_before_any_write(
    seed: Seed, optimize: Optimize, client: ClientFactory, unique: Unique
) -> None:
    (dev,) = seed(unique("dev"))
    bucket = safe_bucket(client, unique("loose"), safe=False)
    code, report = optimize("--suffix", dev, "--state-bucket", f"s3://{bucket}")
    assert (code, report) == (2, {})
    function = f"lambda-function-{dev}"
    assert (
        client("lambda").get_function(FunctionName=function)["Configuration"]["MemorySize"] == 3008
    )
    assert client("s3").list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
    code, _ = optimize("--suffix", dev, "--state-bucket", f"s3://{unique('missing')}")
    assert code == 2


async def test_a_listing_reads_every_page_of_keys(
    aws: Aws, client: ClientFactory, unique: Unique
) -> None:
    """S3 answers a continuation in `NextContinuationToken` and takes it back as
    `ContinuationToken`: pages of two keys, five records, every one listed."""
    bucket = safe_bucket(client, unique("paged"))
    store = S3StateStore(aws, bucket, "team", page_size=2)
    for n in range(5):
        await store.write(f"runs/r{n}/run.json", {"n": n})
    assert await store.keys("runs/") == [f"runs/r{n}/run.json" for n in range(5)]
