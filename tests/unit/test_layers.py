"""The layer contracts (import-linter, in pyproject.toml) hold, and would catch a breach.

`make lint` runs them too; here they also guard `make test`, and a deliberately bad step
shows that a step importing the AWS gateway is refused.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint_imports(cwd: Path, pythonpath: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(pythonpath)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_contracts_hold() -> None:
    result = _lint_imports(ROOT, ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_step_importing_the_gateway_breaks_a_contract(tmp_path: Path) -> None:
    """A stand-in tree with every module the contracts name, and one step that imports the
    gateway at run time (not only for type checking)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    roots = tuple(config["root_packages"])
    named = {
        module
        for contract in config["contracts"]
        for key in ("source_modules", "forbidden_modules")
        for module in contract.get(key, [])
        if module.startswith(roots)
    } | set(roots)
    named |= {  # the layers of a layers contract
        f"{container}.{layer.strip()}"
        for contract in config["contracts"]
        for container in contract.get("containers", [])
        for layers in contract.get("layers", [])
        for layer in layers.split("|")
    }
    ignored = [
        tuple(part.strip() for part in line.split("->"))
        for contract in config["contracts"]
        for line in contract.get("ignore_imports", [])
    ]
    named |= {imported for _, imported in ignored}
    for module in named | {"optimizer_async.steps.bad"}:
        parts = module.split(".")
        for depth in range(1, len(parts)):  # every enclosing package
            package = tmp_path.joinpath(*parts[:depth])
            package.mkdir(exist_ok=True)
            (package / "__init__.py").touch()
        if ROOT.joinpath(*parts).is_dir():  # a package here too, as in the real tree
            tmp_path.joinpath(*parts).mkdir(exist_ok=True)
            tmp_path.joinpath(*parts, "__init__.py").touch()
        else:
            tmp_path.joinpath(*parts).with_suffix(".py").touch()
    (tmp_path / "optimizer_async" / "steps" / "bad.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from optimizer_async.aws import gateway  # allowed: types only\n"
        "from optimizer_async.aws.gateway import *  # not allowed\n"
    )
    for importer, imported in ignored:  # the allowed ways on, each taken once
        pattern = re.compile(re.escape(importer).replace(r"\*", r"[^.]+") + "$")
        for module in sorted(m for m in named if pattern.match(m)):
            path = tmp_path.joinpath(*module.split("."))
            path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
            with path.open("a") as source:
                source.write(f"def _{len(path.read_text())}() -> None:\n    import {imported}\n")
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())

    result = _lint_imports(tmp_path, tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 broken" in result.stdout
    # Line 4, the run-time import; line 3, for type checking only, is allowed.
    assert "optimizer_async.steps.bad -> optimizer_async.aws.gateway (l.4)" in result.stdout
    assert "(l.3)" not in result.stdout


def test_bad_input_loads_no_aws_sdk() -> None:
    """What the contract promises, at run time: rejecting input never imports the SDK."""
    script = (
        "import sys\n"
        "from optimizer_async import cli\n"
        "code = cli.main(['--suffix', 'dev', '--skip', 'nothing'])\n"
        "sdk = ('aioboto3', 'aiobotocore', 'botocore', 'boto3', 'moto')\n"
        "print(code, [m for m in sdk if m in sys.modules])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "2 []"
    assert "unknown step(s) in --skip: nothing" in result.stderr
