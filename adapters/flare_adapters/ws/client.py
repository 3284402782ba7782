"""The WebSocket client transport (websockets): ``AsyncWsTransport`` and its sync flavour.

It speaks the protocol of ``flare_adapters.server.ws`` (documented in that module): one
connection to ``/v1/ws`` carrying many requests in flight, correlated by id; job events pushed
by the server; uploads and downloads as chunk frames under credit-based flow control. Frames
are msgpack (binary) by default, or JSON (``encoding="json"``). permessage-deflate is
negotiated off: frames are small control messages or already-compressed zip pieces, and
compressing them only adds latency.

Network behaviour:

- Every call has a deadline (its timeout); without a reply by then it fails with
  ``NoConnection`` and the server is told to cancel it. Uploads and downloads fail after
  ``timeout`` seconds without progress.
- A dropped connection is re-established on demand with capped exponential back-off. The
  new connection resumes the same server session by presenting its bearer token; if the
  server no longer knows the token the transport logs in again with the user's credentials,
  and if the session expired the ``session_expired`` problem comes back as the reply (never
  hidden by a fresh login). Job subscriptions are renewed on the new connection.
- A call whose command is idempotent and whose connection dropped before its reply is sent
  again on a new connection (at most ``replays`` times, within its deadline); other calls
  fail with ``NoConnection`` and are never replayed here (the session's flows decide).
  Uploads and downloads are never replayed by the transport (their streams are consumed
  once).
- ``asleep(seconds, wake_on=job_id)`` subscribes to the job's events and returns as soon as
  one arrives; ``wait_for_job``/``monitor_job`` therefore react to the job's change instead
  of sleeping out the poll interval. Right after a fresh subscription (or a reconnect) it
  returns at once, because an event may have been missed before it.

Foreign errors (websockets, ssl, OS errors, timeouts, msgspec) are translated in one place,
``_translated``.

``connect("ws://host:port", ...)`` goes through ``ws_transport`` (entry points ``ws`` and
``wss`` of the ``flare_core.transports`` group).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import ssl
import time
from collections import OrderedDict
from collections.abc import AsyncIterable, Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidStatus,
    InvalidURI,
)
from websockets.typing import Subprotocol

from flare_adapters._loop_thread import ThreadedTransport
from flare_adapters._network import (
    CallerCode,
    ChunkPump,
    NetworkOptions,
    NetworkTransportFactory,
    login_with_retries,
    op_name,
    translating,
)
from flare_adapters.http.routes import WS_PATH
from flare_core._commands import Command, Logout
from flare_core._errors import InternalError, InvalidArgumentError, NoConnection
from flare_core._events import JobEvent
from flare_core._principal import Grant
from flare_core._replies import Ok, Problem, Reply
from flare_core._steps import ANY_JOB
from flare_ports._transport import ChunkSink
from flare_ports.wire import WireError, json_codec

__all__ = [
    "JSON_PROTOCOL",
    "MSGPACK_PROTOCOL",
    "AsyncWsTransport",
    "WsOptions",
    "WsTransport",
    "open_ws_transport",
    "ws_transport",
]

JSON_PROTOCOL: Final = "flare-core.v1.json"
MSGPACK_PROTOCOL: Final = "flare-core.v1.msgpack"

Encoding = Literal["msgpack", "json"]

_MAX_INCOMING_FRAME: Final = 64 * 1024 * 1024
_DOWNLOAD_WINDOW: Final = 8
_MAX_SUBSCRIPTIONS: Final = 128
_EXPIRED: Final = "session_expired"
_UNKNOWN_TOKEN: Final = "not_authenticated"


def _wire(job_id: str) -> str | None:
    """A subscription's ``job_id`` on the wire: ``null`` means every job of the study."""
    return None if job_id == ANY_JOB else job_id


