"""The client's WebSocket link and request correlator.

A ``Link`` is one open connection: it sends frames, and ``deliver`` hands each server frame
to the queue of the request whose ``id`` it carries, or job events to a callback. Whole
frames are delivered from the connection's protocol callback (``RoutingConnection``); the
reader task (``read``) delivers what websockets assembled, and notices the end.
``exchange`` is the correlator: one request frame out, frames in until its reply, and a
best-effort ``cancel`` when the caller gives up first. When the connection ends, every
open request's queue is told so (``Lost``), which ``take`` turns into ``LinkLost``.

What to send, when to reconnect and what to replay is the transport's business
(``flare_adapters.ws.client``); the frames are those of ``flare_adapters.ws.protocol``.

Foreign errors (websockets, ssl, OS errors, timeouts, msgspec) become domain exceptions in one
place, ``translated``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import msgspec
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.frames import Frame, Opcode
from websockets.protocol import Event

from flare_adapters.network import CallerCode, translating
from flare_adapters.ws.protocol import (
    CLOSE_INVALID_PAYLOAD,
    CancelFrame,
    FrameCodec,
    ServerFrame,
)
from flare_core.errors import InternalError, InvalidArgumentError, NoConnection
from flare_core.events import JobEvent
from flare_core.replies import Problem, Reply
from flare_ports.wire import WireError, json_codec

__all__ = [
    "EXPIRED",
    "UNKNOWN_TOKEN",
    "Garbled",
    "Link",
    "LinkLost",
    "Lost",
    "Rejected",
    "RoutingConnection",
    "deliver",
    "exchange",
    "quiet",
    "read",
    "route_into",
    "take",
    "translate",
    "translated",
]

EXPIRED = "session_expired"
UNKNOWN_TOKEN = "not_authenticated"
_REFUSED_SESSION = (EXPIRED, UNKNOWN_TOKEN, "session_closed")
_DATA_OPCODES = (Opcode.TEXT, Opcode.BINARY)


class Lost(msgspec.Struct, frozen=True):
    """Put into every open request's queue when its connection ends (``garbled``: because
    the server sent a frame that does not decode)."""

    reason: str
    garbled: bool = False


class LinkLost(Exception):
    """The connection a request travelled on ended before its answer."""


class Garbled(Exception):
    """The server sent a frame that does not decode (the connection was closed)."""


class Rejected(Exception):
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


def translated(exc: BaseException, timeout: float) -> Exception | None:
    """The domain exception for a foreign one, most specific first (None: not foreign)."""
    if isinstance(exc, LinkLost):
        return NoConnection(f"connection to server lost: {exc}")
    if isinstance(exc, Garbled):
        return InternalError(f"unreadable frame from server: {exc}")
    if isinstance(exc, InvalidURI):
        return InvalidArgumentError(f"invalid server URL: {exc}")
    if isinstance(exc, InvalidStatus):
        problem = _problem_of(exc)
        if problem is not None and problem.code in _REFUSED_SESSION:
            return Rejected(problem)
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


def translate(timeout: float, caller: CallerCode | None = None) -> AbstractContextManager[None]:
    """The one place this adapter's foreign errors become domain exceptions."""
    return translating(translated, timeout, caller)


def quiet(task: asyncio.Task[None]) -> None:
    """A done-callback for best-effort sends: retrieve the failure, which is nobody's concern."""
    if not task.cancelled():
        task.exception()


class Link:
    """One open WebSocket connection: the request queues its reader fills.

    Args:
        ws: the open connection.
        codec: the negotiated subprotocol's frame codec.
        ids: the request ids to use (shared by every link of a transport, so an id is never
            reused while a request that carried it may still be answered).
    """

    def __init__(self, ws: ClientConnection, codec: FrameCodec, ids: Iterator[int]) -> None:
        self.ws = ws
        self.codec = codec
        self._ids = ids
        self.queues: dict[int, asyncio.Queue[ServerFrame | Lost]] = {}
        self.lost: str | None = None
        self.garbled = False
        self.reader: asyncio.Task[None] | None = None

    @property
    def alive(self) -> bool:
        """True until the connection ended."""
        return self.lost is None

    def next_id(self) -> int:
        """A fresh request id."""
        return next(self._ids)

    def open(self, request_id: int) -> asyncio.Queue[ServerFrame | Lost]:
        """The queue the reader fills with request ``request_id``'s frames."""
        queue: asyncio.Queue[ServerFrame | Lost] = asyncio.Queue()
        if self.lost is not None:
            queue.put_nowait(Lost(self.lost, self.garbled))
        self.queues[request_id] = queue
        return queue

    def forget(self, request_id: int) -> None:
        """Drop a request's queue (its late frames are discarded)."""
        self.queues.pop(request_id, None)

    async def send(self, frame: msgspec.Struct) -> None:
        """Send one frame.

        Raises:
            LinkLost: the connection is gone.
        """
        if self.lost is not None:
            raise LinkLost(self.lost)
        data = self.codec.encode(frame)
        try:
            await self.ws.send(data.decode("utf-8") if self.codec.text else data)
        except ConnectionClosed as exc:
            self.end(str(exc))  # before the reader notices: callers check ``alive`` next
            raise LinkLost(str(exc)) from exc

    def send_soon(self, frame: msgspec.Struct) -> None:
        """Send ``frame`` without waiting (best effort: a failure is ignored)."""
        if self.lost is None:
            task = asyncio.get_running_loop().create_task(self._send_quietly(frame))
            task.add_done_callback(quiet)

    async def _send_quietly(self, frame: msgspec.Struct) -> None:
        with contextlib.suppress(LinkLost):
            await self.send(frame)

    def cancel_soon(self, request_id: int) -> None:
        """Tell the server to abandon a request, without waiting (best effort)."""
        self.send_soon(CancelFrame(id=request_id))

    def end(self, reason: str, garbled: bool = False) -> None:
        """Mark the link lost and release every waiting request (idempotent)."""
        if self.lost is not None:
            return
        self.lost = reason
        self.garbled = garbled
        for queue in self.queues.values():
            queue.put_nowait(Lost(reason, garbled))


