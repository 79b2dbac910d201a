"""The service's rules without AWS: the change budget, the API token's sources."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from optimizer_async import cli
from optimizer_async.runs.configs import UsageError
from optimizer_async.service.reconciler import within_budget


def _plan(**changes: int) -> dict[str, Any]:
    """A dry run's report: each environment with that many planned changes."""
    planned = {"status": "planned", "step": "s"}
    return {
        "environments": [
            {"suffix": suffix, "status": "planned", "changes": [planned] * n, "functions": []}
            for suffix, n in changes.items()
        ]
    }


def test_the_budget_takes_whole_environments_in_order() -> None:
    assert within_budget(_plan(a=6, b=6, c=2), 10) == ["a"]  # b waits, and c after it
    assert within_budget(_plan(a=4, b=6, c=2), 10) == ["a", "b"]
    assert within_budget(_plan(big=12, small=3), 10) == ["big"]  # alone, or never
    nothing = {
        "environments": [{"suffix": "x", "status": "unchanged", "changes": [], "functions": []}]
    }
    assert within_budget(nothing, 10) == []


def _serve(*args: str, **environ: str) -> Any:
    return cli.parse_config(["serve", "--suffix", "dev", *args], environ)


def test_the_token_is_a_real_one_whichever_way_it_comes(tmp_path: Path) -> None:
    wide = ("--host", "0.0.0.0")  # noqa: S104 - what is being refused
    with pytest.raises(UsageError, match="at least 16 printable ASCII"):
        _serve(*wide, LAMBDA_OPTIMIZER_API_TOKEN="x")
    assert _serve(*wide, LAMBDA_OPTIMIZER_API_TOKEN=" " + "t" * 20 + "\n").serve.token == "t" * 20
    for blank in ("", "   ", "\n"):  # set but blank: refused, not taken as no token
        with pytest.raises(UsageError, match="LAMBDA_OPTIMIZER_API_TOKEN: the token must be"):
            _serve(LAMBDA_OPTIMIZER_API_TOKEN=blank)
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(UsageError, match="the token must be at least 16"):
        _serve("--token-file", str(empty))
    secret = tmp_path / "token"
    secret.write_text("t" * 24 + "\nsecond line\n")
    assert _serve("--token-file", str(secret)).serve.token == "t" * 24
    big = tmp_path / "big"
    big.write_text("t" * 5000)
    for path, says in ((Path("/dev/zero"), "is not a file"), (big, "larger than 4096 bytes"),
                       (tmp_path / "none", "is not a file")):  # fmt: skip
        with pytest.raises(UsageError, match=says):
            _serve("--token-file", str(path))
    with pytest.raises(UsageError, match="without a token"):
        _serve(*wide)
