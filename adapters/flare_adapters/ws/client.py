"""The WebSocket client transport (websockets): ``AsyncWsTransport`` and its sync flavour.

It speaks the protocol of ``docs/protocol.md`` (its frames and rules are
``flare_adapters.ws.protocol``): one connection to ``/v1/ws`` carrying many requests in
flight, correlated by id (``flare_adapters.ws.link``); job events pushed by the server;
uploads and downloads as chunk frames under credit-based flow control. Frames are msgpack
(binary) by default, or JSON (``encoding="json"``). permessage-deflate is negotiated off:
frames are small control messages or already-compressed zip pieces, and compressing them only
adds latency.

This module holds what the transport decides on top of the link:

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
  one is news by the protocol's ``WakeRule``; ``wait_for_job``/``monitor_job`` therefore
  react to the job's change instead of sleeping out the poll interval. Right after a fresh
  subscription (or a reconnect) it returns at once, because an event may have been missed
  before it.

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
from collections.abc import AsyncIterable, Callable
from typing import Any, Final
from urllib.parse import urlsplit

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from flare_adapters.http.routes import WS_PATH
from flare_adapters.loop_thread import ThreadedTransport
from flare_adapters.network import (
    CallerCode,
    ChunkPump,
    NetworkOptions,
    NetworkTransportFactory,
    login_with_retries,
    op_name,
)
from flare_adapters.ws.link import (
    UNKNOWN_TOKEN,
    Link,
    Rejected,
    RoutingConnection,
    exchange,
    read,
    route_into,
    take,
    translate,
)
from flare_adapters.ws.protocol import (
    JSON_PROTOCOL,
    MSGPACK_PROTOCOL,
    AckFrame,
    CallFrame,
    ChunkFrame,
    Credit,
    DownloadFrame,
    Encoding,
    FrameCodec,
    LoginFrame,
    SubscribeFrame,
    UnsubscribeFrame,
    UploadEndFrame,
    UploadStartFrame,
    WakeRule,
    wire_job_id,
)
from flare_core.commands import Command, Logout
from flare_core.errors import InternalError, InvalidArgumentError, NoConnection
from flare_core.events import JobEvent
from flare_core.principal import Grant
from flare_core.replies import Ok, Problem, Reply
from flare_ports.transport import ChunkSink

__all__ = [
    "JSON_PROTOCOL",
    "MSGPACK_PROTOCOL",
    "AsyncWsTransport",
    "WsOptions",
    "WsTransport",
    "open_ws_transport",
    "ws_transport",
]

_MAX_INCOMING_FRAME: Final = 64 * 1024 * 1024
_DOWNLOAD_WINDOW: Final = 8
_MAX_SUBSCRIPTIONS: Final = 128


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


def _subscribe_frame(job_id: str) -> Callable[[int], SubscribeFrame]:
    return lambda rid: SubscribeFrame(id=rid, job_id=wire_job_id(job_id))


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
        self._codec = FrameCodec(self._ws_options.encoding)
        self._protocol = Subprotocol(self._codec.subprotocol)
        self._ids = itertools.count(1)
        self._link: Link | None = None
        self._connecting = asyncio.Lock()
        self._credentials: tuple[str, str | None, str] | None = None
        self._grant: Grant | None = None
        self._closed = False
        self._subscribed: OrderedDict[str, None] = OrderedDict()
        self._wake = WakeRule()
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

        async def attempt() -> Link:
            return await transport._ensure(loop.time() + limit)

        try:
            await login_with_retries(transport._options.retry, attempt)
        except Rejected as exc:
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

    async def _ensure(self, deadline: float) -> Link:
        """The open link, (re)connecting with back-off when there is none.

        Raises:
            NoConnection: every attempt failed, or the deadline passed.
            Rejected: the server refused the session.
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
        with translate(budget):
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
                create_connection=RoutingConnection,
            )

    async def _connect(self, deadline: float) -> Link:
        token = self._grant.token if self._grant is not None else None
        try:
            ws = await self._handshake(deadline, token)
        except Rejected as exc:
            if exc.problem.code != UNKNOWN_TOKEN or self._credentials is None:
                raise
            # The server forgot the session (e.g. its session store was reset): log in again.
            self._grant = None
            token = None
            ws = await self._handshake(deadline, None)
        link = Link(ws, self._codec, self._ids)
        route_into(link, self._on_event)
        link.reader = asyncio.get_running_loop().create_task(
            read(link, self._on_event, self._link_ended)
        )
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
            self._wake.missed()
            self._poke()
        return link

    async def _login(self, link: Link, deadline: float) -> None:
        if self._credentials is None:
            raise InternalError("no credentials to log in with")
        user, api_key, study = self._credentials
        reply = await exchange(
            link,
            lambda rid: LoginFrame(id=rid, user=user, api_key=api_key, study=study),
            deadline,
        )
        if isinstance(reply, Problem):
            raise Rejected(reply)
        self._grant = msgspec.convert(reply.value, Grant)

    async def _resubscribe(self, link: Link, deadline: float) -> None:
        for job_id in list(self._subscribed):
            await exchange(link, _subscribe_frame(job_id), deadline)

    def _link_ended(self, link: Link) -> None:
        # The reader's last act: a later call reconnects, and every sleeper re-checks.
        if self._link is link:
            self._link = None
        self._poke()

    async def _drop(self, link: Link) -> None:
        with contextlib.suppress(Exception):
            await link.ws.close()
        if link.reader is not None:
            link.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await link.reader

    # --- events -------------------------------------------------------------------------------

    def _on_event(self, event: JobEvent) -> None:
        # The server sends only the study's events; a study-wide subscription counts them all.
        if self._wake.heard(event.job_id):
            self._poke()

    def _mark_seen(self, command: Command) -> None:
        job_id = getattr(command, "job_id", None)
        self._wake.asked(job_id if isinstance(job_id, str) else None)

    async def _subscribe(self, job_id: str, deadline: float) -> None:
        link = await self._ensure(deadline)
        reply = await exchange(link, _subscribe_frame(job_id), deadline)
        if isinstance(reply, Problem):
            raise Rejected(reply)
        self._subscribed[job_id] = None
        self._wake.listen(job_id)
        while len(self._subscribed) > _MAX_SUBSCRIPTIONS:
            oldest, _ = self._subscribed.popitem(last=False)
            self._wake.forget(oldest)
            # Unanswered on purpose: its reply finds no queue and is dropped.
            link.send_soon(UnsubscribeFrame(id=link.next_id(), job_id=wire_job_id(oldest)))

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
            link = self._link
            if link is None or not link.alive or self._closed:
                # Only (re)connecting waits here; a call on an open link skips the timer.
                try:
                    with translate(limit):
                        async with asyncio.timeout_at(deadline):
                            link = await self._ensure(deadline)
                except Rejected as exc:
                    return exc.problem
            try:
                return await exchange(
                    link, lambda rid: CallFrame(id=rid, command=command), deadline
                )
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
            with translate(limit):
                async with asyncio.timeout(limit):
                    link = await self._ensure(loop.time() + limit)
        except Rejected as exc:
            return exc.problem
        caller = CallerCode(self._options.progress, op_name(command))
        request_id = link.next_id()
        queue = link.open(request_id)
        finished = False
        pump = ChunkPump(chunks, caller, self._options.chunk_size)
        try:
            with translate(limit, caller):
                async with asyncio.timeout(limit) as deadline:
                    await link.send(UploadStartFrame(id=request_id, command=command))
                    first = await take(queue)
                    if first.reply is not None:
                        finished = True
                        return first.reply
                    credit = Credit(first.n)
                    sent = 0
                    while (piece := await pump.next()) is not None:
                        while not credit.spend():
                            answer = await take(queue)
                            if answer.reply is not None:
                                finished = True  # refused mid-way (e.g. too large)
                                return answer.reply
                            credit.grant(answer.n)
                        # bytes() copies a view only (a frame's field is bytes).
                        await link.send(ChunkFrame(id=request_id, data=bytes(piece)))
                        sent += len(piece)
                        deadline.reschedule(loop.time() + limit)
                        caller.report("upload", sent)
                    await link.send(UploadEndFrame(id=request_id))
                    caller.report("upload", sent, done=True)
                    while True:
                        answer = await take(queue)
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
            with translate(limit):
                async with asyncio.timeout(limit):
                    link = await self._ensure(loop.time() + limit)
        except Rejected as exc:
            return exc.problem
        caller = CallerCode(self._options.progress, op_name(command))
        request_id = link.next_id()
        queue = link.open(request_id)
        finished = False
        try:
            with translate(limit, caller):
                async with asyncio.timeout(limit) as deadline:
                    await link.send(
                        DownloadFrame(id=request_id, command=command, window=_DOWNLOAD_WINDOW)
                    )
                    received = 0
                    while True:
                        answer = await take(queue)
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
                        await link.send(AckFrame(id=request_id, n=1))
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
                with translate(max(0.0, deadline - loop.time())):
                    async with asyncio.timeout_at(deadline):
                        await self._subscribe(wake_on, deadline)
                # An event may have come and gone before the subscription: poll now.
                return True
            except (NoConnection, Rejected):
                await asyncio.sleep(max(0.0, deadline - loop.time()))
                return False
        while True:
            if self._wake.news(wake_on):
                return True
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            if not self.connected and not self._closed:
                try:
                    with translate(remaining):
                        async with asyncio.timeout_at(deadline):
                            await self._ensure(deadline)  # resubscribes and reports news
                    continue
                except (NoConnection, Rejected):
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
