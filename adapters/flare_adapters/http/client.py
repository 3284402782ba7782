"""The HTTP client transport: ``AsyncHttpTransport`` and its sync flavour.

Every command travels as the request that ``flare_adapters.http.routes`` - the table the
server is built from - says: ``command_to_request`` gives method, path, query, JSON body and
headers, so client and server cannot drift apart. Replies come back as ``{"kind": "ok", ...}``
JSON or as ``application/problem+json`` documents, which decode straight into ``Problem``
replies naming the server's exception and its attributes.

Job folders go up as a streamed ``application/zip`` request body and archives come down as a
streamed response body: neither is ever whole in memory. Uploads and downloads report
``TransferProgress`` to the optional ``progress`` callback.

Plain calls (the login and every command with a JSON reply) go out on kept-alive
connections of their own, written and parsed with httptools (``plain``: on the loop,
``async_pool``; for the sync flavour on the caller's thread, ``blocking``), which cost a
fraction of aiohttp's client machinery; uploads, downloads and the event streams use
aiohttp's client, which streams bodies.

Deadlines: a call must complete within its timeout; an upload or download may take as long as
it needs but fails once ``timeout`` seconds pass without a byte moving. Foreign failures
(aiohttp, ssl, timeouts, msgspec) are translated in one place, ``_translate``: failing to
reach the server, a timeout or a stream that broke off become ``NoConnection``; an answer the
client cannot read becomes ``InternalError``. Waits between polls (capped by
``max_poll_interval``) end at the first event news on the server's event stream, which is
held open across sleeps (``event_streams``), so a change between a poll and the next sleep
still wakes it.

``connect("http://host:port", ...)`` goes through ``http_transport`` (entry points ``http``
and ``https`` of the ``flare_core.transports`` group).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import ssl
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Any, Final
from urllib.parse import quote, urlencode, urlsplit

import aiohttp
import httptools
import msgspec
import yarl

from flare_adapters.http.async_pool import AsyncConnections
from flare_adapters.http.blocking import BlockingConnections
from flare_adapters.http.event_streams import EventStreams
from flare_adapters.http.plain import PlainCall
from flare_adapters.http.routes import (
    EVENTS_PATH,
    LOGIN_PATH,
    HttpRequest,
    LoginRequest,
    command_to_request,
)
from flare_adapters.loop_thread import BorrowedLoop, ThreadedTransport
from flare_adapters.network import (
    CallerCode,
    ChunkPump,
    NetworkOptions,
    NetworkTransportFactory,
    login_with_retries,
    op_name,
    translating,
)
from flare_core.commands import Command
from flare_core.errors import InternalError, InvalidArgumentError, NoConnection
from flare_core.principal import Grant
from flare_core.replies import Ok, Problem, Reply
from flare_core.steps import ANY_JOB
from flare_ports.transport import AsyncTransport, ChunkSink
from flare_ports.wire import WireError, json_codec

__all__ = ["AsyncHttpTransport", "HttpTransport", "http_transport", "open_http_transport"]

_JSON: Final = "application/json"
_PROBLEM: Final = "application/problem+json"
_ZIP: Final = "application/zip"
_UNAVAILABLE: Final = frozenset({502, 503, 504})
_encode_json = msgspec.json.Encoder().encode
_decode_grant = msgspec.json.Decoder(Grant).decode


def _translated(exc: BaseException, timeout: float) -> Exception | None:
    """The domain exception for a foreign one, most specific first (None: not foreign)."""
    if isinstance(exc, aiohttp.InvalidURL):
        return InvalidArgumentError(f"invalid server URL: {exc}")
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | ssl.SSLCertVerificationError):
        return NoConnection(f"cannot connect to server: certificate rejected ({exc})")
    if isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError):
        return NoConnection(f"cannot connect to server: TLS failed ({exc})")
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return NoConnection("cannot connect to server: connection timed out")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return NoConnection(f"connection to server broke off mid-stream ({exc})")
    if isinstance(exc, TimeoutError):
        return NoConnection(f"no reply from server within {timeout:g}s")
    if isinstance(exc, aiohttp.ClientError | OSError | httptools.HttpParserError):
        return NoConnection(f"cannot connect to server: {exc or type(exc).__name__}")
    if isinstance(exc, msgspec.MsgspecError | WireError):
        return InternalError(f"unreadable reply from server: {exc}")
    return None


def _translate(timeout: float, caller: CallerCode | None = None) -> AbstractContextManager[None]:
    """The one place this adapter's foreign errors become domain exceptions."""
    return translating(_translated, timeout, caller)