class WsOptions(msgspec.Struct, frozen=True, kw_only=True):
    """Options of the WebSocket transport only (``connect`` keyword options).

    Attributes:
        encoding: ``"msgpack"`` (binary frames) or ``"json"`` (text frames).
        reconnect_attempts: connection attempts per reconnect before ``NoConnection``.
        reconnect_delay: the first back-off wait between attempts, seconds (then doubled).
        reconnect_max_delay: the cap on one back-off wait, seconds.
        replays: how many times an idempotent call is sent again after its connection
            dropped under it, before it fails with ``NoConnection`` (0: never).
        ping_interval: seconds between keepalive pings (None: no pings); a pong missing for
            as long drops the connection.
    """

    encoding: Encoding = "msgpack"
    reconnect_attempts: int = 3
    reconnect_delay: float = 0.1
    reconnect_max_delay: float = 2.0
    replays: int = 2
    ping_interval: float | None = 20.0

    def __post_init__(self) -> None:
        if self.encoding not in ("msgpack", "json"):
            raise InvalidArgumentError("encoding must be 'msgpack' or 'json'")
        if self.reconnect_attempts < 1:
            raise InvalidArgumentError("reconnect_attempts must be >= 1")
        if self.replays < 0:
            raise InvalidArgumentError("replays must be >= 0")
        if self.reconnect_delay < 0 or self.reconnect_max_delay < 0:
            raise InvalidArgumentError("reconnect delays must be >= 0")
        if self.ping_interval is not None and self.ping_interval <= 0:
            raise InvalidArgumentError("ping_interval must be > 0 or None")


_WS_OPTION_NAMES: Final = frozenset(f.name for f in msgspec.structs.fields(WsOptions))


class _ServerFrame(msgspec.Struct, kw_only=True):
    """Any frame the server sends (see ``flare_adapters.server.ws``)."""

    id: int | None = None
    op: str = ""
    reply: Ok | Problem | None = None
    data: bytes = b""
    n: int = 0
    event: JobEvent | None = None


class _Lost(msgspec.Struct, frozen=True):
    """Put into every open request's queue when its connection ends (``garbled``: because
    the server sent a frame that does not decode)."""

    reason: str
    garbled: bool = False


class _LinkLost(Exception):
    """The connection a request travelled on ended before its answer."""


class _Garbled(Exception):
    """The server sent a frame that does not decode (the connection was closed)."""


class _Rejected(Exception):
    """The server refused to (re)open the session; ``problem`` says why."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def _problem_of(exc: InvalidStatus) -> Problem | None:
    response = exc.response
    if response.headers.get("Content-Type", "").split(";")[0].strip() not in (
        "application/problem+json",
        "application/json",
    ):
        return None
    try:
        reply = json_codec.decode_reply(bytes(response.body or b""))
    except WireError:
        return None
    return reply if isinstance(reply, Problem) else None


def _translated(exc: BaseException, timeout: float) -> Exception | None:
    """The domain exception for a foreign one, most specific first (None: not foreign)."""
    if isinstance(exc, _LinkLost):
        return NoConnection(f"connection to server lost: {exc}")
    if isinstance(exc, _Garbled):
        return InternalError(f"unreadable frame from server: {exc}")
    if isinstance(exc, InvalidURI):
        return InvalidArgumentError(f"invalid server URL: {exc}")
    if isinstance(exc, InvalidStatus):
        problem = _problem_of(exc)
        if problem is not None and problem.code in (_EXPIRED, _UNKNOWN_TOKEN, "session_closed"):
            return _Rejected(problem)
        return NoConnection(
            f"cannot connect to server: HTTP {exc.response.status_code} at the handshake"
        )
    if isinstance(exc, InvalidHandshake):
        return NoConnection(f"cannot connect to server: WebSocket handshake failed ({exc})")
    if isinstance(exc, ConnectionClosed):
        return NoConnection(f"connection to server closed ({exc})")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return NoConnection(f"cannot connect to server: certificate rejected ({exc})")
    if isinstance(exc, ssl.SSLError):
        return NoConnection(f"cannot connect to server: TLS failed ({exc})")
    if isinstance(exc, TimeoutError):
        return NoConnection(f"no reply from server within {timeout:g}s")
    if isinstance(exc, OSError):
        return NoConnection(f"cannot connect to server: {exc or type(exc).__name__}")
    if isinstance(exc, msgspec.MsgspecError | WireError):
        return InternalError(f"unreadable frame from server: {exc}")
    return None


def _translate(timeout: float, caller: CallerCode | None = None) -> AbstractContextManager[None]:
    """The one place this adapter's foreign errors become domain exceptions."""
    return translating(_translated, timeout, caller)


