"""A new optimisation, written here and nowhere in the product, goes through the whole run:
read, plan, apply, verify, before-image, money and report. Only the registry learns of it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import ClassVar, Final

import pytest

from optimizer_async.steps.base import (
    ApiCall,
    ApplyContext,
    Change,
    FunctionPart,
    FunctionStep,
    Json,
    MoneyLine,
    Permission,
    PlanContext,
    ReadContext,
    StepPlan,
)
from optimizer_async.steps.core import FUNCTION_ARN
from optimizer_async.steps.inventory import EnvironmentInventory, FunctionInventory, FunctionState
from optimizer_async.steps.registry import REGISTRY, undeclared_calls
from tests.conftest import EXTERNAL_ENDPOINT, ClientFactory
from tests.integration.conftest import Optimize, Unique

Seed = Callable[..., list[str]]
TAG: Final = "optimized-by"


class FunctionTags(FunctionPart[Mapping[str, str]]):
    name: ClassVar[str] = "function_tags"
    reads = (ApiCall("lambda", "ListTags"),)
    permissions = (Permission("lambda:ListTags", FUNCTION_ARN),)

    async def read(
        self, ctx: ReadContext, environment: EnvironmentInventory, function: FunctionState
    ) -> Mapping[str, str]:
        answer = await ctx.aws.lambda_.list_tags(Resource=function.arn)
        return dict(answer.get("Tags", {}))


TAGS: Final = FunctionTags()


class TagOptimizedBy(FunctionStep):
    """Tag each function `optimized-by: lambda-optimizer`."""

    name: ClassVar[str] = "tag_optimized_by"
    part = TAGS
    writes = (ApiCall("lambda", "TagResource"), ApiCall("lambda", "UntagResource"))
    permissions = (
        Permission("lambda:TagResource", FUNCTION_ARN),
        Permission("lambda:UntagResource", FUNCTION_ARN),
    )

    def plan(self, ctx: PlanContext, function: FunctionInventory) -> StepPlan:
        current = function.part(TAGS).get(TAG)
        if current == "lambda-optimizer":
            return StepPlan(unchanged=(TAG,))
        return StepPlan(
            changes=(Change(self.name, function.name, TAG, current, "lambda-optimizer"),)
        )

    async def apply(
        self, ctx: ApplyContext, function: FunctionInventory, changes: tuple[Change, ...]
    ) -> None:
        tags = {c.setting: str(c.after) for c in changes if c.after is not None}
        if tags:
            await ctx.aws.lambda_.tag_resource(Resource=function.state.arn, Tags=tags)
        untag = [c.setting for c in changes if c.after is None]  # rollback: it had none
        if untag:
            await ctx.aws.lambda_.untag_resource(Resource=function.state.arn, TagKeys=untag)

    def current(self, ctx: PlanContext, function: FunctionInventory, change: Change) -> Json:
        return function.part(TAGS).get(change.setting)

    def money(
        self, ctx: PlanContext, function: FunctionInventory, changes: Sequence[Change]
    ) -> tuple[MoneyLine, ...]:
        return (MoneyLine("tagging", "adds", 0.01 * len(changes), "a made-up price"),)

    def render_setting(self, setting: str) -> str:
        return f"tag {setting}"

    def render_value(self, setting: str, value: Json) -> str:
        return "untagged" if value is None else f"<{value}>"


@pytest.fixture
def tagging() -> Iterator[None]:
    with REGISTRY.registered(TagOptimizedBy()):
        yield


@pytest.mark.usefixtures("tagging")
def test_a_step_defined_outside_the_product_runs_end_to_end(
    request: pytest.FixtureRequest,
    seed: Seed,
    optimize: Optimize,
    client: ClientFactory,
    unique: Unique,
    tmp_path: Path,
) -> None:
    (dev,) = seed(unique("dev"))
    function = f"lambda-function-{dev}"
    sandbox = None if EXTERNAL_ENDPOINT else request.getfixturevalue("sandbox")
    if sandbox:
        sandbox.reset_stats()

    code, dry = optimize("--suffix", dev, "--dry-run")
    assert code == 0
    assert "tag_optimized_by" in dry["steps"]
    (planned,) = [c for c in dry["environments"][0]["functions"][0]["changes"]
                  if c["step"] == "tag_optimized_by"]  # fmt: skip
    assert (planned["setting"], planned["before"], planned["after"]) == (
        TAG,
        None,
        "lambda-optimizer",
    )

    markdown = tmp_path / "report.md"
    code, run = optimize("--suffix", dev, "--report-file", str(markdown))
    assert code == 0, json.dumps(run, indent=1)
    (fn,) = run["environments"][0]["functions"]
    (tagged,) = [c for c in fn["changes"] if c["step"] == "tag_optimized_by"]
    assert (tagged["status"], tagged["verified"]) == ("applied", True)
    arn = client("lambda").get_function(FunctionName=function)["Configuration"]["FunctionArn"]
    assert client("lambda").list_tags(Resource=arn)["Tags"][TAG] == "lambda-optimizer"
    # Its before-image fragment, under its part's name, next to the core's.
    image = json.loads(Path(run["environments"][0]["before_images"]).read_text())
    assert TAG not in image["functions"][0]["function_tags"]
    assert image["functions"][0]["memory_mb"] == 3008
    # Its money line and its rendering.
    tagging = {
        "label": "tagging",
        "effect": "adds",
        "monthly_usd": 0.01,
        "low_usd": None,
        "basis": "a made-up price",
        "inputs": {},
        "source": None,
        "assumed": False,
    }
    assert tagging in fn["savings"]["lines"]
    assert run["savings"]["tagging_monthly_usd"] == 0.01
    assert f"| {function} | tag {TAG} | untagged | <lambda-optimizer> | verified |" in (
        markdown.read_text()
    )

    code, rerun = optimize("--suffix", dev)
    assert (code, rerun["api_calls"]["writes"], rerun["status"]) == (0, 0, "nothing_to_do")
    if sandbox:
        made = {(r["service"], r["operation"]) for r in sandbox.stats()["calls"]}
        assert ("lambda", "TagResource") in made
        assert undeclared_calls(made, REGISTRY) == []
