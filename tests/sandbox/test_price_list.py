"""The Price List API's GetProducts, served by the sandbox in AWS's documented shape."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from tests.conftest import ClientFactory

pytestmark = pytest.mark.sandbox_only


def _region(region: str) -> list[dict[str, str]]:
    return [{"Type": "TERM_MATCH", "Field": "regionCode", "Value": region}]


def test_products_are_json_strings_filtered_and_paged(client: ClientFactory) -> None:
    pricing = client("pricing", region_name="us-east-1")
    first = pricing.get_products(
        ServiceCode="AWSLambda", Filters=_region("ap-southeast-2"), MaxResults=3
    )
    assert first["FormatVersion"] == "aws_v1"
    rest = pricing.get_products(
        ServiceCode="AWSLambda", Filters=_region("ap-southeast-2"), NextToken=first["NextToken"]
    )
    assert "NextToken" not in rest
    products = [json.loads(entry) for entry in first["PriceList"] + rest["PriceList"]]
    assert all(isinstance(entry, str) for entry in first["PriceList"])
    assert {p["product"]["attributes"]["regionCode"] for p in products} == {"ap-southeast-2"}
    groups = {p["product"]["attributes"]["group"] for p in products}
    assert "AWS-Lambda-Duration-ARM" in groups
    assert len(products) == 4

    nothing = pricing.get_products(ServiceCode="AmazonEC2", Filters=_region("us-east-1"))
    assert nothing["PriceList"] == []


def test_only_term_match_filters(client: ClientFactory) -> None:
    pricing = client("pricing", region_name="us-east-1")
    contains = [{"Type": "CONTAINS", "Field": "regionCode", "Value": "us"}]
    with pytest.raises(ClientError) as refused:
        pricing.get_products(ServiceCode="AWSLambda", Filters=contains)
    assert refused.value.response["Error"]["Code"] == "InvalidParameterException"
