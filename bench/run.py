"""`make bench`: the optimizer at fleet scale against its quota floor and a sequential script.

Two parts, each on its own sandbox process (`python -m optimizer_async.sandbox serve`):

fleet  E environments x F functions (100 x 5) on the `aws` profile (AWS's quotas, latency,
       update and IAM delays) at time scale K. Phases: the sequential reference
       (bench/sequential.py) on the first S environments of its own copy of the fleet,
       our dry run, our run and our re-run. Per phase: wall time, the run's own elapsed
       time, calls per quota bucket against the job's minimum (bench/floor.py),
       throttles, failures, CPU and peak RSS of client and sandbox. Reads are measured
       at their own time scale (--read-time-scale): their floor is short, and at K they
       would measure CPU, not pacing. Times convert to AWS's by x K.
scale  for each --scale EXF: seed E x F functions (seconds, sandbox RSS per environment),
       then one dry run over all of them without quotas: the client's CPU per AWS call and
       peak RSS, and the sandbox's calls per CPU second.

One JSON document on stdout and in bench/results/; `targets` holds the issue's checks.
Both tools' end states are compared environment by environment (`end_state.equal`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import select
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from bench import floor
from bench.processes import ChildRun, Sandbox, run_child
from optimizer_async.aws.quotas import bucket_for
from optimizer_async.definitions import baseline

RESULTS: Final = Path(__file__).parent / "results"
# A phase whose busiest process used more of a core than this measured CPU, not pacing.
_CPU_BOUND: Final = 0.8
_PYTHON: Final = sys.executable
_READY: Final = "sandbox ready"
# Logs Insights budget of a run: enough for every function's REPORT lines (a seeded steady
# function logs about 3 GB in the 14-day window), so every memory decision has its evidence
# and both tools can reach the same end state. The default (50 GB) keeps most functions'
# memory as it is, for want of evidence.
_SCAN_BUDGET_GB: Final = 100_000
_CREDENTIALS: Final = {
    "AWS_ACCESS_KEY_ID": "sandbox",
    "AWS_SECRET_ACCESS_KEY": "sandbox",  # the sandbox's, not a secret
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass(frozen=True)
class Settings:
    environments: int = 100
    functions_per_env: int = 5
    time_scale: float = 2.0  # low enough that neither process is CPU-bound on 2 cores
    # At 1 (AWS's own pace) the sandbox is CPU-bound answering a dry run's evidence: 10 s
    # of CPU in its 11 s. At a quarter of it, neither process uses a third of a core.
    read_time_scale: float = 0.25
    sequential_environments: int = 4
    scales: tuple[tuple[int, int], ...] = ((2000, 1), (1000, 5))
    quotas: tuple[tuple[str, float], ...] = ()
    timeout_s: float = 1800.0
    fleet: bool = True  # the paced part (the large dry runs may run alone)


def _suffixes(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{index:04d}" for index in range(count)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SandboxProcess:
    """A `serve` process: seeded before it listens; its control API and counters."""

    def __init__(self, process: subprocess.Popen[str], port: int, seed_s: float) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{port}"
        self.seed_s = seed_s
        self.counters = Sandbox(process.pid)

    def control(self, method: str, route: str, payload: Any = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(  # noqa: S310 - our own 127.0.0.1 endpoint
            f"{self.url}/_sandbox/{route}", data=data, method=method
        )
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            return json.loads(response.read())

    def delays(self) -> floor.Delays:
        """AWS's delays as this sandbox models them (its configuration is at AWS's pace)."""
        config = self.control("GET", "config")
        return floor.Delays(
            evidence_s=float(config["insights_query_s"]),
            iam_propagation_s=float(config["iam_propagation_s"]),
            update_s=float(config["update_s"]),
        )

    def client_env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
        return {**env, **_CREDENTIALS, "AWS_ENDPOINT_URL": self.url}


@contextmanager
def sandbox(
    suffixes: Sequence[str],
    functions_per_env: int,
    profile: str,
    time_scale: float,
    timeout: float,
    quotas: Sequence[tuple[str, float]] = (),
) -> Iterator[SandboxProcess]:
    port = _free_port()
    argv = [_PYTHON, "-m", "optimizer_async.sandbox", "serve", "--port", str(port)]
    argv += ["--profile", profile, "--time-scale", f"{time_scale:g}", *_quota_args(quotas)]
    if suffixes:
        argv += ["--seed", ",".join(suffixes), "--functions-per-env", str(functions_per_env)]
        argv += ["--profile-mix", "steady"]  # evidence that lets every target through
    started = time.perf_counter()
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert process.stdout is not None
        line = ""
        while _READY not in line:
            left = started + timeout - time.perf_counter()
            ready, _, _ = select.select([process.stdout], [], [], max(left, 0))
            line = process.stdout.readline() if ready else ""
            if (not ready or not line) and _READY not in line:
                raise RuntimeError(f"the sandbox did not start (exit {process.poll()})")
        yield SandboxProcess(process, port, time.perf_counter() - started)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _fit_reservations(box: SandboxProcess, functions: int) -> int:
    """An organisation with this many functions has raised its concurrency limit: every
    reservation fits, with AWS's 100 unreserved left over (else the optimizer rightly
    refuses the reservations that do not fit). Returns the limit set."""
    account = (baseline.TARGET.reserved_concurrency or 0) * functions + 1000
    box.control("PUT", "config", {"account_concurrency": account})
    return account


def _by_bucket(stats: dict[str, Any]) -> tuple[dict[str, int], int, int]:
    """Calls per quota bucket (every attempt, throttled ones too), total, throttled."""
    buckets: dict[str, int] = {}
    total = throttled = 0
    for entry in stats["calls"]:
        count = int(entry["count"])
        total += count
        if entry["outcome"] == "throttled":
            throttled += count
        bucket = bucket_for(entry["service"], entry["operation"])
        if bucket is not None:
            buckets[bucket.name] = buckets.get(bucket.name, 0) + count
    return buckets, total, throttled


def _phase(
    box: SandboxProcess, argv: list[str], time_scale: float, settings: Settings
) -> tuple[ChildRun, dict[str, Any]]:
    """Run one client at `time_scale`; what it cost both processes."""
    box.control("PUT", "config", {"time_scale": time_scale})
    box.control("POST", "stats/reset")
    box.counters.reset_peak()
    cpu_before = box.counters.cpu_s()
    child = run_child(argv, box.client_env(), settings.timeout_s)
    stats = box.control("GET", "stats")
    buckets, total, throttled = _by_bucket(stats)
    sandbox_cpu = box.counters.cpu_s() - cpu_before
    measured = {
        "exit_code": child.exit_code,
        "wall_s": round(child.wall_s, 3),
        "calls": total,
        "throttles": throttled,
        "throttle_fraction": round(throttled / total, 4) if total else 0.0,
        "calls_by_bucket": buckets,
        "client": {
            "cpu_s": round(child.cpu_s, 3),
            "cpu_ms_per_call": round(1000 * child.cpu_s / total, 3) if total else None,
            "busy": round(child.cpu_s / child.wall_s, 3),  # of one core, over its run
            "peak_rss_mb": _rounded(child.peak_rss_mb),
        },
        "sandbox": {
            "cpu_s": round(sandbox_cpu, 3),
            "cpu_ms_per_call": round(1000 * sandbox_cpu / total, 3) if total else None,
            "calls_per_cpu_s": round(total / sandbox_cpu) if sandbox_cpu else None,
            "busy": round(sandbox_cpu / child.wall_s, 3),
            "peak_rss_mb": round(box.counters.peak_rss_mb(), 1),
        },
    }
    if child.exit_code != 0:
        measured["stderr_tail"] = child.stderr.strip().splitlines()[-5:]
    return child, measured


def _against_floor(
    measured: dict[str, Any], elapsed_s: float, time_scale: float, found: floor.Floor
) -> None:
    """Add the run's time at AWS's rates, its floor and each bucket's calls vs the minimum."""
    real = elapsed_s * time_scale
    measured["elapsed_s"] = round(elapsed_s, 3)
    measured["time_scale"] = time_scale
    measured["aws_time_s"] = round(real, 2)
    measured["floor_s"] = round(found.seconds, 2)
    measured["bottleneck"] = found.bottleneck
    measured["ratio_to_floor"] = round(real / found.seconds, 3) if found.seconds else None
    buckets = measured["calls_by_bucket"]
    measured["calls_by_bucket"] = {
        name: {
            "calls": buckets.get(name, 0),
            "minimum": found.minimum.get(name, 0),
            "ratio": round(buckets.get(name, 0) / found.minimum[name], 3)
            if found.minimum.get(name)
            else None,
        }
        for name in sorted(set(buckets) | set(found.minimum))
    }


