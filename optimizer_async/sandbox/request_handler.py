"""The sandbox's HTTP request handler: moto's, with a cheaper reading of request headers.

The standard library hands every request's header block to the email package's parser
and moto then walks the headers twice more to keep S3 metadata names with underscores:
together an eighth of the sandbox's CPU per call. Plain `Name: value` lines (all that AWS
SDKs send) are read here straight into the same message object the email parser would
build; anything else (folded lines, odd names, other HTTP versions) goes the standard way.
"""

from __future__ import annotations

import email.parser
import http.client
import re
from http import HTTPStatus
from typing import Any, Final

from moto.core.request import PRESERVED_HEADER_NAMES_ENVIRON_KEY
from moto.moto_server.werkzeug_app import MotoRequestHandler
from werkzeug.serving import WSGIRequestHandler

_MAX_LINE: Final = 65536  # the standard library's limits
_MAX_HEADERS: Final = 100
# A header line the email parser reads as one plain header: a name of visible characters
# other than ':', a colon, anything.
_PLAIN_HEADER: Final = re.compile(rb"[!-9;-~]+:[^\r\n]*\r?\n")


class QuietRequestHandler(MotoRequestHandler):
    """No access log line per request; errors still reach the log. TCP_NODELAY: werkzeug
    sends headers and body in two writes, which Nagle's algorithm would hold back."""

    disable_nagle_algorithm = True

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        return

    def parse_request(self) -> bool:
        """The standard parse_request, with plain header lines read without email's parser."""
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
            return super().make_environ()
        environ: dict[str, Any] = WSGIRequestHandler.make_environ(self)
        environ[PRESERVED_HEADER_NAMES_ENVIRON_KEY] = {}
        return environ


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
