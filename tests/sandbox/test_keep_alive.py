"""The sandbox's request handler keeps connections alive, as AWS does, and only when safe.

Each test runs the handler on its own werkzeug server with a small WSGI application, so what
is asserted is the handler's connection handling, not moto's answers.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.serving import BaseWSGIServer, make_server

from optimizer_async.sandbox.request_handler import (
    QuietRequestHandler,
    close_connections,
    connections,
)


def _app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Echoes the body for /echo; /ignore answers without reading it; /break fails."""
    path = environ["PATH_INFO"]
    if path == "/break":
        raise ConnectionResetError("broken off")
    body = environ["wsgi.input"].read() if path == "/echo" else b"ignored"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


@pytest.fixture
def server() -> Iterator[BaseWSGIServer]:
    served = make_server("127.0.0.1", 0, _app, threaded=True, request_handler=QuietRequestHandler)
    thread = threading.Thread(target=served.serve_forever, daemon=True)
    thread.start()
    yield served
    served.shutdown()
    served.server_close()
    close_connections(served)
    thread.join(timeout=10)


def _connect(server: BaseWSGIServer) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)


def _ask(
    connection: http.client.HTTPConnection, path: str, body: bytes = b"", **headers: str
) -> tuple[bytes, str | None]:
    connection.request("POST", path, body=body, headers=headers)
    answer = connection.getresponse()
    return answer.read(), answer.getheader("Connection")


def test_one_connection_serves_many_requests_even_when_a_body_was_not_read(
    server: BaseWSGIServer,
) -> None:
    connection = _connect(server)
    assert _ask(connection, "/echo", b"first") == (b"first", None)
    opened = connection.sock
    assert _ask(connection, "/ignore", b"x" * 200_000) == (b"ignored", None)  # drained
    assert _ask(connection, "/echo", b"third") == (b"third", None)
    assert connection.sock is opened  # never reconnected
    assert len(connections(server)) == 1
    connection.close()


def test_a_client_that_asks_to_close_is_closed(server: BaseWSGIServer) -> None:
    connection = _connect(server)
    assert _ask(connection, "/echo", b"bye", Connection="close") == (b"bye", "close")
    assert connection.sock is None  # http.client closes on the server's word


def test_a_chunked_body_ends_the_connection(server: BaseWSGIServer) -> None:
    connection = _connect(server)
    connection.request("POST", "/echo", body=iter([b"a", b"b"]), encode_chunked=True)
    answer = connection.getresponse()
    assert (answer.read(), answer.getheader("Connection")) == (b"ab", "close")


def test_an_answer_that_broke_off_ends_the_connection(server: BaseWSGIServer) -> None:
    connection = _connect(server)
    connection.request("POST", "/break", body=b"")
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        connection.getresponse()


def test_stopping_the_server_ends_kept_connections(server: BaseWSGIServer) -> None:
    connection = _connect(server)
    assert _ask(connection, "/echo", b"one") == (b"one", None)
    close_connections(server)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        _ask(connection, "/echo", b"two")
