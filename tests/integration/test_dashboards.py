"""The service's dashboard (deploy/grafana/) and alerting rules (deploy/prometheus/) query
only metrics that `serve` really exports: every query is parsed for the metrics it names
(and the labels it matches on), and each is looked up in a live /metrics scrape of a
service that ran a cycle on the sandbox."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from optimizer_async import cli
from optimizer_async.aws.gateway import AwsSettings
from optimizer_async.sandbox.server import EmbeddedSandbox
from optimizer_async.service.serve import running
from tests.conftest import REGION

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy/grafana/lambda-optimizer.json"
RULES = ROOT / "deploy/prometheus/rules.yaml"
TOKEN = "t0k3n-for-the-dashboard-tests"  # a test's token, not a secret
# Labels Prometheus adds to every series it scrapes, and the histogram's bucket bound.
ADDED_LABELS = frozenset({"job", "instance", "le"})
# Words of PromQL that look like names: operators, modifiers, and what takes a label list.
KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "by", "without", "on",
                      "ignoring", "group_left", "group_right", "inf", "nan"})  # fmt: skip
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_RANGE = re.compile(r"\[[^\]]*\]")
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_SELECTOR = re.compile(r"(?<![\w$.])([A-Za-z_:][\w:]*)\s*(\{[^}]*\})?")
_MATCHER = re.compile(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)")
_LABEL_VALUES = re.compile(r"label_values\(\s*(?:([A-Za-z_:][\w:]*)\s*,\s*)?\w+\s*\)")


def _blank(found: re.Match[str]) -> str:
    """What a regex found, as spaces: the text's other positions stay where they were."""
    return " " * len(found.group())


def selectors(expr: str) -> Iterator[tuple[str, frozenset[str]]]:
    """(metric, the labels it matches on) for every series selector of a PromQL query."""
    text = _STRING.sub(lambda found: '"' + _blank(found)[2:] + '"', expr)  # values: any text
    assert text.count("(") == text.count(")"), expr  # a query cut short does not parse
    assert text.count("{") == text.count("}"), expr
    text = _LABEL_LIST.sub(_blank, _RANGE.sub(_blank, text))
    for found in _SELECTOR.finditer(text):
        name, braces = found.group(1), found.group(2)
        if name in KEYWORDS or (not braces and text[found.end() :].lstrip().startswith("(")):
            continue  # an operator, or a function called
        yield name, frozenset(_MATCHER.findall(braces or ""))


def grouping(expr: str) -> frozenset[str]:
    """The labels a query groups or matches on (`by (status)`, `on (job)`)."""
    lists = _LABEL_LIST.findall(_STRING.sub('""', expr))
    return frozenset(label for found in lists for label in re.findall(r"\w+", found)[1:])