def _reply_of(status: int, content_type: str, body: bytes) -> Reply:
    """Decode a JSON reply or a problem document.

    Raises:
        NoConnection: a gateway answered instead of the server (502/503/504 without a
            problem document).
        WireError: the body does not decode (translated by the caller).
    """
    if content_type in (_JSON, _PROBLEM):
        return json_codec.decode_reply(body)
    if status in _UNAVAILABLE:
        raise NoConnection(f"cannot connect to server: HTTP {status} from a gateway")
    return Problem.from_exception(InternalError(f"unexpected HTTP {status} reply ({content_type})"))


def _base_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise InvalidArgumentError(f"expected an http(s)://host[:port] URL, got {url!r}")
    if parts.query or parts.fragment:
        raise InvalidArgumentError(f"server URL must not have a query or fragment: {url!r}")
    return f"{parts.scheme.lower()}://{parts.netloc}{parts.path.rstrip('/')}"


class AsyncHttpTransport:
    """An ``AsyncTransport`` over the server's HTTP API.

    Create it with ``open`` (which logs in) on the event loop that will use it.

    Args:
        url: ``http(s)://host:port`` (a path prefix is kept, for servers behind a proxy).
        options: timeouts, TLS, progress, chunk size.
    """

    def __init__(self, url: str, options: NetworkOptions | None = None) -> None:
        self._base = _base_url(url)
        parts = urlsplit(self._base)
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._prefix = parts.path
        self._options = options or NetworkOptions()
        self._http: aiohttp.ClientSession | None = None
        self._events_http: aiohttp.ClientSession | None = None
        self._grant: Grant | None = None
        self._closed = False
        self._events = EventStreams(self._open_event_stream)
        self._plain = AsyncConnections(
            self._base, tls=self._options.ssl, connect_timeout=self._options.connect_timeout
        )

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        user: str,
        api_key: str | None = None,
        study: str = "default",
        options: NetworkOptions | None = None,
    ) -> AsyncHttpTransport:
        """Connect to ``url`` and log in (connection failures retried per ``options.retry``).

        Raises:
            NoConnection: the server could not be reached.
            AuthenticationError: the login was rejected (``auth_code`` says why).
            InvalidArgumentError: a malformed URL.
        """
        transport = cls(url, options)
        try:
            await login_with_retries(
                transport._options.retry, lambda: transport.login(user, api_key, study)
            )
        except BaseException:
            await transport.aclose()
            raise
        return transport

    # --- plumbing ----------------------------------------------------------------------------

    @property
    def grant(self) -> Grant | None:
        """The login's grant (token, principal, idle timeout), once logged in."""
        return self._grant

    @property
    def closed(self) -> bool:
        """True once ``aclose`` ran."""
        return self._closed

    def _session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise NoConnection("transport is closed")
        if self._http is None:
            self._http = self._new_session()
        return self._http

    def _event_session(self) -> aiohttp.ClientSession:
        # The event streams have connections of their own: a stream closed unread closes its
        # connection, and a held one keeps it; taken from the call pool, either would cost
        # the waiter's next call (the poll the event asked for) a new TCP connection.
        if self._closed:
            raise NoConnection("transport is closed")
        if self._events_http is None:
            self._events_http = self._new_session()
        return self._events_http

    def _new_session(self) -> aiohttp.ClientSession:
        ssl_option: ssl.SSLContext | bool = self._options.ssl or True
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=ssl_option),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._options.connect_timeout),
            trust_env=False,
            auto_decompress=True,
        )
        # aiohttp silently resends GET/PUT/DELETE once when the connection fails under
        # them. PUT and DELETE routes carry mutations that must never be replayed
        # (DECISIONS §7), and the session's flows already retry what is idempotent, so
        # the transport sends every request exactly once. aiohttp has no public switch.
        session._retry_connection = False
        return session

    @property
    def base_url(self) -> str:
        """``scheme://host:port`` and the path prefix, as the requests go to."""
        return self._base

    @property
    def options(self) -> NetworkOptions:
        """The options the transport was opened with."""
        return self._options

    def _target(self, path: str, query: list[tuple[str, str]]) -> str:
        # The path prefix of the base URL, the route's path and its query, percent-encoded.
        target = self._prefix + path
        if query:
            target += "?" + urlencode(query, quote_via=quote)
        return target

    def _url(self, target: str) -> yarl.URL:
        # ``encoded=True``: the route table percent-encoded the path; letting yarl normalise
        # it would turn "%2E%2E" back into ".." and reach another route.
        return yarl.URL(self._origin + target, encoded=True)

    def _headers(self, extra: dict[str, str]) -> dict[str, str]:
        headers = {"Accept": f"{_JSON}, {_PROBLEM}", **extra}
        if self._grant is not None:
            headers["Authorization"] = f"Bearer {self._grant.token}"
        return headers

    # --- login --------------------------------------------------------------------------------

    async def login(self, user: str, api_key: str | None, study: str) -> Grant:
        """``POST /v1/sessions``: log in and keep the bearer token.

        Raises:
            NoConnection: the server could not be reached.
            AuthenticationError: the login was rejected.
        """
        if self._closed:
            raise NoConnection("transport is closed")
        timeout = self._options.connect_timeout + self._options.timeout
        call = PlainCall(
            "POST",
            self._target(LOGIN_PATH, []),
            _encode_json(LoginRequest(user=user, api_key=api_key, study=study)),
            self._headers({"Content-Type": _JSON}),
        )
        with _translate(timeout):
            answer = await self._plain.exchange(call, timeout)
            if answer.status in (200, 201):
                self._grant = _decode_grant(answer.body)
                return self._grant
            reply = _reply_of(answer.status, answer.content_type, answer.body)
        if isinstance(reply, Problem):
            raise reply.to_exception()
        raise InternalError(f"login answered HTTP {answer.status} without a grant")

    # --- AsyncTransport -------------------------------------------------------------------------

    def prepare(self, command: Command) -> PlainCall:
        """The request that carries a plain call of ``command`` (JSON in, JSON out), marked
        as seen by the event streams' wake rule. Must run where the loop's state may be
        touched: on the loop, or by the thread holding it (the sync flavour).
        """
        request = command_to_request(command)
        body = None if request.json_body is None else _encode_json(request.json_body)
        return self._plain_call(command, request, body, _JSON)

    def prepare_upload(self, command: Command, archive: bytes) -> PlainCall:
        """The request that carries an upload command with its whole archive as the body
        (a small one; ``aupload`` streams the rest), marked as ``prepare`` marks a call."""
        return self._plain_call(command, command_to_request(command), archive, _ZIP)

    def _plain_call(
        self, command: Command, request: HttpRequest, body: bytes | None, media: str
    ) -> PlainCall:
        self._mark_seen(command)
        headers = self._headers(request.headers)
        if body is not None:
            headers["Content-Type"] = media
        return PlainCall(request.method, self._target(request.path, request.query), body, headers)

    async def acall(self, command: Command, timeout: float | None) -> Reply:
        """Send ``command`` as its route's request (see ``flare_ports.AsyncTransport``).

        Raises:
            NoConnection: the server could not be reached or did not answer in time.
            InternalError: the answer could not be read.
        """
        if self._closed:
            raise NoConnection("transport is closed")
        limit = self._options.call_timeout(timeout)
        call = self.prepare(command)
        with _translate(limit):
            reply = await self._plain.exchange(call, limit)
            return _reply_of(reply.status, reply.content_type, reply.body)

    async def aupload(
        self, command: Command, chunks: AsyncIterable[bytes], timeout: float | None
    ) -> Reply:
        """Stream ``chunks`` as the request body of ``command``'s route.

        The deadline is idle-based: it fails when ``timeout`` seconds pass without a chunk
        going out or, once all went out, without the reply.

        Raises:
            NoConnection: the server could not be reached, went silent or cut the upload.
            Exception: whatever producing ``chunks`` or the progress callback raised.
        """
        limit = self._options.call_timeout(timeout)
        request = command_to_request(command)
        self._mark_seen(command)
        headers = self._headers({**request.headers, "Content-Type": _ZIP})
        caller = CallerCode(self._options.progress, op_name(command))
        loop = asyncio.get_running_loop()
        with _translate(limit, caller):
            async with asyncio.timeout(loop.time() + limit) as deadline:
                pump = ChunkPump(chunks, caller, self._options.chunk_size)

                async def body() -> AsyncIterator[bytes | memoryview]:
                    sent = 0
                    while (chunk := await pump.next()) is not None:
                        yield chunk
                        sent += len(chunk)
                        deadline.reschedule(loop.time() + limit)
                        caller.report("upload", sent)
                    caller.report("upload", sent, done=True)

                try:
                    async with self._session().request(
                        request.method,
                        self._url(self._target(request.path, request.query)),
                        data=body(),
                        headers=headers,
                    ) as response:
                        data = await response.read()
                        if caller.error is not None:  # the server answered a partial upload
                            raise caller.error
                        return _reply_of(response.status, response.content_type, data)
                finally:
                    # aiohttp may abandon ``body`` mid-way: the pump must stop before we
                    # return, so that the caller can close ``chunks``.
                    await pump.stop()

    async def adownload(self, command: Command, sink: ChunkSink, timeout: float | None) -> Reply:
        """Stream the archive of a download command into ``sink`` (idle-based deadline, as
        ``aupload``).

        Returns:
            ``Ok({"bytes": n})`` once the whole archive went into ``sink``, or the server's
            ``Problem`` (then ``sink`` was never called).

        Raises:
            NoConnection: the server could not be reached, went silent or cut the stream.
            Exception: whatever ``sink`` or the progress callback raised.
        """
        limit = self._options.call_timeout(timeout)
        request = command_to_request(command)
        self._mark_seen(command)
        caller = CallerCode(self._options.progress, op_name(command))
        loop = asyncio.get_running_loop()
        with _translate(limit, caller):
            async with asyncio.timeout(loop.time() + limit) as deadline:
                async with self._session().request(
                    request.method,
                    self._url(self._target(request.path, request.query)),
                    headers=self._headers({**request.headers, "Accept": f"{_ZIP}, {_PROBLEM}"}),
                ) as response:
                    if response.status != 200 or response.content_type != _ZIP:
                        body = await response.read()
                        return _reply_of(response.status, response.content_type, body)
                    received = 0
                    async for chunk in response.content.iter_chunked(self._options.chunk_size):
                        caller.call(sink, chunk)
                        received += len(chunk)
                        deadline.reschedule(loop.time() + limit)
                        caller.report("download", received)
                    caller.report("download", received, done=True)
                    return Ok(value={"bytes": received})

    def monotonic(self) -> float:
        """Real monotonic time."""
        return time.monotonic()

    async def asleep(self, seconds: float, wake_on: str | None) -> bool:
        """Sleep (capped by ``max_poll_interval``), woken early by the server's job events.

        ``GET /v1/events`` (``?job_id=`` unless ``wake_on`` is ``ANY_JOB``) is opened by the
        first sleep on a key and held for the next ones (``EventStreams``); a sleep ends at
        news by the shared ``WakeRule``. Events are hints: a stream that cannot be opened or
        breaks off only means sleeping the full time, never an error.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._options.sleep_for(seconds)
        if wake_on is not None and not self._closed and self._grant is not None:
            with contextlib.suppress(Exception):  # a hint source: any failure means "sleep"
                return await self._events.sleep(wake_on, deadline)
        await asyncio.sleep(max(0.0, deadline - loop.time()))
        return False

    def _open_event_stream(self, key: str) -> AbstractAsyncContextManager[aiohttp.ClientResponse]:
        query = [] if key == ANY_JOB else [("job_id", key)]
        return self._event_session().get(
            self._url(self._target(EVENTS_PATH, query)), headers=self._headers({})
        )

    def _mark_seen(self, command: Command) -> None:
        job_id = getattr(command, "job_id", None)
        self._events.asked(job_id if isinstance(job_id, str) else None)

    async def aclose(self) -> None:
        """Close the connection pool (idempotent; does not log out)."""
        if self._closed:
            return
        self._closed = True
        self._plain.close()
        await asyncio.sleep(0)  # the aborted connections close their sockets meanwhile
        await self._events.close()
        for session in (self._http, self._events_http):
            if session is not None:
                await session.close()


class HttpTransport(ThreadedTransport):
    """The sync ``Transport`` flavour: an ``AsyncHttpTransport`` on a private loop.

    Plain calls go out on the caller's thread over kept-alive connections of their own
    (``flare_adapters.http.blocking``: running the loop for a call cost about as much CPU as
    the call itself), while it holds the loop, so the wake rule the async transport keeps is
    touched by one thread at a time. When another thread runs the loop at that moment, the
    call goes through the loop (the async transport's plain connections). Logins, uploads,
    downloads and sleeps always do.

    Args:
        runner: the private loop (owned from now on).
        transport: the ``AsyncHttpTransport`` created on it.
    """

    def __init__(self, runner: BorrowedLoop, transport: AsyncTransport) -> None:
        if not isinstance(transport, AsyncHttpTransport):
            raise TypeError(f"expected an AsyncHttpTransport, got {type(transport).__name__}")
        super().__init__(runner, transport)
        self._http = transport
        self._plain = BlockingConnections(
            transport.base_url,
            tls=transport.options.ssl,
            connect_timeout=transport.options.connect_timeout,
        )

    def call(self, command: Command, timeout: float | None) -> Reply:
        """See ``flare_ports.Transport.call``."""
        if not self._runner.borrow():
            return super().call(command, timeout)
        try:
            return self._send(self._http.prepare(command), timeout)
        finally:
            self._runner.give_back()

    def upload(self, command: Command, chunks: Iterable[bytes], timeout: float | None) -> Reply:
        """See ``flare_ports.Transport.upload``. An archive of one piece no longer than the
        session's ``chunk_size`` (a small job folder: an archive's pieces are at least a
        chunk but the last) goes out as a plain call, its progress reported once it is
        ready to send; a longer one is streamed through the loop."""
        pieces = iter(chunks)
        ready = list(itertools.islice(pieces, 2))
        small = len(ready) == 1 and len(ready[0]) <= self._http.options.chunk_size
        if not (small and self._runner.borrow()):
            return super().upload(command, itertools.chain(ready, pieces), timeout)
        (first,) = ready
        try:
            call = self._http.prepare_upload(command, first)
            # Reported before it goes out: a callback that fails (raising as itself) stops
            # the upload there.
            caller = CallerCode(self._http.options.progress, op_name(command))
            caller.report("upload", len(first))
            caller.report("upload", len(first), done=True)
            return self._send(call, timeout)
        finally:
            self._runner.give_back()

    def _send(self, call: PlainCall, timeout: float | None) -> Reply:
        # On the caller's thread, which holds the loop (``borrow``).
        limit = self._http.options.call_timeout(timeout)
        with _translate(limit):
            reply = self._plain.exchange(call, limit)
            return _reply_of(reply.status, reply.content_type, reply.body)

    def close(self) -> None:
        """Close the async transport, the private loop and the kept connections."""
        try:
            super().close()
        finally:
            self._plain.close()

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        user: str,
        api_key: str | None = None,
        study: str = "default",
        options: NetworkOptions | None = None,
    ) -> HttpTransport:
        """Start the loop thread, connect and log in.

        Raises:
            NoConnection: the server could not be reached.
            AuthenticationError: the login was rejected.
        """
        return cls.open(
            lambda: AsyncHttpTransport.open(
                url, user=user, api_key=api_key, study=study, options=options
            ),
            name="flare-http",
        )


async def open_http_transport(
    url: str,
    *,
    user: str,
    api_key: str | None,
    study: str,
    options: NetworkOptions,
    extra: dict[str, Any],
) -> AsyncHttpTransport:
    """The opener ``http_transport`` uses (no HTTP-specific options exist)."""
    return await AsyncHttpTransport.open(
        url, user=user, api_key=api_key, study=study, options=options
    )


http_transport: Final = NetworkTransportFactory(
    "http", open_http_transport, frozenset(), HttpTransport
)
"""The ``http``/``https`` transport factory: entry points
``http = "flare_adapters.http.client:http_transport"`` and
``https = "flare_adapters.http.client:http_transport"``."""
