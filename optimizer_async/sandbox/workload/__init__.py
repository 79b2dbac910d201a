"""The sandbox's workload model: what each function truly does, and what its configuration
makes of it.

- `profiles.py`: a function's true profile (`WorkloadProfile`) and the named ones seeding
  uses (`steady`, `memory-hungry`, `slow`, `bursty`, `idle`, `default`);
- `traffic.py`: invocations per hour of the week and concurrency;
- `model.py`: the consequences of the configuration history over any window (out of
  memory, timeouts, throttles, slower runs with less CPU), and the CloudWatch statistics;
- `reports.py`: REPORT lines in Lambda's exact format, sampled from the model;
- `insights.py`: the Logs Insights grammar and queries that run on the sandbox clock.

Pure Python, no moto: the patches (`sandbox/patches/`) wire it into the AWS calls, and the
seeder uses it to write matching metrics where the sandbox is not there (LocalStack).
"""

from optimizer_async.sandbox.workload.model import (
    FunctionConfig,
    FunctionModel,
    Outcome,
    WorkloadModel,
)
from optimizer_async.sandbox.workload.profiles import (
    DEFAULT_PROFILE,
    NAMED,
    PROFILE_NAMES,
    WorkloadProfile,
    assign,
    check_mix,
    profile_for,
)

__all__ = [
    "DEFAULT_PROFILE",
    "NAMED",
    "PROFILE_NAMES",
    "FunctionConfig",
    "FunctionModel",
    "Outcome",
    "WorkloadModel",
    "WorkloadProfile",
    "assign",
    "check_mix",
    "profile_for",
]
