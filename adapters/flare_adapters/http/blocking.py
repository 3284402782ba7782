"""Kept-alive HTTP/1.1 connections for the sync HTTP transport's plain calls, on the caller's
thread (see ``plain`` for why, and what a plain call is).

A sync call through the event loop also pays for the loop: a task and several of its
iterations for every call. Here the caller's thread writes the request and reads the reply
itself, with blocking sockets.

Connections are kept for reuse (at most ``keep`` idle), each used by one thread at a time.
A kept connection the server closed meanwhile (its keep-alive timeout, a restart) is
readable while idle: it is dropped before reuse and a new one opened, so the request is
still sent exactly once. Nothing is ever resent (DECISIONS §7): a failure after the request
went out is the caller's to handle, as with aiohttp.

Deadlines: opening a connection (TCP and TLS) takes at most the connect timeout; the whole
exchange must end within the call's limit, which bounds every blocking step.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from typing import Final

from flare_adapters.http.plain import (
    Endpoint,
    PlainCall,
    PlainReply,
    ReplyReader,
    encode_request,
    readable_while_idle,
)
from flare_core.errors import NoConnection

__all__ = ["BlockingConnections"]

_RECEIVE: Final = 256 * 1024


class _Connection:
    """One socket (TLS or not) and whether it may carry another request."""

    __slots__ = ("reusable", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reusable = True

    def close(self) -> None:
        self.reusable = False
        self.sock.close()


class BlockingConnections:
    """The kept-alive connections to one server.

    Args:
        base_url: ``http(s)://host[:port][/prefix]`` (already validated by the transport).
        tls: the TLS context for ``https`` (None: the system's default verification).
        connect_timeout: seconds to open a connection.
        keep: idle connections kept at most.
    """

    def __init__(
        self,
        base_url: str,
        *,
        tls: ssl.SSLContext | None,
        connect_timeout: float,
        keep: int = 4,
    ) -> None:
        self._endpoint = Endpoint.of(base_url, tls)
        self._connect_timeout = connect_timeout
        self._keep = keep
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    def exchange(self, call: PlainCall, limit: float) -> PlainReply:
        """Send ``call`` and read its whole reply within ``limit`` seconds.

        Raises:
            NoConnection: the connections were closed, or the server could not be reached.
            InvalidArgumentError: a header or the target holds a control character.
            TimeoutError: the limit passed (the caller's translation names it).
            OSError, ssl.SSLError, httptools.HttpParserError: the exchange failed (the
                connection is closed, never reused).
        """
        deadline = time.monotonic() + limit
        request = encode_request(call, self._endpoint.authority)
        connection = self._take(deadline)
        try:
            reply = _exchange(connection, request, deadline)
        except BaseException:
            connection.close()
            raise
        self._give_back(connection)
        return reply

    def close(self) -> None:
        """Close the idle connections; one in use is closed when it comes back (idempotent)."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def _take(self, deadline: float) -> _Connection:
        while True:
            with self._lock:
                if self._closed:
                    raise NoConnection("transport is closed")
                if not self._idle:
                    break
                connection = self._idle.pop()
            if not readable_while_idle(connection.sock.fileno()):
                return connection
            connection.close()
        return self._open(deadline)

    def _open(self, deadline: float) -> _Connection:
        endpoint = self._endpoint
        timeout = max(0.001, min(self._connect_timeout, deadline - time.monotonic()))
        try:
            sock = socket.create_connection((endpoint.host, endpoint.port), timeout=timeout)
        except TimeoutError:
            raise NoConnection("cannot connect to server: connection timed out") from None
        try:
            # A request must not wait for the ACK of the previous one (Nagle's algorithm).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if endpoint.tls is not None:
                sock = endpoint.tls.wrap_socket(sock, server_hostname=endpoint.host)
        except TimeoutError:
            sock.close()
            raise NoConnection("cannot connect to server: TLS handshake timed out") from None
        except BaseException:
            sock.close()
            raise
        return _Connection(sock)

    def _give_back(self, connection: _Connection) -> None:
        with self._lock:
            if not self._closed and connection.reusable and len(self._idle) < self._keep:
                self._idle.append(connection)
                return
        connection.close()


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the call's deadline passed")
    return left


def _exchange(connection: _Connection, request: bytes, deadline: float) -> PlainReply:
    sock = connection.sock
    sock.settimeout(_remaining(deadline))
    sock.sendall(request)
    reading = ReplyReader()
    while not reading.done:
        sock.settimeout(_remaining(deadline))
        data = sock.recv(_RECEIVE)
        if not data:  # the server closed the connection
            connection.reusable = False
            if reading.complete_at_end:
                break
            raise ConnectionResetError("the server closed the connection mid-reply")
        reading.feed(data)
    if not reading.reusable:
        connection.reusable = False
    return reading.reply()