def _rounded(mb: float | None) -> float | None:
    return None if mb is None else round(mb, 1)


def _quota_args(quotas: Sequence[tuple[str, float]]) -> list[str]:
    return [arg for name, rate in quotas for arg in ("--quota", f"{name}={rate:g}")]


def _optimizer_argv(
    suffixes: Sequence[str],
    bases: Sequence[str],
    time_scale: float,
    state: str,
    report: str,
    quotas: Sequence[tuple[str, float]] = (),
    scan_budget_gb: float | None = _SCAN_BUDGET_GB,
) -> list[str]:
    argv = [_PYTHON, "-m", "optimizer_async", "--suffix", ",".join(suffixes), *_quota_args(quotas)]
    for base in bases:
        argv += ["--function-base", base]
    argv += ["--time-scale", f"{time_scale:g}", "--state-dir", state, "--output", "json"]
    if scan_budget_gb is not None:
        argv += ["--max-scan-gb", f"{scan_budget_gb:g}"]
    return [*argv, "--report-file", report, "--log-level", "error"]


def _ours(
    box: SandboxProcess,
    argv: list[str],
    time_scale: float,
    settings: Settings,
    found: floor.Floor,
    report: Path,
) -> dict[str, Any]:
    _, measured = _phase(box, argv, time_scale, settings)
    document = json.loads(report.read_text()) if report.exists() else {}
    failed = [e["suffix"] for e in document.get("environments", []) if e["status"] == "failed"]
    measured["failures"] = len(failed) + (measured["exit_code"] != 0 and not failed)
    measured["status"] = document.get("status")
    elapsed = float(document.get("elapsed_s", measured["wall_s"]))
    _against_floor(measured, elapsed, time_scale, found)
    report.unlink(missing_ok=True)
    return measured


