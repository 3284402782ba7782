"""Kept-alive HTTP/1.1 connections for the async HTTP transport's plain calls, on its event
loop (see ``plain`` for why, and what a plain call is).

Each connection is an asyncio protocol feeding httptools: a request is one ``write`` of its
bytes, and the reply's end resolves the caller's future from ``data_received``, with no
task or stream reader in between. Connections are kept for reuse (at most ``keep`` idle),
each carrying one request at a time; at most ``limit`` are open at once (aiohttp's own
default), further calls wait for one. A kept connection the server closed meanwhile is
known from ``connection_lost``, or, when the loop has not read its end yet, from the
socket being readable while idle: it is never reused, so a request is sent exactly once, and
nothing is ever resent (DECISIONS §7).

Cancellation (the call's deadline, a cancelled task) closes the connection the request was
on: its reply may still come, and must not be read as the next request's.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Final

import httptools

from flare_adapters.http.plain import (
    Endpoint,
    PlainCall,
    PlainReply,
    ReplyReader,
    encode_request,
    readable_while_idle,
)
from flare_core.errors import NoConnection

__all__ = ["AsyncConnections"]

_LIMIT: Final = 100


class _Connection(asyncio.Protocol):
    """One connection: the reply it is reading and the future its caller awaits."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.reading: ReplyReader | None = None
        self.waiter: asyncio.Future[PlainReply] | None = None
        self.lost = False

    # --- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        reading = self.reading
        if reading is None:  # bytes while idle: the server is out of step
            self.close()
            return
        try:
            reading.feed(data)
        except httptools.HttpParserError as exc:
            self._fail(exc)
            return
        if reading.done:
            self._settle(reading)

    def eof_received(self) -> bool:
        reading = self.reading
        if reading is not None and reading.complete_at_end:
            self._settle(reading)
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._fail(exc or ConnectionResetError("the server closed the connection mid-reply"))

    # --- the pool's side -----------------------------------------------------------------

    def send(self, request: bytes) -> asyncio.Future[PlainReply]:
        if not self.reusable:  # lost since it was opened: no callback would answer
            raise ConnectionResetError("the server closed the connection")
        assert self.transport is not None
        self.reading = ReplyReader()
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self.waiter

    @property
    def reusable(self) -> bool:
        return not self.lost and self.transport is not None and not self.transport.is_closing()

    def dropped(self) -> bool:
        # The loop may not have read a close that has already arrived: ask the socket too.
        if not self.reusable:
            return True
        assert self.transport is not None
        sock = self.transport.get_extra_info("socket")
        return sock is None or readable_while_idle(sock.fileno())

    def close(self) -> None:
        # Aborted, not closed: a TLS close would wait for the peer's close_notify (up to
        # asyncio's shutdown timeout), keeping the socket past the loop's own end.
        self.lost = True
        if self.transport is not None:
            self.transport.abort()

    def _settle(self, reading: ReplyReader) -> None:
        self.reading = None
        if not reading.reusable:
            self.close()
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(reading.reply())

    def _fail(self, exc: BaseException) -> None:
        self.reading = None
        self.close()
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)


class AsyncConnections:
    """The kept-alive connections to one server, on the loop that uses them.

    Args:
        base_url: ``http(s)://host[:port][/prefix]`` (already validated by the transport).
        tls: the TLS context for ``https`` (None: the system's default verification).
        connect_timeout: seconds to open a connection.
        keep: idle connections kept at most.
        limit: connections open at once at most.
    """

    def __init__(
        self,
        base_url: str,
        *,
        tls: ssl.SSLContext | None,
        connect_timeout: float,
        keep: int = 32,
        limit: int = _LIMIT,
    ) -> None:
        self._endpoint = Endpoint.of(base_url, tls)
        self._connect_timeout = connect_timeout
        self._keep = keep
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(limit)
        self._closed = False

    async def exchange(self, call: PlainCall, limit: float) -> PlainReply:
        """Send ``call`` and read its whole reply within ``limit`` seconds.

        Raises:
            NoConnection: the connections were closed, or the server could not be reached.
            InvalidArgumentError: a header or the target holds a control character.
            TimeoutError: the limit passed (the caller's translation names it).
            OSError, ssl.SSLError, httptools.HttpParserError: the exchange failed (the
                connection is closed, never reused).
        """
        request = encode_request(call, self._endpoint.authority)
        async with asyncio.timeout(limit), self._slots:
            connection = await self._take()
            try:
                reply = await connection.send(request)
            except BaseException:
                connection.close()
                raise
        self._give_back(connection)
        return reply

    def close(self) -> None:
        """Close the idle connections; one in use is closed when it comes back (idempotent).

        Their sockets close at the loop's next iteration.
        """
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    async def _take(self) -> _Connection:
        if self._closed:
            raise NoConnection("transport is closed")
        while self._idle:
            connection = self._idle.pop()
            if not connection.dropped():
                return connection
            connection.close()
        return await self._open()

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()
        endpoint = self._endpoint
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, connection = await loop.create_connection(
                    _Connection,
                    endpoint.host,
                    endpoint.port,
                    ssl=endpoint.tls,
                    server_hostname=endpoint.host if endpoint.tls is not None else None,
                )
        except TimeoutError:
            raise NoConnection("cannot connect to server: connection timed out") from None
        return connection

    def _give_back(self, connection: _Connection) -> None:
        if not self._closed and connection.reusable and len(self._idle) < self._keep:
            self._idle.append(connection)
        else:
            connection.close()
