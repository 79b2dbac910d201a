"""The container image and the job-runner examples run the command line the tests run, with
shard settings that agree: N pods or matrix jobs, shards 0..N-1 of N, then one merge."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from optimizer_async import cli
from optimizer_async.fleet.shards import Shard
from optimizer_async.runs.configs import UsageError

ROOT = Path(__file__).resolve().parents[2]


def _config(args: list[str], tmp_path: Path, **environ: str) -> Any:
    """The run configuration the arguments make, output files moved under tmp_path."""
    args = [str(tmp_path / Path(a).name) if a.endswith(".json") else a for a in args]
    return cli.parse_config(args, environ)


def test_the_image_runs_the_command_line_as_a_user_not_root() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"lambda-optimizer": "optimizer_async.cli:main"}
    assert 'ENTRYPOINT ["lambda-optimizer"]' in dockerfile
    users = re.findall(r"^USER (\S+)$", dockerfile, re.MULTILINE)
    assert users
    assert users[-1].isdigit()
    assert int(users[-1]) > 0


def test_the_indexed_job_runs_one_shard_per_index(tmp_path: Path) -> None:
    job = yaml.safe_load((ROOT / "deploy/kubernetes/indexed-job.yaml").read_text())
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    (container,) = spec["template"]["spec"]["containers"]
    assert spec["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    for index in range(spec["completions"]):
        args = [a.replace("$(JOB_COMPLETION_INDEX)", str(index)) for a in container["args"]]
        config = _config(args, tmp_path, JOB_COMPLETION_INDEX=str(index))
        assert config.shard == Shard(index, spec["completions"])
        assert config.find_all
        assert config.output == "json"
    assert spec["parallelism"] == spec["completions"]


def test_the_ci_matrix_runs_every_shard_then_merges(tmp_path: Path) -> None:
    workflow = yaml.safe_load((ROOT / "deploy/ci/github-actions.yml").read_text())
    shard_job, merge_job = workflow["jobs"]["shard"], workflow["jobs"]["merge"]
    indexes = shard_job["strategy"]["matrix"]["shard"]
    runs = [step.get("run", "") for step in shard_job["steps"]]
    (command,) = [run for run in runs if run.startswith("lambda-optimizer")]
    for index in indexes:
        argv = shlex.split(command.replace("${{ matrix.shard }}", str(index)))
        assert argv[0] == "lambda-optimizer"
        assert _config(argv[1:], tmp_path).shard == Shard(index, len(indexes))
    assert indexes == list(range(len(indexes)))
    assert merge_job["needs"] == "shard"
    (merging,) = [s["run"] for s in merge_job["steps"] if "report merge" in s.get("run", "")]
    assert _config(shlex.split(merging)[1:], tmp_path).command == "merge"


def test_the_deployment_serves_with_probes_and_a_token(tmp_path: Path) -> None:
    deployment = yaml.safe_load((ROOT / "deploy/kubernetes/deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    token = next(e for e in container["env"] if e["name"] == "LAMBDA_OPTIMIZER_API_TOKEN")
    assert "secretKeyRef" in token["valueFrom"]
    config = _config(container["args"], tmp_path, LAMBDA_OPTIMIZER_API_TOKEN="x" * 32)
    assert config.command == "serve"
    assert config.serve is not None
    assert (config.serve.host, config.serve.port) == ("0.0.0.0", 8080)  # noqa: S104 - a pod
    assert config.serve.port == container["ports"][0]["containerPort"]
    assert (config.serve.interval_s, config.serve.max_changes) == (900.0, 50)
    # Listening beyond 127.0.0.1 without the token is refused.
    with pytest.raises(UsageError, match="without a token"):
        _config(container["args"], tmp_path)


def test_the_images_default_command_is_the_service_and_needs_a_token(tmp_path: Path) -> None:
    (command,) = re.findall(r"^CMD (\[.*\])$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    args = json.loads(command)
    assert _config(args, tmp_path, LAMBDA_OPTIMIZER_API_TOKEN="x" * 32).command == "serve"
    with pytest.raises(UsageError, match="LAMBDA_OPTIMIZER_API_TOKEN"):
        _config(args, tmp_path)
