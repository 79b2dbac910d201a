"""Deterministic zips of the function code and of the shared-dependency layer.

Same inputs, same bytes: entries sorted, timestamps fixed, permissions fixed. The Pulumi
stack, the sandbox seeder and the tests all build through here, so the object version they
deploy only changes when the code or a dependency does.

The layer is built from the distributions installed in the current environment (named by
`lambda/layer/requirements.txt`, with their dependencies), under `python/` as Lambda expects,
without network access. Compiled extension modules are left out so the layer is pure Python
and runs on any Lambda Python runtime (wrapt, used by the X-Ray SDK, falls back to Python).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata as metadata
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

_FIXED_TIME: Final = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry
_FILE_MODE: Final = 0o644 << 16
# Provided by every Lambda Python runtime; bundling them would only shadow AWS's copies.
_RUNTIME_PROVIDED: Final = frozenset(
    {"boto3", "botocore", "s3transfer", "jmespath", "urllib3", "python-dateutil", "six"}
)
_SKIPPED_SUFFIXES: Final = (".pyc", ".so", ".pyd", ".dylib")


def source_root() -> Path:
    """`lambda/` in a checkout, or its copy inside an installed wheel."""
    package = Path(__file__).resolve().parents[1]  # optimizer_async/
    for candidate in (package / "_lambda_src", package.parent / "lambda"):
        if (candidate / "function").is_dir():
            return candidate
    raise FileNotFoundError("the lambda/ sources are not next to optimizer_async")


@dataclass(frozen=True)
class Package:
    """A built zip and what identifies it."""

    name: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def _write(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
    info.external_attr = _FILE_MODE
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data, compresslevel=9)


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(entries):
            _write(archive, name, entries[name])
    return buffer.getvalue()


def _wanted(path: Path) -> bool:
    return "__pycache__" not in path.parts and not path.name.endswith(_SKIPPED_SUFFIXES)


@functools.cache
def function_package() -> Package:
    """The handler code, at the root of the zip (Handler `handler.lambda_handler`)."""
    root = source_root() / "function"
    entries = {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in root.rglob("*")
        if path.is_file() and _wanted(path.relative_to(root))
    }
    return Package("function.zip", _zip(entries))


def _requirements() -> list[Requirement]:
    text = (source_root() / "layer" / "requirements.txt").read_text()
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [Requirement(line) for line in lines if line]


def _closure(requirements: list[Requirement]) -> dict[str, metadata.Distribution]:
    """Installed distributions needed by the requirements, runtime-provided ones excluded."""
    found: dict[str, metadata.Distribution] = {}
    pending = [(requirement, frozenset(requirement.extras)) for requirement in requirements]
    while pending:
        requirement, extras = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in _RUNTIME_PROVIDED:
            continue
        try:
            distribution = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise RuntimeError(
                f"layer requirement {requirement} is not installed; "
                "install the 'sandbox' or 'stack' extra first"
            ) from None
        if not requirement.specifier.contains(distribution.version, prereleases=True):
            raise RuntimeError(f"layer needs {requirement}, found {name} {distribution.version}")
        if name in found:
            continue
        found[name] = distribution
        for text in distribution.requires or []:
            dependency = Requirement(text)
            environments = [
                {**{k: str(v) for k, v in default_environment().items()}, "extra": extra}
                for extra in extras or {""}
            ]
            if dependency.marker is None or any(
                dependency.marker.evaluate(env) for env in environments
            ):
                pending.append((dependency, frozenset(dependency.extras)))
    return found


@functools.cache
def layer_package() -> Package:
    """`python/<package files>` for every distribution the layer needs, plus a manifest."""
    distributions = _closure(_requirements())
    entries: dict[str, bytes] = {}
    for distribution in distributions.values():
        for file in distribution.files or []:
            relative = Path(str(file))
            if relative.parts[0] == ".." or not _wanted(relative):
                continue  # scripts installed outside site-packages, caches, native code
            entries[f"python/{relative.as_posix()}"] = Path(str(file.locate())).read_bytes()
    manifest = {name: distributions[name].version for name in sorted(distributions)}
    entries["layer-manifest.json"] = json.dumps(manifest, indent=2, sort_keys=True).encode()
    return Package("layer.zip", _zip(entries))


def write_package(package: Package, directory: Path) -> Path:
    """Write the zip under `directory` (only if its bytes changed) and return the path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / package.name
    if not path.exists() or path.read_bytes() != package.data:
        path.write_bytes(package.data)
    return path
