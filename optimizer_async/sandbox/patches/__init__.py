"""Patches that make moto behave like AWS where this product depends on it.

Each module fixes one gap seen in moto 5.2.5 and says which in its docstring; each is
tested over HTTP with plain boto3 in tests/sandbox/ (test_patches.py; those serving the
workload model in test_workload.py and test_insights.py; STS AssumeRole and the accounts it
selects in test_accounts.py).
"""

from __future__ import annotations

from optimizer_async.sandbox.patches import (
    cloudwatch_index,
    cloudwatch_json,
    cloudwatch_metrics,
    iam_authorization,
    json_parser,
    lambda_code_update,
    lambda_concurrency,
    lambda_config_fields,
    lambda_dlq_permission,
    lambda_environment_limit,
    lambda_list_paging,
    lambda_logging_config,
    lambda_revision_id,
    lambda_update_lifecycle,
    logs_group_identifiers,
    logs_insights,
    logs_retention,
    logs_stored_bytes,
    logs_stored_events,
    metric_data_json,
    moto_lookups,
    moto_query_parser,
    price_list,
    s3_conditional_writes,
    serializer_keys,
    shared_blobs,
    sts_assume_role,
    workload_lambda,
    xml_unparse,
)
from optimizer_async.sandbox.shaping import OperationHandler


def apply_all() -> dict[tuple[str, str], OperationHandler]:
    """Patch moto in place (idempotent); return the operations the sandbox answers itself."""
    lambda_config_fields.apply()
    lambda_update_lifecycle.apply()
    lambda_revision_id.apply()  # after the lifecycle: a stale revision opens no update window
    lambda_dlq_permission.apply()  # likewise for a refused dead-letter queue
    lambda_concurrency.apply()
    lambda_list_paging.apply()
    workload_lambda.apply()  # last of Lambda's: it records only what the others let through
    # Around all of the above: a request these refuse opens no window and no revision.
    lambda_logging_config.apply()
    lambda_environment_limit.apply()
    lambda_code_update.apply()
    logs_group_identifiers.apply()
    logs_retention.apply()
    logs_stored_bytes.apply()
    logs_insights.apply()
    logs_stored_events.apply()
    cloudwatch_index.apply()  # under the model's answers: it serves what the model does not
    cloudwatch_metrics.apply()
    cloudwatch_json.apply()
    metric_data_json.apply()
    moto_query_parser.apply()
    json_parser.apply()
    moto_lookups.apply()
    iam_authorization.apply()
    sts_assume_role.apply()
    shared_blobs.apply()
    s3_conditional_writes.apply()
    serializer_keys.apply()
    xml_unparse.apply()
    return {
        ("lambda", "GetAccountSettings"): lambda_concurrency.get_account_settings,
        ("pricing", "GetProducts"): price_list.get_products,
    }
