from __future__ import annotations

from pathlib import Path

import pytest

from optimizer_async.definitions import baseline
from optimizer_async.definitions.targets import Targets, TargetsError, load_targets


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "targets.toml"
    path.write_text(text)
    return path


def test_defaults_are_the_design_targets() -> None:
    targets = Targets()
    assert targets.function == baseline.TARGET
    assert targets.alarms.error_rate_threshold_percent == 1.0
    assert targets.alarms.duration_threshold_ms == 20_000


def test_a_file_overrides_only_what_it_names(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "[function]\nmemory_mb = 512\nlog_retention_days = 14\n"
        "[alarms]\nduration_threshold_ms = 9000\n",
    )
    targets = load_targets(path)
    assert (targets.function.memory_mb, targets.function.log_retention_days) == (512, 14)
    assert targets.function.timeout_s == baseline.TARGET.timeout_s
    assert targets.alarms.duration_threshold_ms == 9000
    assert targets.alarms.error_rate_threshold_percent == 1.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[function]\nlog_retention_days = 10\n", "not one CloudWatch Logs accepts"),
        ("[function]\ntimeout_s = 901\n", "outside Lambda's 1-900 s"),
        ("[function]\ntracing_mode = 'On'\n", "tracing mode must be one of"),
        ("[alarms]\nerror_rate_threshold_percent = 0\n", "must be in (0, 100]"),
        ("[alarms]\nperiod_s = 45\n", "period_s must be 10, 30 or a multiple of 60"),
        ("[memory]\nmb = 1\n", "unknown section(s): memory"),
        ("[guardrails]\nmode = 'careful'\n", "mode = 'careful': must be one of adjust"),
        ("[guardrails]\nmemory_headroom = 0.9\n", "memory_headroom must be at least 1"),
        ("[guardrails]\nlookback_days = 0\n", "lookback_days must be between 1 and 455"),
        ("function = 3\n", "[function] must be a table"),
        ("[function\n", "targets file"),
    ],
)
def test_bad_files_are_refused_with_the_reason(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(TargetsError) as refused:
        load_targets(_write(tmp_path, text))
    assert message in str(refused.value)
    assert str(refused.value).startswith(f"targets file {tmp_path / 'targets.toml'}: ")


def test_guardrail_rules_are_overridable(tmp_path: Path) -> None:
    path = _write(tmp_path, "[guardrails]\nmode = 'strict'\nmemory_headroom = 1.5\n")
    rules = load_targets(path).guardrails
    assert (rules.mode, rules.memory_headroom, rules.lookback_days) == ("strict", 1.5, 14)