def queries() -> list[tuple[str, str]]:
    """(where, PromQL) of every query the dashboard and the rules make."""
    dashboard = json.loads(DASHBOARD.read_text())
    found = []

    def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))

    for panel in panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            found.append((f"panel {panel['title']!r}", target["expr"]))
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            text = query["query"] if isinstance(query, dict) else query
            (metric,) = _LABEL_VALUES.fullmatch(text).groups()  # type: ignore[union-attr]
            found.append((f"variable {variable['name']}", metric))
    rules = yaml.safe_load(RULES.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            found.append((f"rule {rule.get('alert') or rule.get('record')}", rule["expr"]))
    return found


def test_the_dashboard_and_rules_parse_and_query_the_service_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "lambda-optimizer"
    rules = yaml.safe_load(RULES.read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    assert {"LambdaOptimizerNotReconciling", "LambdaOptimizerCyclesFailing"} <= alerts
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert {"expr", "labels", "annotations"} <= set(rule), rule
            assert rule["labels"]["severity"] in ("critical", "warning", "info")
    named = {name for _, expr in queries() for name, _ in selectors(expr)}
    # What the issue asks to see: runs by status, changes by step and outcome, AWS calls
    # and throttles, estimated (both ends) vs realised savings, cycle duration.
    assert named >= {
        "lambda_optimizer_runs_total",
        "lambda_optimizer_changes_total",
        "lambda_optimizer_aws_calls_total",
        "lambda_optimizer_throttles_total",
        "lambda_optimizer_savings_estimated_monthly_usd",
        "lambda_optimizer_savings_monthly_usd",
        "lambda_optimizer_cycle_duration_seconds_bucket",
        "lambda_optimizer_cycle_duration_seconds_count",
    }
    expressions = " ".join(expr for _, expr in queries())
    assert 'bound="low"' in expressions
    assert 'bound="high"' in expressions
    assert 'kind="realised"' in expressions


def test_the_selector_parser_finds_metrics_not_functions_or_labels() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le) (rate(my_metric_bucket{job=~"$job", '
        'a="x{y}"}[$__rate_interval]))) / on (job) group_left other_total and bool third'
    )
    assert list(selectors(expr)) == [
        ("my_metric_bucket", frozenset({"job", "a"})),
        ("other_total", frozenset()),
        ("third", frozenset()),
    ]
    assert grouping(expr) == {"le", "job"}


def exported(scrape: str) -> dict[str, frozenset[str] | None]:
    """Every series name the scrape exports -> its label names (None: the family has no
    sample yet, e.g. no call was throttled, so its labels cannot be seen)."""
    names: dict[str, frozenset[str] | None] = {}
    suffixes = {"counter": ("_total", "_created"), "gauge": ("",),
                "histogram": ("_bucket", "_count", "_sum", "_created")}  # fmt: skip
    for family in text_string_to_metric_families(scrape):
        for suffix in suffixes.get(family.type, ("",)):
            names.setdefault(family.name + suffix, None)
        for sample in family.samples:
            labels = frozenset(sample.labels)
            names[sample.name] = (names.get(sample.name) or frozenset()) | labels
    return names


@pytest.fixture
def scrape(sandbox: EmbeddedSandbox, seed: Any, tmp_path: Path) -> str:
    """/metrics of a service (in this process, on the sandbox) once its first cycle, a dry
    run over one environment, is over."""
    seed("dash-dev")
    config = cli.parse_config(
        ["serve", "--suffix", "dash-dev", "--dry-run", "--interval", "1h",
         "--state-dir", str(tmp_path / "state"), "--log-level", "warning"],
        {"AWS_ENDPOINT_URL": sandbox.endpoint_url, "LAMBDA_OPTIMIZER_API_TOKEN": TOKEN},
    )  # fmt: skip
    assert config.serve is not None
    config = dataclasses.replace(config, serve=dataclasses.replace(config.serve, port=0))
    settings = AwsSettings(region=REGION, endpoint_url=sandbox.endpoint_url)

    async def main() -> str:
        async with running(config, settings) as service:
            headers = {"Authorization": f"Bearer {TOKEN}"}
            async with httpx.AsyncClient(base_url=service.url, headers=headers) as http:
                with anyio.fail_after(120):
                    while True:
                        text = (await http.get("/metrics")).text
                        if "lambda_optimizer_cycle_duration_seconds_count 1.0" in text:
                            return text
                        await anyio.sleep(0.05)

    return anyio.run(main)


@pytest.mark.sandbox_only("a service on the sandbox, scraped")
def test_every_metric_the_dashboard_and_rules_query_is_exported_by_serve(scrape: str) -> None:
    series = exported(scrape)
    assert series["lambda_optimizer_runs_total"] == frozenset({"trigger", "command", "status"})
    for where, expr in queries():
        known: set[str] | None = set(ADDED_LABELS)
        for name, labels in selectors(expr):
            assert name in series, f"{where} queries {name}, which serve does not export"
            seen = series[name]
            if seen is None:  # no sample yet (nothing throttled): its labels are not seen
                known = None
                continue
            unknown = labels - seen - ADDED_LABELS
            assert not unknown, f"{where} matches {name} on {sorted(unknown)}"
            if known is not None:
                known |= seen
        if known is not None:  # and groups by labels its metrics have
            assert grouping(expr) <= known, f"{where} groups by {sorted(grouping(expr) - known)}"
