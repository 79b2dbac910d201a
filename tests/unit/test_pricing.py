"""Prices and the account's bill, against AWS's own published arithmetic (no AWS here)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from optimizer_async.aws import price_list, pricing
from optimizer_async.aws.pricing import Tier
from optimizer_async.money import bill
from optimizer_async.steps import monthly
from optimizer_async.steps.base import MoneyLine

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "optimizer_async" / "sandbox" / "price_list" / "AWSLambda.json"
US_EAST_1 = pricing.table("us-east-1")
# AWS's worked examples print the GB-second price rounded to $0.00001667.
EXAMPLE_GB_SECOND = 0.00001667


def _example_duration() -> pricing.Price:
    listed = US_EAST_1.duration("x86_64")
    return replace(listed, tiers=(Tier(None, EXAMPLE_GB_SECOND),))


def _cents(usd: float) -> float:
    return round(usd + 1e-9, 2)


def test_aws_example_1_512_mb_3_million_requests_of_one_second() -> None:
    gb_seconds = 3_000_000 * 1.0 * 512 / 1024
    compute = _example_duration().cost(gb_seconds, free=True)
    requests = US_EAST_1[pricing.REQUESTS].cost(3_000_000, free=True)
    assert (_cents(compute), _cents(requests)) == (18.34, 0.40)
    assert _cents(compute + requests) == 18.74
    # At the list price (the Price List API's, which the table holds) it is a cent less.
    assert _cents(US_EAST_1.duration("x86_64").cost(gb_seconds, free=True)) == 18.33


def test_aws_example_2_128_mb_30_million_requests_of_200_ms() -> None:
    gb_seconds = 30_000_000 * 0.2 * 128 / 1024
    compute = _example_duration().cost(gb_seconds, free=True)
    requests = US_EAST_1[pricing.REQUESTS].cost(30_000_000, free=True)
    assert (_cents(compute), _cents(requests), _cents(compute + requests)) == (5.83, 5.80, 11.63)


def test_a_tier_boundary_is_priced_tier_by_tier() -> None:
    x86 = US_EAST_1.duration("x86_64")
    # 7 billion GB-seconds: 6 billion at the first tier, 1 billion at the second.
    assert _cents(x86.cost(7e9)) == _cents(6e9 * 0.0000166667 + 1e9 * 0.000015)
    # 20 billion: all three tiers.
    expected = 6e9 * 0.0000166667 + 9e9 * 0.000015 + 5e9 * 0.0000133334
    assert _cents(x86.cost(20e9)) == _cents(expected)


def test_arm64_is_priced_apart_from_x86_64() -> None:
    arm, x86 = US_EAST_1.duration("arm64"), US_EAST_1.duration("x86_64")
    assert arm.usd == 0.0000133334
    assert _cents(arm.cost(1_500_000, free=True)) == _cents(1_100_000 * 0.0000133334) == 14.67
    assert arm.cost(7e9) < x86.cost(7e9)
    # arm64's tiers end later: 7.5 billion GB-seconds at the first price, then 11.25 billion.
    assert _cents(arm.cost(7e9)) == _cents(7e9 * 0.0000133334)
    assert _cents(arm.cost(8e9)) == _cents(7.5e9 * 0.0000133334 + 0.5e9 * 0.0000120001)
    assert [tier.up_to for tier in arm.tiers] == [7.5e9, 18.75e9, None]


def test_regions_differ_where_aws_lists_other_prices() -> None:
    ireland, sydney = pricing.table("eu-west-1"), pricing.table("ap-southeast-2")
    assert US_EAST_1[pricing.LOGS_INGESTION].usd == 0.50
    assert ireland[pricing.LOGS_INGESTION].usd == sydney[pricing.LOGS_INGESTION].usd == 0.57
    assert ireland.duration("x86_64").usd == US_EAST_1.duration("x86_64").usd
    elsewhere = pricing.table("sa-east-1")
    assert elsewhere.origin == f"table {pricing.PRICES_AS_OF} (us-east-1's prices)"
    assert all(
        price.source.startswith("https://aws.amazon.com/") for price in US_EAST_1.prices.values()
    )


def test_the_price_list_answer_is_parsed_as_aws_documents_it() -> None:
    """GetProducts' PriceList holds each product as a JSON string; tiers are dimensions with
    string ranges (`Inf` for the last) and string prices."""
    products = json.loads(FIXTURE.read_text())["products"]
    answer = [json.dumps(product) for product in products]  # as the API serialises them
    book = price_list.book_from(answer, "eu-west-1", pricing.table("eu-west-1"))
    x86 = book.duration("x86_64")
    assert [tier.up_to for tier in x86.tiers] == [6e9, 15e9, None]
    assert [tier.usd for tier in x86.tiers] == [0.0000166667, 0.000015, 0.0000133334]
    assert x86.source.startswith("AWS Price List API (GetProducts AWSLambda, sku ")
    assert book[pricing.REQUESTS].usd == 0.0000002
    assert book[pricing.LOGS_INGESTION].source == "https://aws.amazon.com/cloudwatch/pricing/"
    arm = "AWS-Lambda-Duration-ARM"
    groups = [p["product"]["attributes"]["group"] for p in products]
    without_arm = [entry for entry, group in zip(answer, groups, strict=True) if group != arm]
    with pytest.raises(price_list.PriceListError, match=r"no lambda\.duration\.arm64 price"):
        price_list.book_from(without_arm, "eu-west-1", pricing.table("eu-west-1"))


def _compute(before_gbs: float, after_gbs: float, architecture: str = "x86_64") -> MoneyLine:
    month = monthly.Month(1.0, 0.0, before_gbs * 1024 / 1024, 0.0, 0.0, 14)
    line = monthly.compute(month, US_EAST_1, architecture, 1024, 1024)
    price = US_EAST_1.duration(architecture).usd
    inputs = {**line.inputs, "gb_seconds_before": before_gbs, "gb_seconds_after": after_gbs,
              "gb_seconds_after_cpu_bound": after_gbs}  # fmt: skip
    return replace(line, monthly_usd=(before_gbs - after_gbs) * price, inputs=inputs, low_usd=None)


def test_the_account_lines_make_the_run_exact_and_count_the_free_tier_once() -> None:
    """Two functions each priced at the first tier: the account's lines bring the total to
    the bill of the account's GB-seconds, with the free tier taken once, not twice."""
    lines = [_compute(300_000, 100_000), _compute(400_000, 150_000)]
    per_function = sum(line.net_usd for line in lines)
    x86 = US_EAST_1.duration("x86_64")
    for free in (False, True):
        account = bill.account_lines(lines, US_EAST_1, free_tier=free)
        exact = x86.cost(700_000, free=free) - x86.cost(250_000, free=free)
        assert per_function + account.net_usd == pytest.approx(exact)
    # Free tier: before 700,000 - 400,000 billed; after all 250,000 free.
    assert exact == pytest.approx(300_000 * x86.usd)


def test_added_usage_takes_the_free_tier_once_per_account() -> None:
    month = monthly.Month(2_000_000, 40_000, 0.0, 0.0, 0.0, 14)
    tracing = monthly.tracing(month, US_EAST_1)
    two = [tracing, tracing]
    traces = 2 * float(str(tracing.inputs["traces_per_month"]))
    account = bill.account_lines(two, US_EAST_1, free_tier=True)
    total = -sum(line.monthly_usd for line in two) + account.net_usd
    assert total == pytest.approx(-US_EAST_1[pricing.XRAY_TRACES].cost(traces, free=True))
    assert account.lines[0].label == "tracing: the account's free tier"
