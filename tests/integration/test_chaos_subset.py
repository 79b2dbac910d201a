"""The seeded chaos subset `make test` runs: answers lost after AWS committed the write.

A write applied and its answer lost (connection reset, or a 500) is when retries double-apply.
Here a share of every call is served and then loses its answer; the run must either
converge or report each change it could not make with AWS's reason, nothing may exist
twice, and a second run (no faults) converges everything.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from optimizer_async.definitions.naming import (
    EnvironmentNames,
    duration_alarm_name,
    error_rate_alarm_name,
)
from optimizer_async.sandbox.config import AFTER_COMMIT_KINDS
from optimizer_async.sandbox.server import EmbeddedSandbox
from tests.conftest import ClientFactory
from tests.integration.conftest import Optimize
from tests.integration.test_optimizer import assert_optimised

pytestmark = pytest.mark.sandbox_only("injected faults")
Seed = Callable[..., list[str]]
SUFFIXES = ("dev", "staging")


def _changes(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        change
        for env in report["environments"]
        for change in [*env["changes"], *(c for fn in env["functions"] for c in fn["changes"])]
    ]


@pytest.mark.parametrize("fault_seed", [3, 17])
def test_answers_lost_after_commit_never_double_apply(
    sandbox: EmbeddedSandbox,
    seed: Seed,
    optimize: Optimize,
    client: ClientFactory,
    fault_seed: int,
) -> None:
    seed(*SUFFIXES)
    sandbox.reset_stats()
    with sandbox.configured(fault_rate=0.15, fault_seed=fault_seed, fault_kinds=AFTER_COMMIT_KINDS):
        code, first = optimize("--suffix", ",".join(SUFFIXES))
    lost = {k: v for k, v in sandbox.stats()["by_outcome"].items() if k.startswith("fault:")}
    assert sum(lost.values()) >= 3, lost  # the seed does lose answers
    for change in _changes(first):  # converged, or said why not
        if (change["status"], change["verified"]) != ("applied", True):
            assert change["error"], change
    assert code in (0, 1)

    code, second = optimize("--suffix", ",".join(SUFFIXES))
    assert code == 0, second
    sqs, cloudwatch, iam = client("sqs"), client("cloudwatch"), client("iam")
    for suffix in SUFFIXES:
        assert_optimised(client, suffix)
        names = EnvironmentNames(suffix)
        queues = sqs.list_queues(QueueNamePrefix=names.dead_letter_queue).get("QueueUrls", [])
        assert len(queues) == 1, queues  # one queue, however often CreateQueue was retried
        function = names.function()
        alarms = cloudwatch.describe_alarms(AlarmNamePrefix=f"error-rate-{function}")
        assert [a["AlarmName"] for a in alarms["MetricAlarms"]] == [error_rate_alarm_name(function)]
        alarms = cloudwatch.describe_alarms(AlarmNamePrefix=f"duration-{function}")
        assert [a["AlarmName"] for a in alarms["MetricAlarms"]] == [duration_alarm_name(function)]
        for policy in iam.list_role_policies(RoleName=names.role)["PolicyNames"]:
            document = iam.get_role_policy(RoleName=names.role, PolicyName=policy)
            statements = [
                json.dumps(statement, sort_keys=True)
                for statement in document["PolicyDocument"]["Statement"]
            ]
            assert len(statements) == len(set(statements)), policy  # no statement twice

    code, third = optimize("--suffix", ",".join(SUFFIXES))
    assert (code, third["status"]) == (0, "nothing_to_do")
