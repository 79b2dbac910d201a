"""The sandbox's HTTP request handler: moto's, with a cheaper reading of request headers.

The standard library hands every request's header block to the email package's parser
and moto then walks the headers twice more to keep S3 metadata names with underscores:
together an eighth of the sandbox's CPU per call. Plain `Name: value` lines (all that AWS
SDKs send) are read here straight into the same message object the email parser would
build; anything else (folded lines, odd names, other HTTP versions) goes the standard way.

Connections are kept alive, as AWS keeps them: werkzeug ends every answer with
`Connection: close` (it cannot tell whether the application read the whole body), so each
call paid for a new connection on both sides and a new thread here. Here the body is a
stream limited to its Content-Length, drained before the answer's headers go out, and the
connection stays open for the next request unless the client asked to close, the body was
chunked, or the answer broke off. The server's open connections are tracked, so that
stopping the sandbox closes them too.

Each answer costs as few system calls as it can: werkzeug writes an answer's headers and
its body in two sends, and after each answer drains the request stream through a new
epoll selector (four system calls, one of which lets every other request thread run).
Here the headers wait for the body's first write and go out in one send with it (the same
bytes, in one segment), and the drained stream of a kept connection is ready at once
without asking the kernel, as epoll would have said of it. Fewer system calls, fewer
hand-overs of the interpreter lock between a fleet's worth of request threads.
"""

from __future__ import annotations

import contextlib
import email.parser
import http.client
import io
import os
import re
import selectors
import socket
import threading
import types
from http import HTTPStatus
from typing import IO, Any, Final, cast

from moto.core.request import PRESERVED_HEADER_NAMES_ENVIRON_KEY
from moto.moto_server.werkzeug_app import MotoRequestHandler
from werkzeug import serving
from werkzeug.serving import WSGIRequestHandler
from werkzeug.wsgi import LimitedStream

_MAX_LINE: Final = 65536  # the standard library's limits
_MAX_HEADERS: Final = 100
# A header line the email parser reads as one plain header: a name of visible characters
# other than ':', a colon, anything.
_PLAIN_HEADER: Final = re.compile(rb"[!-9;-~]+:[^\r\n]*\r?\n")


class QuietRequestHandler(MotoRequestHandler):
    """No access log line per request; errors still reach the log. TCP_NODELAY: werkzeug
    sends headers and body in two writes, which Nagle's algorithm would hold back."""

    disable_nagle_algorithm = True
    _body: LimitedStream | None = None  # this request's body, while it may be kept alive
    _kept: tuple[Any, Any] | None = None  # the real stream and socket, while werkzeug drains

    _coalescing = False  # while werkzeug writes an answer: headers wait for the body

    def setup(self) -> None:
        super().setup()
        self.wfile = _Writer(self.connection)
        connections(self.server).add(self.connection)

    def flush_headers(self) -> None:
        """Within an answer, the header block is held until the body's first write (or the
        answer's flush): one send, not two."""
        if not self._coalescing or not isinstance(self.wfile, _Writer):
            super().flush_headers()
            return
        buffered: list[bytes] | None = getattr(self, "_headers_buffer", None)
        if buffered is not None:
            self.wfile.hold(b"".join(buffered))
            self._headers_buffer = []  # type: ignore[var-annotated]

    def run_wsgi(self) -> None:
        self._coalescing = True
        try:
            super().run_wsgi()
        finally:
            self._coalescing = False
            self.wfile.flush()  # nothing is ever left held past an answer

    def finish(self) -> None:
        connections(self.server).discard(self.connection)
        super().finish()

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        return

    def send_header(self, keyword: str, value: str) -> None:
        """werkzeug's `Connection: close` is left out when the connection can serve another
        request: the client did not ask to close and this request's body is drained."""
        if keyword.lower() == "connection" and value.lower() == "close" and self._reusable():
            return
        super().send_header(keyword, value)

    def _reusable(self) -> bool:
        body, self._body = self._body, None
        if self.close_connection or body is None:
            return False
        try:
            body.exhaust()
        except (OSError, ValueError):
            return False
        # werkzeug drains the socket after each answer (it reads until the client stops
        # sending, which on a kept connection is the next request): it gets a drained view
        # until this request is done.
        self._kept = (self.rfile, self.connection)
        self.rfile, self.connection = _DRAINED, _DRAINED  # type: ignore[assignment]
        return True

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        finally:
            if self._kept is not None:
                (self.rfile, self.connection), self._kept = self._kept, None

    def connection_dropped(self, error: BaseException, environ: Any = None) -> None:
        """An answer that broke off (or was never sent) ends the connection."""
        self.close_connection = True
        super().connection_dropped(error, environ)

    def parse_request(self) -> bool:
        """The standard parse_request, with plain header lines read without email's parser."""
        self._body = None
        line = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = line.split()
        if len(words) != 3 or words[2] not in ("HTTP/1.1", "HTTP/1.0") or words[1][:2] == "//":
            return bool(super().parse_request())
        self.requestline = line
        self.command, self.path, self.request_version = words
        self.close_connection = not (
            self.request_version >= "HTTP/1.1" and self.protocol_version >= "HTTP/1.1"
        )
        lines: list[bytes] = []
        while True:
            raw = self.rfile.readline(_MAX_LINE + 1)
            if len(raw) > _MAX_LINE:
                self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Line too long")
                return False
            lines.append(raw)
            if len(lines) > _MAX_HEADERS:
                self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Too many headers")
                return False
            if raw in (b"\r\n", b"\n", b""):
                break
        self.headers = _message(lines, self.MessageClass)
        connection = self.headers.get("Connection", "").lower()
        if connection == "close":
            self.close_connection = True
        elif connection == "keep-alive" and self.protocol_version >= "HTTP/1.1":
            self.close_connection = False
        expect = self.headers.get("Expect", "")
        if (
            expect.lower() == "100-continue"
            and self.protocol_version >= "HTTP/1.1"
            and self.request_version >= "HTTP/1.1"
        ):
            return bool(self.handle_expect_100())
        return True

    def make_environ(self) -> dict[str, Any]:
        """moto's environ; without an underscore in any header name, moto adds nothing but
        an empty map of preserved names, so werkzeug's is taken as it is."""
        if any("_" in name for name in self.headers):
            environ: dict[str, Any] = super().make_environ()
        else:
            environ = WSGIRequestHandler.make_environ(self)
            environ[PRESERVED_HEADER_NAMES_ENVIRON_KEY] = {}
        if self.request_version == "HTTP/1.1" and not environ.get("wsgi.input_terminated"):
            length = str(environ.get("CONTENT_LENGTH") or "0")
            if length.isdigit():
                self._body = LimitedStream(cast(IO[bytes], self.rfile), int(length))
                environ["wsgi.input"] = self._body
        return environ


