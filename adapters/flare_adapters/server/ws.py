"""The WebSocket protocol at ``/v1/ws``: many correlated requests, pushed job events, chunks.

Handshake
    ``GET /v1/ws`` upgraded to WebSocket. Subprotocols (``Sec-WebSocket-Protocol``):
    ``flare-core.v1.json`` (every frame is a JSON text frame; ``bytes`` fields are base64) or
    ``flare-core.v1.msgpack`` (every frame is a msgpack binary frame; ``bytes`` are raw). No
    subprotocol means JSON. ``Authorization: Bearer <token>`` authenticates the connection at the
    handshake (an invalid token is refused with 401 before the upgrade); without it the client
    must first send a ``login`` frame.

Client -> server frames (maps; ``id`` is an integer >= 0 the client chooses, unique among its
requests in flight; unknown keys are ignored):

    {"id", "op": "login", "user", "api_key", "study"}  -> reply Ok({token, idle_timeout, principal})
    {"id", "op": "call", "command": {<command, with its "op" tag>}}  -> reply
    {"id", "op": "upload_start", "command": {<submit_job>}}  -> {"id", "op": "ack", "n": window}
    {"id", "op": "chunk", "data": <bytes>}        one piece of the upload's zip; -> ack n=1
    {"id", "op": "upload_end"}                    -> reply (the backend's answer to the submit)
    {"id", "op": "download", "command": {<download_job_result|download_job_components>},
     "window": n}                                 -> chunk frames, then the reply
    {"id", "op": "ack", "n": k}                   k more download chunk frames may be sent
    {"id", "op": "cancel"}                        abandon request ``id``: reply code "cancelled"
    {"id", "op": "subscribe", "job_id": str|null} push events of one job (null: every job of
                                                  the session's study) -> reply Ok(null)
    {"id", "op": "unsubscribe", "job_id": str|null}  -> reply Ok(null)

Server -> client frames:

    {"id", "reply": {"kind": "ok", "value": ...} | {"kind": "problem", "code", ...}}
        the final answer to request ``id`` (a ``flare_core.Reply``);
    {"id", "op": "chunk", "data": <bytes>}   a piece of download ``id``'s zip, in order; the
                                             reply Ok({"bytes": total}) ends the stream;
    {"id", "op": "ack", "n": k}              the upload ``id`` may send k more chunks;
    {"event": {"job_id", "study", "status"}} a subscribed job changed status (a hint: events
                                             are dropped, oldest first, past a backlog bound).

Flow control is by credit in both directions: a sender may have at most ``window`` chunk frames
unacknowledged. Uploads: the server grants ``ServerSettings.ws_window`` at ``upload_start`` and
acks each chunk once it is on disk; it reads one frame at a time, so a client that ignores the
credit is simply slowed down by TCP. Downloads: the server sends at most ``window`` chunks (the
request's, default ``ws_window``) beyond the client's acks, and waits. Every call
re-authenticates the session (refreshing its idle timer), so an idle-expired session answers
``session_expired`` problems; ``call`` with ``logout`` ends the session.

Limits: frames larger than ``ws_max_frame_bytes`` close the connection with 1009; more than
``ws_max_in_flight`` concurrent requests are answered ``too_many_requests``; a connection holds at
most ``ws_max_subscriptions`` subscriptions of job ids up to 64 characters; uploads are bounded
by ``max_upload_bytes`` and the zipsafe checks, as over HTTP. Keepalive: the server pings every
``ws_heartbeat`` seconds and closes a connection whose pong does not come back.

Close codes: 1000 normal; 1001 server shutting down; 1003 a text frame on the msgpack
subprotocol or a binary frame on the JSON one; 1007 a frame that does not decode as a request
map with an integer ``id`` and a string ``op``; 1008 a request ``id`` reused while in flight;
1009 frame too large; 1011 unexpected server error. A failed request never closes the
connection: it gets a problem reply, and other requests continue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Final, Literal

import msgspec
from aiohttp import WSMsgType, web

import flare_core as fc
from flare_adapters.http.problems import protocol_problem
from flare_adapters.server.context import (
    BACKEND,
    EXECUTOR,
    SETTINGS,
    SPOOL_DIR,
    WEBSOCKETS,
    Caller,
    caller_of,
    run_sync,
)
from flare_adapters.server.downloads import open_archive
from flare_adapters.server.settings import WS_MAX_JOB_ID_CHARS
from flare_adapters.server.uploads import Spool, upload_reply
from flare_core._errors import AuthenticationError, InvalidArgumentError
from flare_ports.wire import Codec, WireError, json_codec, msgpack_codec

__all__ = [
    "CLOSE_GOING_AWAY",
    "CLOSE_INTERNAL_ERROR",
    "CLOSE_INVALID_PAYLOAD",
    "CLOSE_NORMAL",
    "CLOSE_POLICY_VIOLATION",
    "CLOSE_TOO_BIG",
    "CLOSE_UNSUPPORTED_DATA",
    "JSON_PROTOCOL",
    "MSGPACK_PROTOCOL",
    "AckFrame",
    "ChunkFrame",
    "ClientFrame",
    "EventFrame",
    "ReplyFrame",
    "websocket_handler",
]

logger = logging.getLogger("flare_adapters.server.ws")

JSON_PROTOCOL: Final = "flare-core.v1.json"
MSGPACK_PROTOCOL: Final = "flare-core.v1.msgpack"

CLOSE_NORMAL: Final = 1000
CLOSE_GOING_AWAY: Final = 1001
CLOSE_UNSUPPORTED_DATA: Final = 1003
CLOSE_INVALID_PAYLOAD: Final = 1007
CLOSE_POLICY_VIOLATION: Final = 1008
CLOSE_TOO_BIG: Final = 1009
CLOSE_INTERNAL_ERROR: Final = 1011


class ClientFrame(msgspec.Struct, kw_only=True):
    """Any frame a client sends (fields unused by its ``op`` keep their defaults)."""

    id: int
    op: str
    command: msgspec.Raw = msgspec.Raw()
    data: bytes = b""
    n: int = 0
    window: int = 0
    job_id: str | None = None
    user: str = ""
    api_key: str | None = None
    study: str = "default"


class ReplyFrame(msgspec.Struct, kw_only=True):
    """The final answer to request ``id``."""

    id: int
    reply: fc.Ok | fc.Problem


class ChunkFrame(msgspec.Struct, kw_only=True):
    """A piece of an archive (download from the server, upload from the client)."""

    id: int
    op: Literal["chunk"] = "chunk"
    data: bytes


class AckFrame(msgspec.Struct, kw_only=True):
    """Credit: ``n`` more chunk frames of transfer ``id`` may be sent."""

    id: int
    op: Literal["ack"] = "ack"
    n: int


class EventFrame(msgspec.Struct, kw_only=True):
    """A pushed job event."""

    event: fc.JobEvent


def _cancelled() -> fc.Problem:
    return protocol_problem("cancelled", "request cancelled by the client")


class _Credit:
    """A download's send window: ``take`` waits while the client has no credit left."""

    def __init__(self, window: int) -> None:
        self._n = window
        self._changed = asyncio.Event()

    def grant(self, n: int) -> None:
        self._n += max(0, n)
        self._changed.set()

    async def take(self) -> None:
        while self._n <= 0:
            self._changed.clear()
            await self._changed.wait()
        self._n -= 1