def fleet(settings: Settings, work: Path) -> dict[str, Any]:
    """The paced part: sequential reference, dry run, run, re-run, end states."""
    e, f, k = settings.environments, settings.functions_per_env, settings.time_scale
    seq_count = min(settings.sequential_environments, e)
    ours, reference = _suffixes("opt", e), _suffixes("seq", seq_count)
    bases = baseline.function_bases(f)
    overrides = dict(settings.quotas)
    shape = floor.JobShape(e, f)
    report = work / "report.json"
    result: dict[str, Any] = {"environments": e, "functions_per_env": f, "functions": e * f}
    with sandbox(reference + ours, f, "aws", k, settings.timeout_s, settings.quotas) as box:
        result["seed_s"] = round(box.seed_s, 2)
        result["account_concurrency"] = _fit_reservations(box, (e + seq_count) * f)
        delays = box.delays()
        result["aws_delays_s"] = dataclasses.asdict(delays)
        argv = [_PYTHON, "-m", "bench.sequential", "--suffix", ",".join(reference)]
        argv += ["--functions-per-env", str(f), "--time-scale", f"{k:g}"]
        child, sequential = _phase(box, argv, k, settings)
        answer = json.loads(child.stdout or "{}")
        sequential["failures"] = int(child.exit_code != 0)
        _against_floor(
            sequential,
            float(answer.get("elapsed_s", child.wall_s)),
            k,
            floor.floor(floor.JobShape(seq_count, f), "run", overrides, delays),
        )
        phases = {"sequential": sequential}
        for name, dry, scale in (
            ("dry_run", True, settings.read_time_scale),
            ("run", False, k),
            ("rerun", False, settings.read_time_scale),
        ):
            argv = _optimizer_argv(
                ours, bases, scale, str(work / "state"), str(report), settings.quotas
            )
            mode: floor.Mode = "run" if name == "run" else "read"
            found = floor.floor(shape, mode, overrides, delays)
            phases[name] = _ours(
                box, [*argv, "--dry-run"] if dry else argv, scale, settings, found, report
            )
        result["phases"] = phases
        result["end_state"] = _compare_end_states(box, reference, ours, bases)
    run = phases["run"]
    per_function = phases["sequential"]["aws_time_s"] / (seq_count * f)
    sequential_s = per_function * e * f
    floor_s = run["floor_s"]
    speedup = sequential_s / run["aws_time_s"]
    bound = sequential_s / floor_s
    result["speedup_vs_sequential"] = {
        "functions": e * f,
        "sequential_aws_s": round(sequential_s, 1),
        "sequential_measured_functions": seq_count * f,
        "ours_aws_s": run["aws_time_s"],
        "floor_s": floor_s,
        "speedup": round(speedup, 2),
        "bound": round(bound, 2),
        "fraction_of_bound": round(speedup / bound, 3),
    }
    return result