class _Drained:
    """A request stream with nothing left: always ready to read, and read empty. The file
    descriptor is a pipe's read end whose write end is closed (so a selector sees it ready
    at once)."""

    def __init__(self) -> None:
        self._read, write = os.pipe()
        os.close(write)

    def fileno(self) -> int:
        return self._read

    def read(self, size: int = -1) -> bytes:
        return b""


_DRAINED: Final = _Drained()


class _Writer(io.BufferedIOBase):
    """The connection's output, as socketserver's unbuffered writer, except that bytes held
    (an answer's header block) go out with the next write, or on flush."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._held = b""

    def writable(self) -> bool:
        return True

    def hold(self, data: bytes) -> None:
        self._held += data

    def write(self, data: Any) -> int:
        held, self._held = self._held, b""
        size = memoryview(data).nbytes
        self._sock.sendall(held + bytes(data) if held else data)
        return size

    def flush(self) -> None:
        held, self._held = self._held, b""
        if held:
            self._sock.sendall(held)

    def fileno(self) -> int:
        return self._sock.fileno()


class _DrainSelector:
    """The selector werkzeug drains a request stream with: for the drained stream of a kept
    connection, ready at once (what epoll answers for a pipe whose writer is closed),
    without a system call; for anything else, a real selector."""

    def __init__(self) -> None:
        self._ready: selectors.SelectorKey | None = None
        self._real: selectors.BaseSelector | None = None

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        if fileobj is _DRAINED and self._ready is None and self._real is None:
            self._ready = selectors.SelectorKey(fileobj, fileobj.fileno(), events, data)
            return self._ready
        if self._real is None:
            self._real = selectors.DefaultSelector()
            if self._ready is not None:
                ready, self._ready = self._ready, None
                self._real.register(ready.fileobj, ready.events, ready.data)
        return self._real.register(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if self._ready is not None:
            return [(self._ready, self._ready.events & selectors.EVENT_READ)]
        return self._real.select(timeout) if self._real is not None else []

    def close(self) -> None:
        if self._real is not None:
            self._real.close()


def _werkzeug_selectors() -> types.ModuleType:
    """The selectors module as werkzeug's server sees it: the standard one, except that its
    DefaultSelector knows the drained stream."""
    seen = types.ModuleType(selectors.__name__, selectors.__doc__)
    vars(seen).update(vars(selectors))
    seen.DefaultSelector = _DrainSelector  # type: ignore[attr-defined]
    return seen


vars(serving)["selectors"] = _werkzeug_selectors()

_CONNECTIONS_LOCK: Final = threading.Lock()


def connections(server: Any) -> set[socket.socket]:
    """The server's open client connections (made on first use)."""
    with _CONNECTIONS_LOCK:
        found: set[socket.socket] | None = getattr(server, "_sandbox_connections", None)
        if found is None:
            found = server._sandbox_connections = set()
        return found


def close_connections(server: Any) -> None:
    """End every open client connection: a stopped sandbox answers nobody."""
    for connection in list(connections(server)):
        with contextlib.suppress(OSError):
            connection.shutdown(socket.SHUT_RDWR)


def _message(lines: list[bytes], message_class: Any) -> http.client.HTTPMessage:
    """What http.client.parse_headers makes of these lines (the blank one that ends them
    included)."""
    *headers, end = lines
    if end not in (b"\r\n", b"\n", b"") or not all(_PLAIN_HEADER.fullmatch(raw) for raw in headers):
        text = b"".join(lines).decode("iso-8859-1")
        parsed: http.client.HTTPMessage = email.parser.Parser(_class=message_class).parsestr(text)
        return parsed
    message: http.client.HTTPMessage = message_class()
    for raw in headers:
        name, _, value = raw.decode("iso-8859-1").partition(":")
        # as email's compat32 policy stores a header: value left-stripped, no line end
        message[name] = value.lstrip(" \t").rstrip("\r\n")
    message.set_payload("")  # as the email parser leaves it: nothing after the headers
    return message
