"""Plain calls over HTTP/1.1: a command's request and its whole reply, no streamed body.

The HTTP transport sends its plain calls itself instead of through aiohttp's client, whose
request machinery was most of a read's client CPU. Measured on a served ``get_job_meta``
(client CPU a call, sync): 186 us through aiohttp on the loop, 98 us with the standard
library's ``http.client`` on a kept-alive connection (half of it its ``email``-based header
parser), 185 us with ``urllib3``, and 17 us writing the request's head and parsing the
reply with ``httptools`` (llhttp, the parser uvicorn uses). The request is what
``command_to_request`` says, as before, and the reply goes through the same decoding.

What is written here is only the request's head (method, target, headers, length), whose
values come from the route table and the session; httptools does all the parsing: status,
headers, ``Content-Length`` or chunked bodies, keep-alive. A reply framed by the end of the
connection (no length, not chunked) ends there, and that connection is not reused; nor is
one that sent more than the reply, or said it closes.

``BlockingConnections`` (``blocking``) sends them on the sync caller's thread,
``AsyncConnections`` (``async_pool``) on the event loop.
"""

from __future__ import annotations

import re
import select
import ssl
from typing import Final, NamedTuple
from urllib.parse import urlsplit

import httptools

from flare_core.errors import InvalidArgumentError

__all__ = [
    "Endpoint",
    "PlainCall",
    "PlainReply",
    "ReplyReader",
    "encode_request",
    "readable_while_idle",
]

_DEFAULT_TYPE: Final = "application/octet-stream"  # what aiohttp reports for a missing type
_UNSAFE: Final = re.compile(r"[\x00-\x1f\x7f]")  # CR, LF and other controls split a head
_BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH"})


class PlainCall(NamedTuple):
    """One request without a streamed body.

    Attributes:
        method: the HTTP method.
        target: the percent-encoded path (with the server's prefix) and query.
        body: the request body, or None.
        headers: every header to send but ``Host`` and ``Content-Length``.
    """

    method: str
    target: str
    body: bytes | None
    headers: dict[str, str]


class PlainReply(NamedTuple):
    """A whole reply: status, media type (lower case, no parameters) and body."""

    status: int
    content_type: str
    body: bytes


def encode_request(call: PlainCall, authority: str) -> bytes:
    """The bytes of ``call``'s request to the server at ``authority`` (``host[:port]``).

    Raises:
        InvalidArgumentError: a header or the target holds a control character, or a
            header is not Latin-1 text (nothing is sent).
    """
    lines = [f"{call.method} {call.target} HTTP/1.1", f"Host: {authority}"]
    lines.extend(f"{name}: {value}" for name, value in call.headers.items())
    if call.body is not None or call.method in _BODY_METHODS:
        lines.append(f"Content-Length: {0 if call.body is None else len(call.body)}")
    parts = [call.method, call.target, *call.headers, *call.headers.values()]
    if _UNSAFE.search("".join(parts)) is not None:  # each would split the head
        raise InvalidArgumentError("a request header or path holds a control character")
    head = "\r\n".join(lines)
    try:
        encoded = (head + "\r\n\r\n").encode("latin-1")
    except UnicodeEncodeError:
        raise InvalidArgumentError("a request header is not Latin-1 text") from None
    return encoded if call.body is None else encoded + call.body


class Endpoint(NamedTuple):
    """Where a pool's connections go.

    Attributes:
        host: the host name or address to connect to.
        port: the TCP port.
        authority: the ``Host`` header.
        tls: the TLS context (``https``), or None (``http``).
    """

    host: str
    port: int
    authority: str
    tls: ssl.SSLContext | None

    @classmethod
    def of(cls, base_url: str, tls: ssl.SSLContext | None) -> Endpoint:
        """The endpoint of ``http(s)://host[:port]...``; ``tls`` for ``https`` (None: the
        system's default verification), unused for ``http``."""
        parts = urlsplit(base_url)
        https = parts.scheme == "https"
        host = parts.hostname or ""
        port = parts.port or (443 if https else 80)
        shown = f"[{host}]" if ":" in host else host
        context = (tls if tls is not None else ssl.create_default_context()) if https else None
        return cls(host, port, shown if parts.port is None else f"{shown}:{port}", context)


def readable_while_idle(fileno: int) -> bool:
    """True when an idle kept-alive connection's socket has something to read (or is closed).

    Nothing is due on an idle connection: readable means the server closed it (or broke the
    protocol), so it must not carry a request. Asked before each reuse.
    """
    try:
        readable, _, _ = select.select([fileno], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


class ReplyReader:
    """One reply as httptools parses it: ``feed`` what arrives until ``done`` (or the end of
    the connection, when ``complete_at_end``). Interim ``1xx`` replies are skipped."""

    __slots__ = (
        "body",
        "content_type",
        "done",
        "framed",
        "headers_done",
        "interim",
        "keep_alive",
        "parser",
        "status",
        "trailing",
    )

    def __init__(self) -> None:
        self.parser: httptools.HttpResponseParser | None = httptools.HttpResponseParser(self)
        self.status = 0
        self.body: list[bytes] = []
        self.content_type = _DEFAULT_TYPE
        self.done = False
        self.framed = False  # a Content-Length or Transfer-Encoding says where it ends
        self.headers_done = False
        self.interim = False
        self.keep_alive = False
        self.trailing = False  # bytes came after the reply: the connection is out of step

    def feed(self, data: bytes) -> None:
        """Parse what arrived (the callbacks below fill this in).

        Raises:
            httptools.HttpParserError: the reply is malformed.
        """
        assert self.parser is not None, "the reply was already taken"
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if not self.done:
                raise
            self.trailing = True  # garbage after a whole reply: keep the reply only

    @property
    def complete_at_end(self) -> bool:
        """True when the connection's end completes the reply (no length, not chunked)."""
        return self.headers_done and not self.framed and not self.interim

    @property
    def reusable(self) -> bool:
        """True when the connection may carry another request after this whole reply."""
        return self.keep_alive and not self.trailing

    def reply(self) -> PlainReply:
        """The whole reply (taken once: the parser, which refers back here, is let go)."""
        self.parser = None
        return PlainReply(self.status, self.content_type, b"".join(self.body))

    def on_message_begin(self) -> None:
        if self.done:  # the reply is whole: what follows is kept out of it
            self.trailing = True
            return
        self.body.clear()
        self.content_type = _DEFAULT_TYPE
        self.framed = self.headers_done = False

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.trailing:
            return
        lowered = name.lower()
        if lowered == b"content-type":
            media = value.split(b";", 1)[0].strip().lower()
            self.content_type = media.decode("latin-1") or _DEFAULT_TYPE
        elif lowered in (b"content-length", b"transfer-encoding"):
            self.framed = True

    def on_headers_complete(self) -> None:
        if self.trailing:
            return
        assert self.parser is not None
        self.headers_done = True
        # Asked now: bytes after the reply would overwrite the status, and llhttp forgets the
        # connection's flags once the message is complete.
        self.status = self.parser.get_status_code()
        self.interim = self.status < 200
        self.keep_alive = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        if not self.trailing:
            self.body.append(body)

    def on_message_complete(self) -> None:
        if not self.interim:  # a "100 Continue" is followed by the reply itself
            self.done = True