class _Upload:
    def __init__(self, command: fc.Command, caller: Caller, spool: Spool) -> None:
        self.command = command
        self.caller = caller
        self.spool = spool


class _Connection:
    """One WebSocket connection's protocol state (see the module docstring)."""

    def __init__(self, request: web.Request, ws: web.WebSocketResponse) -> None:
        self.app = request.app
        self.settings = self.app[SETTINGS]
        self.ws = ws
        self.binary = ws.ws_protocol == MSGPACK_PROTOCOL
        self.codec: Codec = msgpack_codec if self.binary else json_codec
        module: Any = msgspec.msgpack if self.binary else msgspec.json
        self._decode_frame: Callable[[bytes], ClientFrame] = module.Decoder(ClientFrame).decode
        self._encode: Callable[[Any], bytes] = module.Encoder().encode
        self.caller = caller_of(request)
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.uploads: dict[int, _Upload] = {}
        self.failed_uploads: set[int] = set()
        self.credits: dict[int, _Credit] = {}
        self.subscriptions: set[str | None] = set()
        self._unsubscribe: Callable[[], None] | None = None
        self._events: asyncio.Queue[fc.JobEvent] = asyncio.Queue()
        self._event_pump: asyncio.Task[None] | None = None
        self._send_lock = asyncio.Lock()
        self._loop = asyncio.get_running_loop()

    # --- sending ---------------------------------------------------------------------------

    async def send(self, frame: msgspec.Struct) -> None:
        """Send one frame (serialised: frames never interleave)."""
        data = self._encode(frame)
        async with self._send_lock:
            if self.ws.closed:
                return
            with contextlib.suppress(ConnectionResetError):
                if self.binary:
                    await self.ws.send_bytes(data)
                else:
                    await self.ws.send_str(data.decode("utf-8"))

    async def reply(self, request_id: int, reply: fc.Reply) -> None:
        """Send the final answer to a request."""
        await self.send(ReplyFrame(id=request_id, reply=reply))

    async def fail(self, request_id: int, exc: BaseException) -> None:
        """Answer a request with the problem describing ``exc``."""
        await self.reply(request_id, fc.Problem.from_exception(exc))

    # --- the receive loop --------------------------------------------------------------------

    async def run(self) -> None:
        """Serve frames until the peer or the server closes the connection."""
        try:
            async for message in self.ws:
                if message.type == WSMsgType.TEXT:
                    if self.binary:
                        await self.close(CLOSE_UNSUPPORTED_DATA, "text frame on msgpack protocol")
                        break
                    data = message.data.encode("utf-8")
                elif message.type == WSMsgType.BINARY:
                    if not self.binary:
                        await self.close(CLOSE_UNSUPPORTED_DATA, "binary frame on json protocol")
                        break
                    data = message.data
                else:
                    break  # ERROR (e.g. frame too large: aiohttp already closed with 1009)
                try:
                    frame = self._decode_frame(data)
                except RecursionError:  # unknown keys are skipped, but still parsed
                    await self.close(CLOSE_INVALID_PAYLOAD, "malformed frame: nested too deep")
                    break
                except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                    await self.close(CLOSE_INVALID_PAYLOAD, f"malformed frame: {exc}")
                    break
                if frame.id < 0:
                    await self.close(CLOSE_INVALID_PAYLOAD, "malformed frame: negative id")
                    break
                await self.dispatch(frame)
        except Exception:
            logger.exception("websocket connection failed")
            await self.close(CLOSE_INTERNAL_ERROR, "server internal error")
        finally:
            await self.cleanup()

    async def close(self, code: int, message: str) -> None:
        """Close the connection with ``code`` and a short reason."""
        await self.ws.close(code=code, message=message[:120].encode("utf-8"))

    async def cleanup(self) -> None:
        """Cancel what is still running and release uploads and the event subscription."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        tasks = [*self.tasks.values()]
        if self._event_pump is not None:
            tasks.append(self._event_pump)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for upload in self.uploads.values():
            await run_sync(self.app, upload.spool.discard)
        self.uploads.clear()

    # --- dispatch ------------------------------------------------------------------------------

    def _busy(self, request_id: int) -> bool:
        return request_id in self.tasks or request_id in self.uploads

    async def dispatch(self, frame: ClientFrame) -> None:
        """Route one decoded frame to its handler."""
        op = frame.op
        if op == "chunk":
            await self._chunk(frame)
        elif op == "ack":
            credit = self.credits.get(frame.id)
            if credit is not None:
                credit.grant(frame.n)
        elif op == "cancel":
            await self._cancel(frame.id)
        elif op == "upload_end":
            await self._upload_end(frame.id)
        elif op in ("login", "call", "upload_start", "download", "subscribe", "unsubscribe"):
            if self._busy(frame.id):
                await self.close(CLOSE_POLICY_VIOLATION, f"request id {frame.id} is in flight")
                return
            if len(self.tasks) + len(self.uploads) >= self.settings.ws_max_in_flight:
                await self.reply(
                    frame.id,
                    protocol_problem("too_many_requests", "too many requests in flight"),
                )
                return
            if op == "upload_start":
                await self._upload_start(frame)
            else:
                self._spawn(frame.id, self._request(frame))
        else:
            await self.fail(frame.id, InvalidArgumentError(f"unknown op {op!r}"))

    def _spawn(self, request_id: int, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(self._guarded(request_id, work))
        self.tasks[request_id] = task

        def done(_: asyncio.Task[None]) -> None:
            self.tasks.pop(request_id, None)
            # A task cancelled before its first step never awaited ``work``: close it, or
            # it warns "coroutine was never awaited" (e.g. a client dropping mid-request).
            work.close()

        task.add_done_callback(done)

    async def _guarded(self, request_id: int, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if fc.Problem.from_exception(exc).code == "internal_error":
                logger.exception("websocket request %s failed", request_id)
            await self.fail(request_id, exc)

    async def _cancel(self, request_id: int) -> None:
        upload = self.uploads.pop(request_id, None)
        if upload is not None:
            await run_sync(self.app, upload.spool.discard)
            await self.reply(request_id, _cancelled())
            return
        task = self.tasks.get(request_id)
        if task is not None and task.cancel():
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await self.reply(request_id, _cancelled())

    # --- requests -------------------------------------------------------------------------------

    async def authenticate(self) -> Caller:
        """The connection's caller, re-authenticated (refreshes the session's idle timer).

        Raises:
            AuthenticationError: not logged in, or the token was logged out.
            SessionExpired: the session idled out.
        """
        if self.caller is None:
            raise AuthenticationError("not logged in: send a login frame first")
        try:
            principal = await run_sync(self.app, self.app[BACKEND].authenticate, self.caller.token)
        except (AuthenticationError, fc.SessionClosed):
            # Expired, revoked or logged out: no more events of the session's study either.
            self.caller = None
            raise
        self.caller = Caller(self.caller.token, principal)
        return self.caller

    def _command(self, frame: ClientFrame) -> fc.Command:
        try:
            return self.codec.decode_command(bytes(frame.command))
        except WireError as exc:
            raise InvalidArgumentError(str(exc)) from None

    async def _request(self, frame: ClientFrame) -> None:
        backend = self.app[BACKEND]
        if frame.op == "login":
            grant = await run_sync(self.app, backend.login, frame.user, frame.api_key, frame.study)
            self.caller = Caller(grant.token, grant.principal)
            await self.reply(frame.id, fc.Ok(value=msgspec.to_builtins(grant)))
            return
        if frame.op in ("subscribe", "unsubscribe"):
            await self.authenticate()
            self._subscription(frame.op == "subscribe", frame.job_id)
            await self.reply(frame.id, fc.Ok(value=None))
            return
        command = self._command(frame)
        caller = await self.authenticate()
        if frame.op == "download":
            if command.transfer != "download":
                raise InvalidArgumentError(f"{type(command).__name__} is not a download")
            await self._download(frame.id, caller, command, frame.window)
            return
        if command.transfer is not None:
            raise InvalidArgumentError(f"use the {command.transfer} ops for this command")
        if isinstance(command, fc.Logout):
            await run_sync(self.app, backend.logout, caller.token)
            self.caller = None
            await self.reply(frame.id, fc.Ok(value=None))
            return
        reply = await run_sync(self.app, backend.handle, caller.principal, command)
        await self.reply(frame.id, reply)

    async def _download(
        self, request_id: int, caller: Caller, command: fc.Command, window: int
    ) -> None:
        reply = await run_sync(self.app, self.app[BACKEND].handle, caller.principal, command)
        if isinstance(reply, fc.Problem):
            await self.reply(request_id, reply)
            return
        stream = await open_archive(self.app, caller.principal, reply)
        credit = self.credits[request_id] = _Credit(
            window if window > 0 else self.settings.ws_window
        )
        size = self.settings.chunk_bytes
        total = 0
        try:
            while (chunk := await stream.next()) is not None:
                for start in range(0, len(chunk), size):
                    await credit.take()
                    piece = chunk[start : start + size]
                    await self.send(ChunkFrame(id=request_id, data=piece))
                    total += len(piece)
        finally:
            self.credits.pop(request_id, None)
            await stream.close()
        await self.reply(request_id, fc.Ok(value={"bytes": total}))

    # --- uploads --------------------------------------------------------------------------------

    async def _upload_start(self, frame: ClientFrame) -> None:
        try:
            command = self._command(frame)
            if command.transfer != "upload":
                raise InvalidArgumentError(f"{type(command).__name__} is not an upload")
            caller = await self.authenticate()
            spool = await run_sync(
                self.app,
                Spool,
                self.app[SPOOL_DIR],
                self.settings.max_upload_bytes,
                self.app[EXECUTOR],
            )
        except Exception as exc:
            await self.fail(frame.id, exc)
            return
        self.failed_uploads.discard(frame.id)
        self.uploads[frame.id] = _Upload(command, caller, spool)
        await self.send(AckFrame(id=frame.id, n=self.settings.ws_window))

    async def _abandon(self, request_id: int, exc: BaseException) -> None:
        upload = self.uploads.pop(request_id, None)
        if upload is not None:
            await run_sync(self.app, upload.spool.discard)
        self.failed_uploads.add(request_id)
        if len(self.failed_uploads) > self.settings.ws_max_in_flight:
            # Only remembered so their late chunks are dropped quietly: a bounded set will do
            # (a forgotten id's late chunks get "no upload in progress" problems instead).
            self.failed_uploads.discard(min(self.failed_uploads))
        await self.fail(request_id, exc)

    async def _chunk(self, frame: ClientFrame) -> None:
        if frame.id in self.failed_uploads:
            return  # the upload already failed and was answered; drain its remaining frames
        upload = self.uploads.get(frame.id)
        if upload is None:
            await self.fail(frame.id, InvalidArgumentError(f"no upload {frame.id} in progress"))
            return
        try:
            # Awaited in the receive loop: a slow disk slows this connection's reading (TCP
            # backpressure), never another connection.
            await upload.spool.write(frame.data)
        except Exception as exc:
            await self._abandon(frame.id, exc)
            return
        await self.send(AckFrame(id=frame.id, n=1))

    async def _upload_end(self, request_id: int) -> None:
        if request_id in self.failed_uploads:
            self.failed_uploads.discard(request_id)
            return  # already answered
        upload = self.uploads.pop(request_id, None)
        if upload is None:
            await self.fail(request_id, InvalidArgumentError(f"no upload {request_id} in progress"))
            return

        async def finish() -> None:
            try:
                await upload.spool.finish()
                caller = await self.authenticate()
                reply = await upload_reply(self.app, caller.principal, upload.command, upload.spool)
            finally:
                await run_sync(self.app, upload.spool.discard)
            await self.reply(request_id, reply)

        self._spawn(request_id, finish())

    # --- events -----------------------------------------------------------------------------------

    def _subscription(self, add: bool, job_id: str | None) -> None:
        # Every per-connection structure is bounded (issue 10: 300 subscriptions of 1 MiB job
        # ids once held 303 MiB on one connection).
        if add:
            if job_id is not None and len(job_id) > WS_MAX_JOB_ID_CHARS:
                raise InvalidArgumentError(
                    f"job id of {len(job_id)} characters; at most {WS_MAX_JOB_ID_CHARS}"
                )
            limit = self.settings.ws_max_subscriptions
            if job_id not in self.subscriptions and len(self.subscriptions) >= limit:
                raise InvalidArgumentError(
                    f"at most {limit} subscriptions per connection; unsubscribe first"
                )
            self.subscriptions.add(job_id)
        else:
            self.subscriptions.discard(job_id)
        if self.subscriptions and self._unsubscribe is None:
            self._unsubscribe = self.app[BACKEND].subscribe(self._listener)
            self._event_pump = asyncio.create_task(self._pump())
        elif not self.subscriptions and self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def _listener(self, event: fc.JobEvent) -> None:
        # Called from any thread (often under the service's lock): only hand the event over.
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody to tell
            self._loop.call_soon_threadsafe(self._offer, event)

    def _offer(self, event: fc.JobEvent) -> None:
        caller = self.caller
        if caller is None or event.study != caller.principal.study:
            return
        if None not in self.subscriptions and event.job_id not in self.subscriptions:
            return
        if self._events.qsize() >= self.settings.ws_event_backlog:
            self._events.get_nowait()  # drop the oldest: events are wake-up hints
        self._events.put_nowait(event)

    async def _pump(self) -> None:
        while True:
            event = await self._events.get()
            await self.send(EventFrame(event=event))


async def websocket_handler(request: web.Request) -> web.StreamResponse:
    """``GET /v1/ws``: upgrade and serve the protocol of this module."""
    settings = request.app[SETTINGS]
    ws = web.WebSocketResponse(
        protocols=(JSON_PROTOCOL, MSGPACK_PROTOCOL),
        heartbeat=settings.ws_heartbeat,
        max_msg_size=settings.ws_max_frame_bytes,
    )
    if not ws.can_prepare(request).ok:
        raise web.HTTPBadRequest(reason="expected a WebSocket upgrade")
    await ws.prepare(request)
    request.app[WEBSOCKETS].sockets.add(ws)
    try:
        await _Connection(request, ws).run()
    finally:
        request.app[WEBSOCKETS].sockets.discard(ws)
        if not ws.closed:
            await ws.close(code=CLOSE_NORMAL)
    return ws
