from __future__ import annotations

import io
import json
import zipfile

from optimizer_async.definitions import lambda_build


def _fresh_builds() -> tuple[bytes, bytes]:
    lambda_build.function_package.cache_clear()
    lambda_build.layer_package.cache_clear()
    return lambda_build.function_package().data, lambda_build.layer_package().data


def test_two_builds_give_identical_bytes() -> None:
    assert _fresh_builds() == _fresh_builds()


def test_function_zip_holds_the_handler_at_its_root() -> None:
    archive = zipfile.ZipFile(io.BytesIO(lambda_build.function_package().data))
    assert "handler.py" in archive.namelist()
    assert all(info.date_time == (1980, 1, 1, 0, 0, 0) for info in archive.infolist())


def test_layer_is_pure_python_under_python_dir() -> None:
    archive = zipfile.ZipFile(io.BytesIO(lambda_build.layer_package().data))
    names = archive.namelist()
    assert names == sorted(names)
    assert "python/aws_lambda_powertools/__init__.py" in names
    assert "python/aws_xray_sdk/__init__.py" in names
    assert not [n for n in names if n.endswith((".so", ".pyc"))]
    assert not [n for n in names if n.startswith("python/boto3/")]  # the runtime provides it
    manifest = json.loads(archive.read("layer-manifest.json"))
    assert {"aws-lambda-powertools", "aws-xray-sdk", "fastjsonschema"} <= set(manifest)
