"""The command line: bad input stops before any AWS call; the three entry points agree."""

from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from optimizer_async.cli import main, parse_config
from optimizer_async.sandbox.server import EmbeddedSandbox

pytestmark = pytest.mark.sandbox_only("the CLI's own --sandbox and a sandbox in another process")
ROOT = Path(__file__).resolve().parents[2]


def _run(args: list[str], endpoint: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "ENVIRONMENT_SUFFIX"}
    environ.update({"AWS_ENDPOINT_URL": endpoint, **env})
    return subprocess.run(
        [sys.executable, "-m", "optimizer_async", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        ([], {}, "no environment suffix: set ENVIRONMENT_SUFFIX, pass --suffix or --all"),
        (["--all", "--suffix", "dev"], {}, "--all finds the environments: leave out --suffix"),
        (["--suffix", "dev", "--match", "pr-*"], {}, "--match and --exclude filter what --all"),
        (["--all", "--exclude", "pr-1,"], {}, "--exclude takes a glob of suffixes (e.g. 'pr-*')"),
        (["iam-policy", "--all", "--suffix", "dev"], {}, "--all finds the environments"),
        (["--suffix", "dev", "--shard", "4/4"], {}, "--shard 4/4: the index counts from 0 to 3"),
        (["--suffix", "dev", "--shard", "auto/4"], {}, "run where JOB_COMPLETION_INDEX or"),
        (["report", "merge"], {}, "the following arguments are required: REPORT"),
        ([], {"ENVIRONMENT_SUFFIX": "Dev_1"}, "environment suffix 'Dev_1' must be lower-case"),
        (["--suffix", "dev,-x"], {}, "environment suffix '-x' must be lower-case"),
        (["--suffix", "dev", "--output", "xml"], {}, "argument --output: invalid choice: 'xml'"),
        (["--suffix", "dev", "--concurrency", "0"], {}, "--concurrency must be at least 1"),
        (["--suffix", "dev", "--region", "mars-1"], {}, "region 'mars-1' is not an AWS region"),
        (
            ["--suffix", "dev", "--targets", "/nonexistent.toml"],
            {},
            "targets file /nonexistent.toml",
        ),
        (
            ["--suffix", "dev", "--seed", "dev"],
            {},
            "--seed shapes the embedded sandbox: it needs --sandbox",
        ),
        (  # once silently ignored without --sandbox
            ["--suffix", "dev", "--sandbox-profile", "none"],
            {},
            "--sandbox-profile shapes the embedded sandbox: it needs --sandbox",
        ),
        (
            ["serve", "--suffix", "dev", "--bake", "1h"],
            {},
            "unrecognized arguments: --bake 1h",
        ),
        (
            ["--sandbox", "--seed", "dev", "--profile-mix", "steady,lazy"],
            {},
            "unknown workload profile 'lazy'",
        ),
        (["--suffix", "dev", "--skip", "alarm"], {}, "unknown step(s) in --skip: alarm (steps: "),
        (["--suffix", "dev", "--only", "alarms,memory"], {}, "unknown step(s) in --only: memory"),
        (["--suffix", "dev", "--guardrails", "loose"], {}, "argument --guardrails: invalid choice"),
        (["rollback"], {}, "the following arguments are required: --run-id"),
        (["apply", "/nonexistent-plan.json"], {}, "plan file /nonexistent-plan.json: No such file"),
        (["--suffix", "dev", "--plan-out", "p.json"], {}, "--plan-out needs --dry-run"),
        (["--suffix", "dev", "--state-bucket", "bucket"], {}, "is not s3://BUCKET[/PREFIX]"),
        (["rollback", "--run-id", "last"], {}, "run id 'last' is not one"),
        (["rollback", "--run-id", "20261127T000000Z-abcdef"], {}, "no run 20261127T000000Z-abcdef"),
        (["--suffix", "dev", "--lookback-days", "0"], {}, "--lookback-days must be between 1"),
        (["--suffix", "dev", "--max-scan-gb", "-1"], {}, "--max-scan-gb must not be negative"),
        (["--suffix", "dev", "--bake", "2h", "--dry-run"], {}, "it cannot go with --dry-run"),
        (["--suffix", "dev", "--bake", "soon"], {}, "--bake 'soon' is not a duration"),
        (["--suffix", "dev", "--bake", "1h", "--time-scale", "4"], {}, "cannot go with --time"),
        (["--suffix", "dev", "--bake", "30s"], {}, "--bake 30s must be between 1m and 24h"),
        (["--suffix", "dev", "--bake", "25h"], {}, "--bake 25h must be between 1m and 24h"),
        (
            ["runs", "--state-bucket", "s3://runs-b"],
            {"AWS_REGION": "mars-1"},
            "region 'mars-1' is not",
        ),
        (["savings"], {}, "the following arguments are required: --run-id"),
        (
            ["runs", "--state-dir", "d", "--state-bucket", "s3://runs-b"],
            {},
            "--state-dir and --state-bucket are exclusive",
        ),
        (
            [
                "--suffix",
                "dev",
                "--dry-run",
                "--plan-out",
                "same.json",
                "--report-file",
                "same.json",
            ],
            {},
            "--plan-out and --report-file name the same file same.json: give each its own",
        ),
        (
            ["--suffix", "dev", "--report-file", "r.md", "--log-file", "./r.md"],
            {},
            "--report-file and --log-file name the same file r.md: give each its own",
        ),
        (
            ["--suffix", "dev", "--time-scale", "10"],
            {"AWS_ENDPOINT_URL": ""},
            "--time-scale runs a sandbox's clock: it needs --sandbox or an endpoint",
        ),
        (
            ["--sandbox", "--suffix", "dev", "--functions-per-env", "2"],
            {},
            "--functions-per-env shapes the environments --seed makes: it needs --seed",
        ),
        (
            ["--sandbox", "--suffix", "dev", "--profile-mix", "steady"],
            {},
            "--profile-mix shapes the environments --seed makes: it needs --seed",
        ),
        (
            ["--sandbox", "--seed", "dev", "--demo", "--dry-run"],
            {},
            "--demo makes its own dry run, run and re-run: leave out --dry-run",
        ),
        (  # an iam-policy option, never read as a run's --accounts
            ["--suffix", "dev", "--account", "123456789012"],
            {},
            "unrecognized arguments: --account 123456789012",
        ),
        (["savings", "--run-id", "last"], {}, "run id 'last' is not one"),
        (  # once accepted and ignored: its listing has no details to choose
            ["savings", "--run-id", "20261127T000000Z-abcdef", "--details", "all"],
            {},
            "unrecognized arguments: --details all",
        ),
        (
            ["savings", "--run-id", "20261127T000000Z-abcdef", "--days", "0"],
            {},
            "--days must be between 1 and 455",
        ),
        (["savings", "--run-id", "20261127T000000Z-abcdef"], {}, "no run 20261127T000000Z-abc"),
        (["--suffix", "dev", "--prices", "guess"], {}, "argument --prices: invalid choice"),
        (["--suffix", "dev", "--max-scan-gb", "inf"], {}, "--max-scan-gb: must be a finite"),
        (["--suffix", "dev", "--log-file", "/etc/hostname/x.log"], {}, "/etc/hostname is a file"),
        (["--suffix", "dev", "--report-file", "/tmp"], {}, "--report-file /tmp is a directory"),
        (
            ["--suffix", "dev", "--dry-run", "--plan-out", "/etc/hostname/p.json"],
            {},
            "--plan-out /etc/hostname/p.json: /etc/hostname is a file, not a directory",
        ),
        (["--suffix", "dev", "--time-scale", "nan"], {}, "--time-scale: must be a finite"),
        (["--suffix", "dev", "--quota", "lambda.GetFunction"], {}, "--quota: a quota is BUCKET="),
        (["--suffix", "dev", "--quota", "lambda.Invoke=5"], {}, "no quota bucket 'lambda.Invoke'"),
        (["--suffix", "dev", "--quota", "logs.PutRetentionPolicy=0"], {}, "must be a positive"),
        (["--suffix", "dev", "--concurrency", "2.5"], {}, "--concurrency: invalid int value"),
        (["iam-policy", "--for", "everything"], {}, "argument --for: invalid choice"),
        (["iam-policy", "--account", "12345"], {}, "--account '12345' is not a 12-digit"),
        (["iam-policy", "--suffix", "Dev"], {}, "environment suffix 'Dev' must be lower-case"),
        (["iam-policy", "--only", "memory"], {}, "unknown step(s) in --only: memory"),
        (
            ["--suffix", "dev", "--skip", "dead_letter_queue"],
            {},
            "step function_configuration needs dead_letter_queue, which the selection leaves out",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line_and_no_aws_call(
    sandbox: EmbeddedSandbox, args: list[str], env: dict[str, str], message: str
) -> None:
    sandbox.reset_stats()
    result = _run(args, sandbox.endpoint_url, **env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("lambda-optimizer: error: ")
    assert message in lines[0]
    assert result.stdout == ""
    assert sandbox.stats()["total"] == 0


def test_runs_over_a_local_state_dir_takes_no_region_nor_endpoint(
    sandbox: EmbeddedSandbox, tmp_path: Path
) -> None:
    """Only a state bucket's records need AWS: `runs` over a directory checks neither."""
    sandbox.reset_stats()
    result = _run(["runs", "--state-dir", str(tmp_path)], "localhost:4566", AWS_REGION="local")
    assert (result.returncode, result.stderr) == (0, "")
    assert sandbox.stats()["total"] == 0


def test_iam_policy_prints_the_policy_and_calls_nothing(sandbox: EmbeddedSandbox) -> None:
    sandbox.reset_stats()
    args = ["iam-policy", "--for", "plan", "--suffix", "dev", "--account", "123456789012"]
    result = _run([*args, "--state-bucket", "s3://team-state/ci"], sandbox.endpoint_url)
    assert (result.returncode, result.stderr) == (0, "")
    document = json.loads(result.stdout)
    actions = {a for statement in document["Statement"] for a in statement["Action"]}
    assert "lambda:GetFunction" in actions
    assert "lambda:UpdateFunctionConfiguration" not in actions  # a plan writes nothing
    state = {
        resource
        for statement in document["Statement"]
        if "s3:GetObject" in statement["Action"] or "s3:ListBucket" in statement["Action"]
        for resource in statement["Resource"]
    }
    assert state == {"arn:aws:s3:::team-state", "arn:aws:s3:::team-state/ci/*"}
    assert sandbox.stats()["total"] == 0

    many = [f"env{n}" for n in range(8)]
    large = _run(["iam-policy", "--suffix", ",".join(many)], sandbox.endpoint_url)
    assert large.returncode == 0
    assert "over IAM's 6144-character limit of a managed policy" in large.stderr


def test_bad_targets_file_is_a_usage_error(sandbox: EmbeddedSandbox, tmp_path: Path) -> None:
    targets = tmp_path / "targets.toml"
    targets.write_text("[function]\nmemory_mb = 64\n")
    result = _run(["--suffix", "dev", "--targets", str(targets)], sandbox.endpoint_url)
    assert result.returncode == 2
    assert "memory 64 MB is outside Lambda's 128-10240 MB" in result.stderr
    targets.write_text("[function]\nmemory = 512\n")
    result = _run(["--suffix", "dev", "--targets", str(targets)], sandbox.endpoint_url)
    assert "unknown key(s) in [function]: memory" in result.stderr


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[function]\nmemory_mb = 1024.5", "[function] memory_mb = 1024.5: must be a whole number"),
        ("[function]\ntimeout_s = 29.5", "[function] timeout_s = 29.5: must be a whole number"),
        ("[function]\nreserved_concurrency = 49.5", "reserved_concurrency = 49.5: must be a whole"),
        ('[function]\nmemory_mb = "1024"', "[function] memory_mb = '1024': must be a whole"),
        ("[function]\nmemory_mb = true", "[function] memory_mb = true: must be a whole number"),
        ("[function]\ntracing_mode = 1", "[function] tracing_mode = 1: must be text"),
        ("[alarms]\nduration_threshold_ms = nan", "duration_threshold_ms = nan: must be a finite"),
        ("[alarms]\nerror_rate_threshold_percent = inf", "= inf: must be a finite number"),
        ('[guardrails]\nmode = "loose"', "mode = 'loose': must be one of adjust, strict, off"),
        ("[guardrails]\nlookback_days = 7.5", "[guardrails] lookback_days = 7.5: must be a whole"),
        ("[function]\nmemory_mb = 64", "[function] memory 64 MB is outside Lambda's 128-10240"),
        ("[function\n", "targets file"),
    ],
)
def test_targets_are_typed_before_ranges_and_nothing_is_called(
    sandbox: EmbeddedSandbox,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    toml: str,
    message: str,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", sandbox.endpoint_url)
    targets = tmp_path / "targets.toml"
    targets.write_text(toml + "\n")
    sandbox.reset_stats()
    code = main(["--suffix", "dev", "--targets", str(targets)])
    err = capsys.readouterr().err
    assert code == 2
    (line,) = err.strip().splitlines()
    assert line.startswith("lambda-optimizer: error: targets file ")
    assert message in line
    assert sandbox.stats()["total"] == 0


@pytest.mark.parametrize(
    "suffix",
    ["../etc", "dev;rm -rf /", "a" * 80, "d\u00e9v", "$(id)", "dev\ndev", "pr-1*", "-dev", ""],
)
def test_hostile_suffixes_are_refused_in_one_line_before_any_call(
    sandbox: EmbeddedSandbox,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    suffix: str,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", sandbox.endpoint_url)
    monkeypatch.delenv("ENVIRONMENT_SUFFIX", raising=False)
    sandbox.reset_stats()
    code = main(["--suffix", suffix, "--dry-run"])
    captured = capsys.readouterr()
    assert code == 2
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("lambda-optimizer: error: ")
    assert "Traceback" not in captured.err
    assert captured.out == ""
    assert sandbox.stats()["total"] == 0


def test_json_output_is_only_the_report_and_logs_are_json_lines(
    sandbox: EmbeddedSandbox, tmp_path: Path
) -> None:
    from optimizer_async.sandbox.seeder import Seeder

    Seeder(sandbox.endpoint_url).seed(["dev"])
    result = _run(
        ["--output", "json", "--log-format", "json", "--log-level", "debug",
         "--state-dir", str(tmp_path), "--report-file", str(tmp_path / "report.md")],
        sandbox.endpoint_url,
        ENVIRONMENT_SUFFIX="dev",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["environments"][0]["suffix"] == "dev"
    assert (tmp_path / "report.md").read_text().startswith("# lambda-optimizer run ")

    events = [json.loads(line) for line in result.stderr.splitlines()]
    assert events
    for event in events:
        assert {"timestamp", "level", "event", "run_id"} <= set(event)
        assert event["timestamp"].endswith("Z") or event["timestamp"].endswith("+00:00")
        assert event["run_id"] == report["run_id"]
    calls = [e for e in events if e["event"] == "aws.call"]
    assert {"aws_service", "aws_operation", "attempt", "duration_ms"} <= set(calls[0])
    assert any(e.get("suffix") == "dev" for e in events)
    assert any(e.get("function") == "lambda-function-dev" and e.get("step") for e in events)
    assert any(e["event"] == "waiter.poll" for e in events)
    secrets_seen = [e for e in events if "postgresql://" in json.dumps(e)]
    assert secrets_seen == []


def test_three_entry_points_are_one_program() -> None:
    scripts = [
        [sys.executable, "-m", "optimizer_async", "--help"],
        [sys.executable, str(ROOT / "lib" / "optimize.py"), "--help"],
        [str(Path(sys.executable).parent / "lambda-optimizer"), "--help"],
    ]
    outputs = [
        subprocess.run(s, capture_output=True, text=True, check=True, timeout=60).stdout
        for s in scripts
    ]
    assert outputs[0] == outputs[1] == outputs[2]
    assert "--dry-run" in outputs[0]


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a background job of a script starts


@pytest.mark.parametrize(
    ("signum", "inherit_ignored"),
    [(signal.SIGINT, False), (signal.SIGINT, True), (signal.SIGTERM, False)],
    ids=["SIGINT", "SIGINT-while-inherited-ignored", "SIGTERM"],
)
def test_a_signal_stops_the_run_with_its_report(
    tmp_path: Path, signum: signal.Signals, inherit_ignored: bool
) -> None:
    """Mid-apply, SIGINT or SIGTERM (even with SIGINT ignored by the parent): no new write
    starts, the report is written and printed, exit 128 + the signal, one line saying so."""
    environ = {
        k: v for k, v in os.environ.items() if k not in ("ENVIRONMENT_SUFFIX", "AWS_ENDPOINT_URL")
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "optimizer_async", "--sandbox", "--seed", "dev",
         "--sandbox-profile", "aws", "--log-format", "json", "--state-dir", str(tmp_path),
         "--output", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environ,
        preexec_fn=_ignore_sigint if inherit_ignored else None,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        for line in process.stderr:  # interrupt mid-apply: after the first write has begun
            if json.loads(line)["event"] == "environment.before_image_saved":
                break
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 128 + signum
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(f"lambda-optimizer: interrupted by {signum.name}"), last
    report = json.loads(stdout)
    assert report["stopped_by"] == signum.name
    (recorded,) = (tmp_path / "runs").glob("*/report.json")
    assert json.loads(recorded.read_text())["stopped_by"] == signum.name
    changes = [c for e in report["environments"] for f in e["functions"] for c in f["changes"]]
    assert changes
    unfinished = [c for c in changes if c["status"] != "applied"]
    assert all(
        c["error"].startswith(("not started: stopped by", "not finished")) for c in unfinished
    )


@pytest.mark.parametrize(
    ("given", "duration_s", "poll_s"),
    [("1h30m", 5400.0, 300.0), ("2h", 7200.0, 300.0), ("4m", 240.0, 60.0), ("10m", 600.0, 120.0)],
)
def test_bake_durations(given: str, duration_s: float, poll_s: float) -> None:
    """Polled every whole minute up to five, at least four times in the bake."""
    bake = parse_config(["--suffix", "dev", "--bake", given], {}).bake
    assert bake is not None
    assert (bake.duration_s, bake.poll_s) == (duration_s, poll_s)


class _NotAws(http.server.BaseHTTPRequestHandler):
    """Any web server: answers every request with a page."""

    def do_POST(self) -> None:
        body = b"<html><body>hello</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed again when the block ends


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("no credentials", "lambda-optimizer: no AWS credentials: set AWS_PROFILE"),
        ("unknown profile", "lambda-optimizer: AWS profile 'nope' is not configured"),
        ("closed port", "lambda-optimizer: cannot reach http://127.0.0.1:"),
        ("not AWS", "did not answer like AWS (KeyError): check AWS_ENDPOINT_URL"),
    ],
)
def test_aws_unusable_is_one_line_and_exit_1(
    sandbox: EmbeddedSandbox, tmp_path: Path, case: str, message: str
) -> None:
    env = {"AWS_EC2_METADATA_DISABLED": "true"}
    endpoint = sandbox.endpoint_url
    server = None
    if case == "no credentials":
        env |= {"AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
                "AWS_CONFIG_FILE": str(tmp_path / "none")}  # fmt: skip
    elif case == "unknown profile":
        env |= {"AWS_PROFILE": "nope", "AWS_CONFIG_FILE": str(tmp_path / "none")}
    elif case == "closed port":
        endpoint = f"http://127.0.0.1:{_closed_port()}"
    else:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotAws)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    credentials = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE")
    keep_credentials = case not in ("no credentials", "unknown profile")
    environ = {k: v for k, v in os.environ.items() if keep_credentials or k not in credentials}
    environ |= env | {"AWS_ENDPOINT_URL": endpoint}
    environ.pop("ENVIRONMENT_SUFFIX", None)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "optimizer_async", "--suffix", "dev", "--dry-run",
             "--state-dir", str(tmp_path / "state")],
            capture_output=True, text=True, env=environ, timeout=120, check=False,
        )  # fmt: skip
    finally:
        if server is not None:
            server.shutdown()
    assert result.returncode == 1, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert message in line
    assert result.stdout == ""
