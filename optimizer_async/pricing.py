"""Prices the savings estimate uses: a dated table from AWS's public price pages.

Source: the AWS Lambda and CloudWatch pricing pages and the Price List API (service code
`AWSLambda`), us-east-1, on the date below (docs/architecture.md, "Prices"). Querying the
Price List API at run time is the cost model's next step; this table stays its fallback.
"""

from __future__ import annotations

from typing import Final

PRICES_AS_OF: Final = "2026-11-01"
REGION: Final = "us-east-1"

LAMBDA_GB_SECOND_USD: Final = {"x86_64": 0.0000166667, "arm64": 0.0000133334}
LAMBDA_REQUEST_USD: Final = 0.20 / 1_000_000
CLOUDWATCH_ALARM_METRIC_MONTH_USD: Final = 0.10
LOGS_STORAGE_GB_MONTH_USD: Final = 0.03
LOGS_INSIGHTS_SCANNED_GB_USD: Final = 0.005  # per GB of log data a query scans

DAYS_PER_MONTH: Final = 365.25 / 12


def gb_second_price(architecture: str) -> float:
    return LAMBDA_GB_SECOND_USD.get(architecture, LAMBDA_GB_SECOND_USD["x86_64"])