def _endpoint(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("ws", "wss") or not parts.hostname:
        raise InvalidArgumentError(f"expected a ws(s)://host[:port] URL, got {url!r}")
    if parts.query or parts.fragment:
        raise InvalidArgumentError(f"server URL must not have a query or fragment: {url!r}")
    path = parts.path.rstrip("/")
    if not path.endswith(WS_PATH):
        path += WS_PATH
    return f"{parts.scheme.lower()}://{parts.netloc}{path}"


def _pieces(chunk: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(chunk), size):
        yield chunk[start : start + size]


class _Link:
    """One open WebSocket connection: the request queues its reader fills."""

    def __init__(self, ws: ClientConnection, encode: Callable[[Any], bytes], text: bool) -> None:
        self.ws = ws
        self._encode = encode
        self._text = text
        self.queues: dict[int, asyncio.Queue[_ServerFrame | _Lost]] = {}
        self.lost: str | None = None
        self.garbled = False
        self.reader: asyncio.Task[None] | None = None

    @property
    def alive(self) -> bool:
        return self.lost is None

    def open(self, request_id: int) -> asyncio.Queue[_ServerFrame | _Lost]:
        queue: asyncio.Queue[_ServerFrame | _Lost] = asyncio.Queue()
        if self.lost is not None:
            queue.put_nowait(_Lost(self.lost, self.garbled))
        self.queues[request_id] = queue
        return queue

    def forget(self, request_id: int) -> None:
        self.queues.pop(request_id, None)

    async def send(self, frame: dict[str, Any]) -> None:
        """Send one frame.

        Raises:
            _LinkLost: the connection is gone.
        """
        if self.lost is not None:
            raise _LinkLost(self.lost)
        data = self._encode(frame)
        try:
            await self.ws.send(data.decode("utf-8") if self._text else data)
        except ConnectionClosed as exc:
            self.end(str(exc))  # before the reader notices: callers check ``alive`` next
            raise _LinkLost(str(exc)) from exc

    def cancel_soon(self, request_id: int) -> None:
        """Tell the server to abandon a request, without waiting (best effort)."""
        if self.lost is None:
            task = asyncio.get_running_loop().create_task(self._cancel(request_id))
            task.add_done_callback(_quiet)

    async def _cancel(self, request_id: int) -> None:
        with contextlib.suppress(_LinkLost):
            await self.send({"id": request_id, "op": "cancel"})

    def end(self, reason: str, garbled: bool = False) -> None:
        """Mark the link lost and release every waiting request (idempotent)."""
        if self.lost is not None:
            return
        self.lost = reason
        self.garbled = garbled
        for queue in self.queues.values():
            queue.put_nowait(_Lost(reason, garbled))


def _quiet(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: a failed best-effort send is nobody's concern


async def _take(queue: asyncio.Queue[_ServerFrame | _Lost]) -> _ServerFrame:
    item = await queue.get()
    if isinstance(item, _Lost):
        raise (_Garbled if item.garbled else _LinkLost)(item.reason)
    return item


class AsyncWsTransport:
    """An ``AsyncTransport`` over the server's WebSocket endpoint.

    Create it with ``open`` (which connects and logs in) on the event loop that will use it.

    Args:
        url: ``ws(s)://host:port`` (``/v1/ws`` is appended unless present).
        options: timeouts, TLS, progress, chunk size (``NetworkOptions``).
        ws_options: encoding, reconnect back-off, keepalive (``WsOptions``).
    """

    def __init__(
        self,
        url: str,
        options: NetworkOptions | None = None,
        ws_options: WsOptions | None = None,
    ) -> None:
        self._url = _endpoint(url)
        self._options = options or NetworkOptions()
        self._ws_options = ws_options or WsOptions()
        binary = self._ws_options.encoding == "msgpack"
        module: Any = msgspec.msgpack if binary else msgspec.json
        self._encode: Callable[[Any], bytes] = module.Encoder().encode
        self._decode: Callable[[bytes], _ServerFrame] = module.Decoder(_ServerFrame).decode
        self._text = not binary
        self._protocol = Subprotocol(MSGPACK_PROTOCOL if binary else JSON_PROTOCOL)
        self._ids = itertools.count(1)
        self._link: _Link | None = None
        self._connecting = asyncio.Lock()
        self._credentials: tuple[str, str | None, str] | None = None
        self._grant: Grant | None = None
        self._closed = False
        self._subscribed: OrderedDict[str, None] = OrderedDict()
        self._events: dict[str, int] = {}
        self._seen: dict[str, int] = {}
        self._pulse = asyncio.Event()
        self.connections_opened = 0
        """How many WebSocket connections this transport opened (reconnects included)."""

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        user: str,
        api_key: str | None = None,
        study: str = "default",
        options: NetworkOptions | None = None,
        ws_options: WsOptions | None = None,
    ) -> AsyncWsTransport:
        """Connect to ``url`` and log in (connection failures retried per ``options.retry``).

        Raises:
            NoConnection: the server could not be reached.
            AuthenticationError: the login was rejected (``auth_code`` says why).
            InvalidArgumentError: a malformed URL.
        """
        transport = cls(url, options, ws_options)
        transport._credentials = (user, api_key, study)
        loop = asyncio.get_running_loop()
        limit = transport._options.connect_timeout + transport._options.timeout

        async def attempt() -> _Link:
            return await transport._ensure(loop.time() + limit)

        try:
            await login_with_retries(transport._options.retry, attempt)
        except _Rejected as exc:
            await transport.aclose()
            raise exc.problem.to_exception() from None
        except BaseException:
            await transport.aclose()
            raise
        return transport

    # --- state --------------------------------------------------------------------------------

    @property
    def grant(self) -> Grant | None:
        """The login's grant (token, principal, idle timeout), once logged in."""
        return self._grant

    @property
    def closed(self) -> bool:
        """True once ``aclose`` ran."""
        return self._closed

    @property
    def connected(self) -> bool:
        """True while a WebSocket connection is open."""
        return self._link is not None and self._link.alive

    @property
    def subscriptions(self) -> list[str]:
        """The job ids whose events this transport receives, oldest first."""
        return list(self._subscribed)

    def _poke(self) -> None:
        # Wake every sleeper; each re-checks its own condition.
        self._pulse.set()
        self._pulse = asyncio.Event()

    # --- connecting ------------------------------------------------------------------------------

    async def _ensure(self, deadline: float) -> _Link:
        """The open link, (re)connecting with back-off when there is none.

        Raises:
            NoConnection: every attempt failed, or the deadline passed.
            _Rejected: the server refused the session.
        """
        if self._closed:
            raise NoConnection("transport is closed")
        link = self._link
        if link is not None and link.alive:
            return link
        loop = asyncio.get_running_loop()
        async with self._connecting:
            link = self._link
            if link is not None and link.alive:
                return link
            delay = self._ws_options.reconnect_delay
            for attempt in itertools.count(1):
                try:
                    return await self._connect(deadline)
                except NoConnection:
                    if self._closed:
                        raise
                    wait = min(delay, self._ws_options.reconnect_max_delay)
                    if attempt >= self._ws_options.reconnect_attempts:
                        raise
                    if loop.time() + wait >= deadline:
                        raise
                    await asyncio.sleep(wait)
                    delay *= 2
        raise NoConnection("cannot connect to server")  # unreachable: the loop returns or raises

    async def _handshake(self, deadline: float, token: str | None) -> ClientConnection:
        loop = asyncio.get_running_loop()
        budget = max(0.001, min(self._options.connect_timeout, deadline - loop.time()))
        secure = self._url.startswith("wss:")
        ssl_context: ssl.SSLContext | bool | None = (self._options.ssl or True) if secure else None
        headers = {"Authorization": f"Bearer {token}"} if token else None
        with _translate(budget):
            return await connect(
                self._url,
                subprotocols=[self._protocol],
                compression=None,
                additional_headers=headers,
                open_timeout=budget,
                ping_interval=self._ws_options.ping_interval,
                ping_timeout=self._ws_options.ping_interval,
                close_timeout=1.0,
                max_size=_MAX_INCOMING_FRAME,
                proxy=None,
                ssl=ssl_context,
            )

    async def _connect(self, deadline: float) -> _Link:
        token = self._grant.token if self._grant is not None else None
        try:
            ws = await self._handshake(deadline, token)
        except _Rejected as exc:
            if exc.problem.code != _UNKNOWN_TOKEN or self._credentials is None:
                raise
            # The server forgot the session (e.g. its session store was reset): log in again.
            self._grant = None
            token = None
            ws = await self._handshake(deadline, None)
        link = _Link(ws, self._encode, self._text)
        link.reader = asyncio.get_running_loop().create_task(self._read(link))
        self.connections_opened += 1
        try:
            if token is None:
                await self._login(link, deadline)
            await self._resubscribe(link, deadline)
        except BaseException:
            link.end("connection abandoned")
            await self._drop(link)
            raise
        self._link = link
        if self._subscribed:
            # Events may have been missed while disconnected: let every sleeper poll again.
            for job_id in self._subscribed:
                self._events[job_id] = self._events.get(job_id, 0) + 1
            self._poke()
        return link

    async def _login(self, link: _Link, deadline: float) -> None:
        if self._credentials is None:
            raise InternalError("no credentials to log in with")
        user, api_key, study = self._credentials
        reply = await self._exchange(
            link,
            {"op": "login", "user": user, "api_key": api_key, "study": study},
            deadline,
        )
        if isinstance(reply, Problem):
            raise _Rejected(reply)
        self._grant = msgspec.convert(reply.value, Grant)

    async def _resubscribe(self, link: _Link, deadline: float) -> None:
        for job_id in list(self._subscribed):
            await self._exchange(link, {"op": "subscribe", "job_id": _wire(job_id)}, deadline)

    async def _exchange(self, link: _Link, frame: dict[str, Any], deadline: float) -> Reply:
        """Send one request frame on ``link`` and wait for its reply (before ``deadline``).

        Raises:
            NoConnection: the link broke or the deadline passed.
        """
        request_id = next(self._ids)
        queue = link.open(request_id)
        timeout = max(0.0, deadline - asyncio.get_running_loop().time())
        done = False
        try:
            with _translate(timeout):
                async with asyncio.timeout_at(deadline):
                    await link.send({"id": request_id, **frame})
                    while True:
                        answer = await _take(queue)
                        if answer.reply is not None:
                            done = True
                            return answer.reply
        finally:
            link.forget(request_id)
            if not done:
                link.cancel_soon(request_id)

    async def _read(self, link: _Link) -> None:
        reason = "connection closed"
        try:
            async for message in link.ws:
                data = message.encode("utf-8") if isinstance(message, str) else message
                try:
                    frame = self._decode(data)
                except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                    # Not worth a replay: the server speaks another protocol.
                    link.end(f"malformed frame ({exc})", garbled=True)
                    await link.ws.close(code=1007, reason="malformed frame")
                    break
                if frame.event is not None:
                    self._on_event(frame.event)
                elif frame.id is not None:
                    queue = link.queues.get(frame.id)
                    if queue is not None:  # else: a request given up on; drop its answer
                        queue.put_nowait(frame)
        except ConnectionClosed as exc:
            reason = f"connection closed ({exc})"
        except OSError as exc:
            reason = f"connection failed ({exc})"
        finally:
            code = link.ws.close_code
            if code is not None and reason == "connection closed":
                reason = f"connection closed by server (code {code})"
            link.end(reason)
            if self._link is link:
                self._link = None
            self._poke()

    async def _drop(self, link: _Link) -> None:
        with contextlib.suppress(Exception):
            await link.ws.close()
        if link.reader is not None:
            link.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await link.reader

    # --- events -------------------------------------------------------------------------------

    def _on_event(self, event: JobEvent) -> None:
        # The server sends only the study's events; a study-wide subscription counts them all.
        hit = False
        for key in (event.job_id, ANY_JOB):
            if key in self._events:
                self._events[key] += 1
                hit = True
        if hit:
            self._poke()

    def _mark_seen(self, command: Command) -> None:
        # Events that arrive after a command about a job was sent may not be reflected in
        # its reply: only those count as news for the next sleep.
        job_id = getattr(command, "job_id", None)
        if isinstance(job_id, str) and job_id in self._events:
            self._seen[job_id] = self._events[job_id]

    def _news(self, job_id: str) -> bool:
        count = self._events.get(job_id, 0)
        if count > self._seen.get(job_id, 0):
            self._seen[job_id] = count
            return True
        return False

    async def _subscribe(self, job_id: str, deadline: float) -> None:
        link = await self._ensure(deadline)
        reply = await self._exchange(link, {"op": "subscribe", "job_id": _wire(job_id)}, deadline)
        if isinstance(reply, Problem):
            raise _Rejected(reply)
        self._subscribed[job_id] = None
        self._events.setdefault(job_id, 0)
        self._seen.setdefault(job_id, 0)
        while len(self._subscribed) > _MAX_SUBSCRIPTIONS:
            oldest, _ = self._subscribed.popitem(last=False)
            self._events.pop(oldest, None)
            self._seen.pop(oldest, None)
            if link.alive:
                request_id = next(self._ids)
                task = asyncio.get_running_loop().create_task(
                    link.send({"id": request_id, "op": "unsubscribe", "job_id": _wire(oldest)})
                )
                task.add_done_callback(_quiet)

    # --- AsyncTransport -------------------------------------------------------------------------

    async def acall(self, command: Command, timeout: float | None) -> Reply:
        """Send ``command`` and wait for its reply (see ``flare_ports.AsyncTransport``).

        An idempotent command whose connection dropped before its reply is sent again on a
        new connection (up to ``WsOptions.replays`` times), within the same deadline.

        Raises:
            NoConnection: the server could not be reached or did not answer in time.
            InternalError: a frame could not be read.
        """
        limit = self._options.call_timeout(timeout)
        deadline = asyncio.get_running_loop().time() + limit
        self._mark_seen(command)
        replays = self._ws_options.replays
        if not command.idempotent or isinstance(command, Logout):
            replays = 0
        while True:
            try:
                with _translate(limit):
                    async with asyncio.timeout_at(deadline):
                        link = await self._ensure(deadline)
            except _Rejected as exc:
                return exc.problem
            try:
                return await self._exchange(link, {"op": "call", "command": command}, deadline)
            except NoConnection:
                if replays <= 0 or link.alive or self._closed:
                    raise
                replays -= 1  # the connection dropped under this idempotent call: resend

    async def aupload(
        self, command: Command, chunks: AsyncIterable[bytes], timeout: float | None
    ) -> Reply:
        """Stream ``chunks`` as an upload (``upload_start``, chunk frames, ``upload_end``).

        Never replayed here: a broken upload fails with ``NoConnection``.

        Raises:
            NoConnection: the server could not be reached, went silent or the link broke.
            Exception: whatever producing ``chunks`` or the progress callback raised.
        """
        limit = self._options.call_timeout(timeout)
        loop = asyncio.get_running_loop()
        try:
            with _translate(limit):
                async with asyncio.timeout(limit):
                    link = await self._ensure(loop.time() + limit)
        except _Rejected as exc:
            return exc.problem
        caller = CallerCode(self._options.progress, op_name(command))
        request_id = next(self._ids)
        queue = link.open(request_id)
        finished = False
        pump = ChunkPump(chunks, caller)
        try:
            with _translate(limit, caller):
                async with asyncio.timeout(limit) as deadline:
                    await link.send({"id": request_id, "op": "upload_start", "command": command})
                    first = await _take(queue)
                    if first.reply is not None:
                        finished = True
                        return first.reply
                    credit = first.n
                    sent = 0
                    while (chunk := await pump.next()) is not None:
                        for piece in _pieces(chunk, self._options.chunk_size):
                            while credit <= 0:
                                answer = await _take(queue)
                                if answer.reply is not None:
                                    finished = True  # refused mid-way (e.g. too large)
                                    return answer.reply
                                credit += answer.n
                            await link.send({"id": request_id, "op": "chunk", "data": piece})
                            credit -= 1
                            sent += len(piece)
                            deadline.reschedule(loop.time() + limit)
                            caller.report("upload", sent)
                    await link.send({"id": request_id, "op": "upload_end"})
                    caller.report("upload", sent, done=True)
                    while True:
                        answer = await _take(queue)
                        if answer.reply is not None:
                            finished = True
                            return answer.reply
                        deadline.reschedule(loop.time() + limit)
        finally:
            await pump.stop()  # nothing iterates ``chunks`` once we return
            link.forget(request_id)
            if not finished:
                link.cancel_soon(request_id)

    async def adownload(self, command: Command, sink: ChunkSink, timeout: float | None) -> Reply:
        """Stream the archive of a download command into ``sink``, acknowledging each chunk.

        Never replayed here: a broken download fails with ``NoConnection``.

        Returns:
            ``Ok({"bytes": n})`` once the whole archive went into ``sink``, or the server's
            ``Problem`` (then ``sink`` was never called).

        Raises:
            NoConnection: the server could not be reached, went silent or the link broke.
            Exception: whatever ``sink`` or the progress callback raised.
        """
        limit = self._options.call_timeout(timeout)
        loop = asyncio.get_running_loop()
        try:
            with _translate(limit):
                async with asyncio.timeout(limit):
                    link = await self._ensure(loop.time() + limit)
        except _Rejected as exc:
            return exc.problem
        caller = CallerCode(self._options.progress, op_name(command))
        request_id = next(self._ids)
        queue = link.open(request_id)
        finished = False
        try:
            with _translate(limit, caller):
                async with asyncio.timeout(limit) as deadline:
                    await link.send(
                        {
                            "id": request_id,
                            "op": "download",
                            "command": command,
                            "window": _DOWNLOAD_WINDOW,
                        }
                    )
                    received = 0
                    while True:
                        answer = await _take(queue)
                        if answer.reply is not None:
                            finished = True
                            if isinstance(answer.reply, Problem):
                                return answer.reply
                            caller.report("download", received, done=True)
                            return Ok(value={"bytes": received})
                        if answer.op != "chunk":
                            continue
                        caller.call(sink, answer.data)
                        received += len(answer.data)
                        deadline.reschedule(loop.time() + limit)
                        await link.send({"id": request_id, "op": "ack", "n": 1})
                        caller.report("download", received)
        finally:
            link.forget(request_id)
            if not finished:
                link.cancel_soon(request_id)

    def monotonic(self) -> float:
        """Real monotonic time."""
        return time.monotonic()

    async def asleep(self, seconds: float, wake_on: str | None) -> bool:
        """Sleep until ``seconds`` passed or an event about job ``wake_on`` arrived.

        Returns:
            True when woken early (an event, a fresh subscription or a reconnect: the caller
            should poll now), False when the time ran out.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._options.sleep_for(seconds)
        if wake_on is None or self._closed:
            await asyncio.sleep(max(0.0, deadline - loop.time()))
            return False
        if wake_on not in self._subscribed:
            try:
                with _translate(max(0.0, deadline - loop.time())):
                    async with asyncio.timeout_at(deadline):
                        await self._subscribe(wake_on, deadline)
                # An event may have come and gone before the subscription: poll now.
                return True
            except (NoConnection, _Rejected):
                await asyncio.sleep(max(0.0, deadline - loop.time()))
                return False
        while True:
            if self._news(wake_on):
                return True
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            if not self.connected and not self._closed:
                try:
                    with _translate(remaining):
                        async with asyncio.timeout_at(deadline):
                            await self._ensure(deadline)  # resubscribes and reports news
                    continue
                except (NoConnection, _Rejected):
                    await asyncio.sleep(max(0.0, deadline - loop.time()))
                    return False
            pulse = self._pulse
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(deadline):
                    await pulse.wait()

    async def aclose(self) -> None:
        """Close the connection (idempotent; does not log out)."""
        if self._closed:
            return
        self._closed = True
        link, self._link = self._link, None
        if link is not None:
            link.end("transport closed")
            await self._drop(link)
        self._poke()


class WsTransport(ThreadedTransport):
    """The sync ``Transport`` flavour: an ``AsyncWsTransport`` on a private loop thread
    (its reader, keepalive and event subscriptions keep running between calls)."""

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        user: str,
        api_key: str | None = None,
        study: str = "default",
        options: NetworkOptions | None = None,
        ws_options: WsOptions | None = None,
    ) -> WsTransport:
        """Start the loop thread, connect and log in.

        Raises:
            NoConnection: the server could not be reached.
            AuthenticationError: the login was rejected.
        """
        return cls.open(
            lambda: AsyncWsTransport.open(
                url,
                user=user,
                api_key=api_key,
                study=study,
                options=options,
                ws_options=ws_options,
            ),
            name="flare-ws",
        )


async def open_ws_transport(
    url: str,
    *,
    user: str,
    api_key: str | None,
    study: str,
    options: NetworkOptions,
    extra: dict[str, Any],
) -> AsyncWsTransport:
    """The opener ``ws_transport`` uses; ``extra`` holds ``WsOptions`` fields.

    Raises:
        InvalidArgumentError: a bad WebSocket option value.
    """
    try:
        ws_options = msgspec.convert(extra, WsOptions)
    except msgspec.ValidationError as exc:
        raise InvalidArgumentError(f"invalid WebSocket option: {exc}") from None
    return await AsyncWsTransport.open(
        url, user=user, api_key=api_key, study=study, options=options, ws_options=ws_options
    )


ws_transport: Final = NetworkTransportFactory("ws", open_ws_transport, _WS_OPTION_NAMES)
"""The ``ws``/``wss`` transport factory: entry points
``ws = "flare_adapters.ws.client:ws_transport"`` and
``wss = "flare_adapters.ws.client:ws_transport"``."""