def _compare_end_states(
    box: SandboxProcess, reference: Sequence[str], ours: Sequence[str], bases: Sequence[str]
) -> dict[str, Any]:
    """Each reference environment against ours of the same index, names normalised."""
    saved = dict(os.environ)
    os.environ.update(box.client_env())
    try:
        from bench.endstate import EndState

        reader = EndState()
        differing = [
            theirs
            for theirs, mine in zip(reference, ours, strict=False)
            if reader.read(theirs, bases) != reader.read(mine, bases)
        ]
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return {"compared": len(reference), "equal": not differing, "differing": differing}


def scale(
    environments: int, functions_per_env: int, settings: Settings, work: Path
) -> dict[str, Any]:
    """Seed a large fleet, then one unpaced dry run: CPU per call and peak memory."""
    suffixes = _suffixes("big", environments)
    with sandbox((), 1, "none", 1.0, settings.timeout_s) as empty:
        base_rss = empty.counters.rss_mb()
    with sandbox(suffixes, functions_per_env, "none", 1.0, settings.timeout_s) as box:
        seeded_rss = box.counters.rss_mb()
        _fit_reservations(box, environments * functions_per_env)
        report = work / "scale.json"
        argv = _optimizer_argv(
            suffixes,
            baseline.function_bases(functions_per_env),
            1.0,
            str(work / "scale-state"),
            str(report),
            scan_budget_gb=None,  # the default budget: what a first run on a big fleet reads
        )
        calls = work / "scale-calls.pickle"
        recorded = [_PYTHON, "-m", "bench.record_calls", str(calls), *argv[2:], "--dry-run"]
        _, measured = _phase(box, recorded, 1.0, settings)
        document = json.loads(report.read_text()) if report.exists() else {}
        measured["status"] = document.get("status")
        report.unlink(missing_ok=True)
        measured["sdk_reference"] = _sdk_reference(box, calls, measured)
        calls.unlink(missing_ok=True)
    return {
        "environments": environments,
        "functions": environments * functions_per_env,
        "seed_s": round(box.seed_s, 2),
        "sandbox_rss_mb": round(seeded_rss, 1),
        "sandbox_rss_per_environment_mb": round((seeded_rss - base_rss) / environments, 3),
        "dry_run": measured,
    }


