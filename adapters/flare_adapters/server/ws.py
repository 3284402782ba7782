"""The server end of the WebSocket protocol at ``/v1/ws`` (``docs/protocol.md``).

One ``_Connection`` per socket: a receive loop decoding ``ClientFrame`` s and answering quick
reads itself, a task per other request in flight, upload spools fed by chunk frames, download
senders held back by their ``Credit``, and an event pump for the connection's subscriptions.
The frames, op names, subprotocols, close codes and credit rule are those of
``flare_adapters.ws.protocol``, shared with the client; a request's trip to the backend is
``flare_adapters.serving.serve_command``, shared with the HTTP routes and the in-process
transports.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, NamedTuple

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
    serve_at_once,
)
from flare_adapters.server.downloads import open_archive
from flare_adapters.server.event_hub import EVENT_HUB
from flare_adapters.server.rows import encode_raw
from flare_adapters.server.settings import WS_MAX_JOB_ID_CHARS
from flare_adapters.server.uploads import Spool, upload_reply
from flare_adapters.serving import Served, serve_command
from flare_adapters.ws.protocol import (
    CLOSE_INTERNAL_ERROR,
    CLOSE_INVALID_PAYLOAD,
    CLOSE_NORMAL,
    CLOSE_POLICY_VIOLATION,
    CLOSE_UNSUPPORTED_DATA,
    REQUEST_OPS,
    SUBPROTOCOLS,
    AckFrame,
    ChunkFrame,
    ClientFrame,
    Credit,
    Encoding,
    EventFrame,
    FrameCodec,
    ReplyFrame,
)
from flare_core.errors import AuthenticationError, InvalidArgumentError
from flare_ports import Backend
from flare_ports.wire import Codec, WireError, json_codec, msgpack_codec

__all__ = ["websocket_handler"]

logger = logging.getLogger("flare_adapters.server.ws")


def _cancelled() -> fc.Problem:
    return protocol_problem("cancelled", "request cancelled by the client")


class _Refused(NamedTuple):
    """The token was refused (``backend.authenticate`` raised ``error``)."""

    error: Exception


def _serve_encoded(
    backend: Backend, token: str, command: fc.Command, principal: fc.Principal, encoding: Encoding
) -> Served:
    # Runs in the thread pool: ``serve_command``, then a ``Rows`` reply (a long listing)
    # read and encoded here too, since reading it reads the store (``server.rows``).
    served = serve_command(backend, token, command, principal=principal)
    return served._replace(reply=encode_raw(served.reply, encoding))


def _authenticated_serve(
    backend: Backend, token: str, command: fc.Command, encoding: Encoding
) -> tuple[fc.Principal, Served] | _Refused:
    # Runs in the thread pool: what ``authenticate`` then ``_serve`` do, in one job.
    try:
        principal = backend.authenticate(token)
    except Exception as exc:  # the caller re-raises it on the loop, as ``authenticate`` would
        return _Refused(exc)
    return principal, _serve_encoded(backend, token, command, principal, encoding)


class _SendWindow:
    """A download's ``Credit``, awaitable: ``take`` waits while the client has none left."""

    def __init__(self, window: int) -> None:
        self._credit = Credit(window)
        self._changed = asyncio.Event()

    def grant(self, n: int) -> None:
        self._credit.grant(n)
        self._changed.set()

    async def take(self) -> None:
        while not self._credit.spend():
            self._changed.clear()
            await self._changed.wait()


class _Upload:
    def __init__(self, command: fc.Command, spool: Spool) -> None:
        self.command = command
        self.spool = spool


def _token_of(caller: Caller | None) -> str:
    if caller is None:
        raise AuthenticationError("not logged in: send a login frame first")
    return caller.token