async def take(queue: asyncio.Queue[ServerFrame | Lost]) -> ServerFrame:
    """The next frame of a request.

    Raises:
        LinkLost: the connection ended first.
        Garbled: the server sent a frame that does not decode.
    """
    item = await queue.get()
    if isinstance(item, Lost):
        raise (Garbled if item.garbled else LinkLost)(item.reason)
    return item


async def exchange(link: Link, build: Callable[[int], msgspec.Struct], deadline: float) -> Reply:
    """Send the request frame ``build(id)`` on ``link`` and wait for its reply (by ``deadline``).

    Frames before the reply (there are none for these requests) are skipped. A request given
    up on (deadline, cancellation, lost link) is cancelled at the server, best effort.

    Raises:
        NoConnection: the link broke or the deadline passed.
    """
    request_id = link.next_id()
    queue = link.open(request_id)
    timeout = max(0.0, deadline - asyncio.get_running_loop().time())
    done = False
    try:
        with translate(timeout):
            async with asyncio.timeout_at(deadline):
                await link.send(build(request_id))
                while True:
                    answer = await take(queue)
                    if answer.reply is not None:
                        done = True
                        return answer.reply
    finally:
        link.forget(request_id)
        if not done:
            link.cancel_soon(request_id)


def deliver(link: Link, on_event: Callable[[JobEvent], None], data: bytes) -> bool:
    """Route one server message: an event to ``on_event``, any other frame to its request's
    queue (frames of a request given up on are dropped). False when it does not decode: the
    link is then marked lost and garbled, and the caller closes the connection with 1007."""
    try:
        frame = link.codec.decode_server(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        link.end(f"malformed frame ({exc})", garbled=True)
        return False
    if frame.event is not None:
        on_event(frame.event)
    elif frame.id is not None:
        queue = link.queues.get(frame.id)
        if queue is not None:
            queue.put_nowait(frame)
    return True


class RoutingConnection(ClientConnection):
    """websockets' client connection, handing each whole data frame to ``route`` as the
    protocol parses it (``create_connection``, websockets' hook for this).

    The default connection queues each message for a reader task to take, which costs a
    task switch per reply before the waiting request even wakes. A fragmented message (our
    server sends none), or a message before ``route`` was set, turns the connection over to
    websockets' own assembler for good, so messages keep their order; the reader task takes
    those.
    """

    route: Callable[[bytes], None] | None = None
    _assembling = False

    def process_event(self, event: Event) -> None:
        if not self._assembling and isinstance(event, Frame) and event.opcode in _DATA_OPCODES:
            if self.route is not None and event.fin:
                self.route(bytes(event.data))
                return
            # Fragmented, or before ``route`` was set: the assembler from here on.
            self._assembling = True
        super().process_event(event)


def route_into(link: Link, on_event: Callable[[JobEvent], None]) -> None:
    """Hand ``link``'s whole frames to ``deliver`` from its connection's protocol callback
    (``RoutingConnection``); a frame that does not decode closes the connection with 1007."""
    ws = link.ws
    if not isinstance(ws, RoutingConnection):
        return

    def route(data: bytes) -> None:
        if link.lost is None and not deliver(link, on_event, data):
            closing = asyncio.get_running_loop().create_task(_close_garbled(ws))
            closing.add_done_callback(quiet)

    ws.route = route


async def _close_garbled(ws: ClientConnection) -> None:
    await ws.close(code=CLOSE_INVALID_PAYLOAD, reason="malformed frame")


async def read(
    link: Link, on_event: Callable[[JobEvent], None], on_end: Callable[[Link], None]
) -> None:
    """The link's reader task: route every server message ``RoutingConnection`` left to
    websockets' assembler (all of them on another connection) until the connection ends.

    A frame that does not decode closes the connection with 1007 and marks the link garbled
    (not worth a replay: the server speaks another protocol). ``on_end`` runs last, after
    the link was marked lost.
    """
    reason = "connection closed"
    try:
        async for message in link.ws:
            data = message.encode("utf-8") if isinstance(message, str) else message
            if not deliver(link, on_event, data):
                await _close_garbled(link.ws)
                break
    except ConnectionClosed as exc:
        reason = f"connection closed ({exc})"
    except OSError as exc:
        reason = f"connection failed ({exc})"
    finally:
        code = link.ws.close_code
        if code is not None and reason == "connection closed":
            reason = f"connection closed by server (code {code})"
        link.end(reason)
        on_end(link)