def _sdk_reference(box: SandboxProcess, calls: Path, ours: dict[str, Any]) -> dict[str, Any]:
    """aioboto3 alone replaying the calls our dry run made (bench/sdk_reference.py): the SDK's
    CPU per call, and ours once it is taken away (`client.own_cpu_ms_per_call`)."""
    argv = [_PYTHON, "-m", "bench.sdk_reference", "--replay", str(calls)]
    child = run_child(argv, box.client_env(), 600.0)
    answer = json.loads(child.stdout or "{}")
    replayed = int(answer.get("calls") or 0)
    sdk_ms = 1000 * child.cpu_s / replayed if replayed else None
    if sdk_ms is not None and ours["client"]["cpu_ms_per_call"] is not None:
        own = ours["client"]["cpu_ms_per_call"] - sdk_ms
        ours["client"]["own_cpu_ms_per_call"] = round(own, 3)
    return {
        "exit_code": child.exit_code,
        "calls": replayed,
        "error_answers": answer.get("error_answers"),
        "cpu_s": round(child.cpu_s, 3),
        "cpu_ms_per_call": None if sdk_ms is None else round(sdk_ms, 3),
        "peak_rss_mb": _rounded(child.peak_rss_mb),
    }


def targets(result: dict[str, Any]) -> dict[str, Any]:
    """The issue's numbers, each with the value measured and whether it holds."""
    checks: dict[str, Any] = {}

    def check(name: str, value: Any, limit: float, holds: bool) -> None:
        checks[name] = {"value": value, "limit": limit, "ok": bool(holds)}

    if result["fleet"] is None:
        phases: dict[str, Any] = {}
    else:
        phases = result["fleet"]["phases"]
    for part in result["scale"]:
        dry = part["dry_run"]
        label = f"{part['functions']}fn"
        # Issue #12: "bring the optimizer's own CPU to <= 1.2 ms per AWS call"; the client's
        # whole CPU per call (with the SDK's) is printed beside it, not held to the number.
        own = dry["client"].get("own_cpu_ms_per_call")
        check(f"client_own_cpu_ms_per_call[{label}]", own, 1.2, own is not None and own <= 1.2)
        if part["functions"] >= 5000:
            rss = dry["client"]["peak_rss_mb"]
            check(f"client_peak_rss_mb[{label}]", rss, 150, rss is not None and rss <= 150)
        calls = dry["sandbox"]["calls_per_cpu_s"]
        check(f"sandbox_calls_per_cpu_s[{label}]", calls, 500, calls is not None and calls >= 500)
        if part["environments"] >= 2000:
            check(f"seed_s[{part['environments']}env]", part["seed_s"], 60, part["seed_s"] <= 60)
        per_env = part["sandbox_rss_per_environment_mb"]
        check(f"sandbox_rss_per_environment_mb[{label}]", per_env, 1.0, per_env <= 1.0)
        check(f"scale_dry_run_exit[{label}]", dry["exit_code"], 0, dry["exit_code"] == 0)
    if not phases:
        return checks
    run = phases["run"]
    check("run_ratio_to_floor", run["ratio_to_floor"], 1.15, run["ratio_to_floor"] <= 1.15)
    for name in ("dry_run", "rerun"):
        ratio = phases[name]["ratio_to_floor"]
        check(f"{name}_ratio_to_floor", ratio, 1.2, ratio <= 1.2)
    for name in ("dry_run", "run", "rerun"):  # else the ratio measures CPU, not pacing
        busy = max(phases[name]["client"]["busy"], phases[name]["sandbox"]["busy"])
        check(f"{name}_busiest_process", busy, _CPU_BOUND, busy <= _CPU_BOUND)
    ours = [phases[name] for name in ("dry_run", "run", "rerun")]
    failures = sum(int(p["failures"]) for p in phases.values())
    check("failures", failures, 0, failures == 0)
    worst = max(p["throttle_fraction"] for p in ours)
    check("throttle_fraction", worst, 0.01, worst <= 0.01)
    ratios = {
        f"{phase}:{bucket}": counts["ratio"]
        for phase, p in zip(("dry_run", "run", "rerun"), ours, strict=True)
        for bucket, counts in p["calls_by_bucket"].items()
        if counts["calls"]
    }
    over = {key: r for key, r in ratios.items() if r is None or r > 1.05}
    check("calls_per_bucket_vs_minimum", over or "all <= 1.05", 1.05, not over)
    fraction = result["fleet"]["speedup_vs_sequential"]["fraction_of_bound"]
    check("speedup_fraction_of_bound", fraction, 0.87, fraction >= 0.87)
    equal = result["fleet"]["end_state"]["equal"]
    check("end_state_equal", equal, 1, equal)
    return checks


