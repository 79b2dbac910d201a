"""With tracing Active the handler annotates its X-Ray subsegment with the order id.

The function runs in a child process (the X-Ray SDK patches libraries process-wide) with
the environment Lambda gives an Active-tracing function; a UDP socket on 127.0.0.1 stands in
for the X-Ray daemon and receives what the SDK emits.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

HANDLER = Path(__file__).resolve().parents[2] / "lambda" / "function" / "handler.py"
# What Lambda sets for a sampled invocation of a function with tracing Active.
TRACE_HEADER = "Root=1-67a1b2c3-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1"

_INVOKE = textwrap.dedent(
    """
    import importlib.util, json, sys
    from types import SimpleNamespace
    spec = importlib.util.spec_from_file_location("handler", sys.argv[1])
    handler = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(handler)
    context = SimpleNamespace(
        function_name="lambda-function-dev", function_version="$LATEST",
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:lambda-function-dev",
        memory_limit_in_mb=1024, aws_request_id="req-1",
    )
    event = {"order_id": "ord-77", "customer_id": "c", "currency": "USD",
             "items": [{"sku": "A", "quantity": 1, "unit_price": 5}]}
    print(json.dumps(handler.lambda_handler(event, context)))
    """
)


def _segments(daemon: socket.socket, until: float) -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = []
    daemon.settimeout(0.2)
    while time.monotonic() < until:
        try:
            packet = daemon.recv(65536).decode()
        except TimeoutError:
            if documents:
                break
            continue
        header, _, body = packet.partition("\n")
        assert json.loads(header) == {"format": "json", "version": 1}
        documents.append(json.loads(body))
    return documents


def test_active_tracing_annotates_the_order(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as daemon:
        daemon.bind(("127.0.0.1", 0))
        port = daemon.getsockname()[1]
        environ = {
            **{k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT")},
            "AWS_LAMBDA_FUNCTION_NAME": "lambda-function-dev",
            "LAMBDA_TASK_ROOT": str(tmp_path),
            "_X_AMZN_TRACE_ID": TRACE_HEADER,
            "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{port}",
            "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
            "POWERTOOLS_TRACE_DISABLED": "false",
            "POWERTOOLS_SERVICE_NAME": "orders",
        }
        result = subprocess.run(
            [sys.executable, "-c", _INVOKE, str(HANDLER)],
            env=environ,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        answer = json.loads(result.stdout.strip().splitlines()[-1])
        assert answer["statusCode"] == 200
        segments = _segments(daemon, time.monotonic() + 5.0)

    handler_segments = [s for s in segments if s.get("name") == "## lambda_handler"]
    assert handler_segments, segments
    annotations = handler_segments[0].get("annotations", {})
    assert annotations["order_id"] == "ord-77"
    assert annotations["ColdStart"] is True
    assert "5.00" not in json.dumps(handler_segments[0].get("metadata", {}))  # no response captured
