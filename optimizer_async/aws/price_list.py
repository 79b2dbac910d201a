"""`--prices live`: Lambda's prices from the AWS Price List API, read once per run.

GetProducts (service code `AWSLambda`, filtered by `regionCode`) answers with `PriceList`:
each product a JSON *string*, its prices under `terms.OnDemand.*.priceDimensions`, one
dimension per tier (`beginRange` / `endRange`, `Inf` for the last; `pricePerUnit.USD` a
string). The API's endpoint is in us-east-1 whatever region is priced (the gateway makes the
`pricing` client there). Duration (x86_64 and arm64, tiered) and requests come from the
answer; every other price stays the dated table's, and each price's `source` says which.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Final

from optimizer_async.aws import pricing
from optimizer_async.aws.pricing import Price, PriceBook, Tier

if TYPE_CHECKING:
    from optimizer_async.aws.gateway import Aws

SERVICE_CODE: Final = "AWSLambda"
# The offer's product groups -> the table's price keys.
GROUPS: Final[Mapping[str, str]] = {
    "AWS-Lambda-Duration": f"{pricing.DURATION}.x86_64",
    "AWS-Lambda-Duration-ARM": f"{pricing.DURATION}.arm64",
    "AWS-Lambda-Requests": pricing.REQUESTS,
}


class PriceListError(Exception):
    """The Price List API's answer lacks a price the run needs."""


def tiers(product: Mapping[str, Any]) -> tuple[Tier, ...]:
    """A product's on-demand tiers, lowest first: (`endRange`, USD per unit)."""
    dimensions = [
        dimension
        for term in product.get("terms", {}).get("OnDemand", {}).values()
        for dimension in term.get("priceDimensions", {}).values()
    ]
    dimensions.sort(key=lambda d: float(d.get("beginRange", "0")))
    return tuple(
        Tier(
            None if d.get("endRange") in (None, "Inf") else float(d["endRange"]),
            float(d["pricePerUnit"]["USD"]),
        )
        for d in dimensions
    )


def book_from(price_list: Iterable[str], region: str, fallback: PriceBook) -> PriceBook:
    """The fallback book with the answer's Lambda prices in place of the table's."""
    found: dict[str, tuple[Tier, ...]] = {}
    skus: dict[str, str] = {}
    for entry in price_list:
        product = json.loads(entry)
        attributes = product.get("product", {}).get("attributes", {})
        key = GROUPS.get(attributes.get("group", ""))
        if key is None or attributes.get("regionCode") != region:
            continue
        found[key] = tiers(product)
        skus[key] = str(product.get("product", {}).get("sku", ""))
    missing = sorted(set(GROUPS.values()) - set(found))
    if missing:
        raise PriceListError(f"the Price List API has no {', '.join(missing)} price for {region}")
    prices: dict[str, Price] = dict(fallback.prices)
    for key, its_tiers in found.items():
        source = f"AWS Price List API (GetProducts {SERVICE_CODE}, sku {skus[key]})"
        prices[key] = replace(prices[key], tiers=its_tiers, source=source)
    origin = f"Price List API for Lambda, {fallback.origin} for the rest"
    return PriceBook(region, prices, origin)


async def live_book(aws: Aws, region: str) -> PriceBook:
    """Lambda's prices for `region` from the Price List API (all pages), once."""
    entries: list[str] = []
    async for page in aws.pages(
        "NextToken",
        aws.pricing.get_products,
        ServiceCode=SERVICE_CODE,
        FormatVersion="aws_v1",
        Filters=[{"Type": "TERM_MATCH", "Field": "regionCode", "Value": region}],
    ):
        entries += [str(entry) for entry in page.get("PriceList", [])]
    return book_from(entries, region, pricing.table(region))
