"""Keeps LocalStack from looking up a host name in DNS, the one look-up it makes here.

Its internal S3 client asks once whether ``s3.<LOCALSTACK_HOST>`` resolves (to prefer
virtual-host addressing): a query to the machine's resolver, and with the default host
(localhost.localstack.cloud) one that must leave the machine. Answering "no" beforehand makes
it use ``localhost``, which /etc/hosts answers.
"""

from __future__ import annotations

from localstack.runtime import hooks
from localstack.utils.aws import aws_stack


@hooks.on_infra_start(priority=100)  # type: ignore[untyped-decorator]  # plux's is untyped
def skip_s3_hostname_lookup() -> None:
    """Runs before the services load (eager loading is an on_infra_start hook of priority 0)."""
    # Declared `= None` (unknown yet), so mypy takes it for None alone.
    aws_stack.CACHE_S3_HOSTNAME_DNS_STATUS = False  # type: ignore[assignment]