def _scale_spec(text: str) -> tuple[int, int]:
    environments, _, functions = text.lower().partition("x")
    try:
        parsed = int(environments), int(functions or 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--scale takes ExF (e.g. 2000x1), not {text!r}") from None
    if min(parsed) < 1:
        raise argparse.ArgumentTypeError("--scale needs at least one environment and function")
    return parsed


def _quota(text: str) -> tuple[str, float]:
    try:
        return floor.parse_quota(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def parse(argv: Sequence[str] | None) -> Settings:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--environments", "-E", type=int, default=100)
    parser.add_argument("--functions-per-env", "-F", type=int, default=5)
    parser.add_argument("--time-scale", type=float, default=2.0, metavar="K")
    parser.add_argument(
        "--read-time-scale", type=float, default=Settings.read_time_scale, metavar="K"
    )
    parser.add_argument(
        "--sequential-environments",
        type=int,
        default=4,
        metavar="S",
        help="environments the sequential script does (its time per function is constant)",
    )
    parser.add_argument(
        "--scale",
        type=_scale_spec,
        action="append",
        metavar="ExF",
        help="a large unpaced dry run (default: 2000x1 and 1000x5)",
    )
    parser.add_argument("--no-scale", action="store_true", help="skip the large dry runs")
    parser.add_argument("--no-fleet", action="store_true", help="only the large dry runs")
    parser.add_argument(
        "--quota",
        type=_quota,
        action="append",
        default=[],
        metavar="BUCKET=RATE",
        help="an account's raised quota: the sandbox, the optimizer and the floor use it "
        "(e.g. cloudwatch.PutMetricAlarm=10)",
    )
    args = parser.parse_args(argv)
    if min(args.environments, args.functions_per_env, args.sequential_environments) < 1:
        parser.exit(2, "error: environments, functions and sequential environments must be >= 1\n")
    if not (args.time_scale > 0 and args.read_time_scale > 0):
        parser.exit(2, "error: time scales must be positive\n")
    scales = () if args.no_scale else tuple(args.scale or Settings.scales)
    return Settings(
        environments=args.environments,
        functions_per_env=args.functions_per_env,
        time_scale=args.time_scale,
        read_time_scale=args.read_time_scale,
        sequential_environments=args.sequential_environments,
        scales=scales,
        quotas=tuple(args.quota),
        fleet=not args.no_fleet,
    )


def bench(settings: Settings) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-") as work:
        result: dict[str, Any] = {
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {"cores": os.cpu_count(), "python": sys.version.split()[0]},
            "quota_overrides": dict(settings.quotas),
            "fleet": fleet(settings, Path(work)) if settings.fleet else None,
            "scale": [scale(e, f, settings, Path(work)) for e, f in settings.scales],
        }
    result["targets"] = targets(result)
    result["all_targets_met"] = all(c["ok"] for c in result["targets"].values())
    return result


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse(argv)
    result = bench(settings)
    text = json.dumps(result, indent=2)
    RESULTS.mkdir(exist_ok=True)
    stamp = result["started_at"].replace(":", "").replace("-", "")
    (RESULTS / f"bench-{stamp}.json").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