class _Connection:
    """One WebSocket connection's protocol state (the server end of ``docs/protocol.md``)."""

    def __init__(self, request: web.Request, ws: web.WebSocketResponse) -> None:
        self.app = request.app
        self.settings = self.app[SETTINGS]
        self.ws = ws
        self.frames = FrameCodec.for_subprotocol(ws.ws_protocol)
        self.binary = not self.frames.text
        self.codec: Codec = msgpack_codec if self.binary else json_codec
        self.caller = caller_of(request)
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.uploads: dict[int, _Upload] = {}
        self.failed_uploads: set[int] = set()
        self.credits: dict[int, _SendWindow] = {}
        self.subscriptions: dict[str | None, Callable[[], None]] = {}  # key -> its stop
        self._events: asyncio.Queue[fc.JobEvent] = asyncio.Queue()
        self._event_pump: asyncio.Task[None] | None = None
        self._send_lock = asyncio.Lock()

    # --- sending ---------------------------------------------------------------------------

    async def send(self, frame: msgspec.Struct) -> None:
        """Send one frame (serialised: frames never interleave)."""
        data = self.frames.encode(frame)
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
                    frame = self.frames.decode_client(data)
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
        for stop in self.subscriptions.values():
            stop()
        self.subscriptions.clear()
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
        elif op in REQUEST_OPS:
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
            elif op == "call":
                await self._call(frame)
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
            await self._failed(request_id, exc)

    async def _failed(self, request_id: int, exc: Exception) -> None:
        if fc.Problem.from_exception(exc).code == "internal_error":
            logger.exception("websocket request %s failed", request_id, exc_info=exc)
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
        token = _token_of(self.caller)
        with self._losing_the_caller():
            principal = await run_sync(self.app, self.app[BACKEND].authenticate, token)
        self.caller = Caller(token, principal)
        return self.caller

    @contextlib.contextmanager
    def _losing_the_caller(self) -> Iterator[None]:
        try:
            yield
        except (AuthenticationError, fc.SessionClosed):
            # Expired, revoked or logged out: no more events of the session's study either.
            self.caller = None
            raise

    def _command(self, frame: ClientFrame) -> fc.Command:
        try:
            return self.codec.decode_command(bytes(frame.command))
        except WireError as exc:
            raise InvalidArgumentError(str(exc)) from None

    async def _call(self, frame: ClientFrame) -> None:
        """Serve a ``call`` frame: a quick read here in the receive loop, without a task of its
        own (creating a task and running its first step cost about as much as the read
        itself); anything else in a task, which goes straight to the thread pool when the
        backend declined the read.
        """
        caller = self.caller
        try:
            command = None if caller is None else self._command(frame)
        except InvalidArgumentError:
            command = None
        if caller is None or command is None:  # the task answers with the problem
            self._spawn(frame.id, self._request(frame))
            return
        try:
            outcome = self._at_once(caller.token, command)
            if outcome is None:
                self._spawn(frame.id, self._request(frame, declined=command))
                return
            served = self._settle(caller.token, outcome)
        except Exception as exc:  # this request's failure, as in its task: never the link's
            await self._failed(frame.id, exc)
            return
        await self.reply(frame.id, served.reply)

    async def _request(self, frame: ClientFrame, declined: fc.Command | None = None) -> None:
        # ``declined``: the frame's command, which the backend declined to serve at once.
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
        command = self._command(frame) if declined is None else declined
        if frame.op != "download" and command.transfer is None:
            # The common case (every read): authenticate and serve in one worker job.
            served = await self._authenticate_and_serve(command, at_once=declined is None)
            if isinstance(command, fc.Logout):
                self.caller = None
            await self.reply(frame.id, served.reply)
            return
        caller = await self.authenticate()
        if frame.op == "download":
            if command.transfer != "download":
                raise InvalidArgumentError(f"{type(command).__name__} is not a download")
            await self._download(frame.id, caller, command, frame.window)
            return
        if command.transfer is not None:
            raise InvalidArgumentError(f"use the {command.transfer} ops for this command")
        served = await self._serve(caller, command)
        if isinstance(command, fc.Logout):
            self.caller = None
        await self.reply(frame.id, served.reply)

    async def _authenticate_and_serve(self, command: fc.Command, *, at_once: bool) -> Served:
        """``authenticate`` then ``_serve``, in one job of the thread pool instead of two (a hop
        costs ~0.1 ms of wall time and of the event loop's time here), or in none for a quick
        read the backend serves on the loop (``context.serve_at_once``; not asked again when
        ``at_once`` is False, after it declined).

        Raises:
            AuthenticationError: not logged in, or the token was logged out.
            SessionExpired: the session idled out.
        """
        token = _token_of(self.caller)
        outcome = self._at_once(token, command) if at_once else None
        if outcome is None:
            outcome = await run_sync(
                self.app,
                _authenticated_serve,
                self.app[BACKEND],
                token,
                command,
                self.frames.encoding,
            )
        return self._settle(token, outcome)

    def _at_once(
        self, token: str, command: fc.Command
    ) -> tuple[fc.Principal, Served] | _Refused | None:
        # A quick read served on the loop, its token's refusal, or None: the backend declined.
        try:
            quick = serve_at_once(self.app, token, command)
        except Exception as exc:  # refused at once: handled as one refused in the pool
            return _Refused(exc)
        if quick is None:
            return None
        return quick[0], Served(encode_raw(quick[1], self.frames.encoding))

    def _settle(self, token: str, outcome: tuple[fc.Principal, Served] | _Refused) -> Served:
        """The served reply, after keeping the caller's principal up to date.

        Raises:
            Exception: the token's refusal (the caller is then forgotten, when it was the
                session's end).
        """
        if isinstance(outcome, _Refused):
            if isinstance(outcome.error, (AuthenticationError, fc.SessionClosed)):
                # Expired, revoked or logged out: no more events of the session's study either.
                self.caller = None
            raise outcome.error
        principal, served = outcome
        # A request running alongside may have logged out meanwhile: never bring that back.
        if self.caller is not None and self.caller.token == token:
            self.caller = Caller(token, principal)
        return served

    async def _serve(self, caller: Caller, command: fc.Command) -> Served:
        # Authenticated already (``authenticate``): the routine does not do it again.
        return await run_sync(
            self.app,
            _serve_encoded,
            self.app[BACKEND],
            caller.token,
            command,
            caller.principal,
            self.frames.encoding,
        )

    async def _download(
        self, request_id: int, caller: Caller, command: fc.Command, window: int
    ) -> None:
        served = await self._serve(caller, command)
        if served.open_download is None:
            await self.reply(request_id, served.reply)
            return
        stream = await open_archive(self.app, served.open_download)
        credit = self.credits[request_id] = _SendWindow(
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
            await self.authenticate()
            spool = Spool(self.app[SPOOL_DIR], self.settings.max_upload_bytes, self.app[EXECUTOR])
        except Exception as exc:
            await self.fail(frame.id, exc)
            return
        self.failed_uploads.discard(frame.id)
        self.uploads[frame.id] = _Upload(command, spool)
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
            # Re-authenticated at the end (an upload may outlast a logout), in the same worker
            # job that finishes, checks and serves it.
            caller, backend = self.caller, self.app[BACKEND]

            def principal() -> fc.Principal:
                return backend.authenticate(_token_of(caller))

            with self._losing_the_caller():
                who, reply = await upload_reply(self.app, principal, upload.command, upload.spool)
            self.caller = Caller(_token_of(caller), who)
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
            if job_id not in self.subscriptions:
                offer = self._offer if job_id is None else self._offer_one
                self.subscriptions[job_id] = self.app[EVENT_HUB].subscribe(job_id, offer)
            if self._event_pump is None:
                self._event_pump = asyncio.create_task(self._pump())
        elif (stop := self.subscriptions.pop(job_id, None)) is not None:
            stop()

    def _offer_one(self, event: fc.JobEvent) -> None:
        # The hub calls once per matching subscription: with an every-job one as well, that
        # one queues the event.
        if None not in self.subscriptions:
            self._offer(event)

    def _offer(self, event: fc.JobEvent) -> None:
        # On the loop, from the server's event hub.
        caller = self.caller
        if caller is None or event.study != caller.principal.study:
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
        protocols=SUBPROTOCOLS,
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
