"""The aiohttp application exposing any ``Backend`` over HTTP (``/v1/...``) and WebSocket.

``build_app(backend, settings)`` wires:

- one handler per route of ``flare_adapters.http.routes.ROUTES`` (the same table the client
  uses), plus ``POST /v1/sessions`` (login), ``GET /v1/openapi.json`` and ``GET /v1/ws``;
- middlewares: ``problems`` (every failure becomes ``application/problem+json``; unexpected
  exceptions are logged and answered with an opaque ``InternalError``, never a traceback or a
  path) and ``auth`` (``Authorization: Bearer <token>`` resolved through
  ``Backend.authenticate`` on every request, except login and the OpenAPI document);
- bounded bodies: JSON bodies up to ``max_json_bytes`` (413 beyond), uploads streamed to a
  spool file up to ``max_upload_bytes`` and checked with zipsafe before the backend sees them;
- a thread pool running the synchronous backend calls, so the event loop never blocks.

Downloads are streamed: the backend's archive iterator is pulled chunk by chunk in the pool and
written with backpressure (``await response.write``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Final, NamedTuple

import msgspec
from aiohttp import web

import flare_core as fc
from flare_adapters.http.openapi import build_openapi
from flare_adapters.http.problems import PROBLEM_CONTENT_TYPE, encode_problem, protocol_problem
from flare_adapters.http.routes import (
    LOGIN_PATH,
    OPENAPI_PATH,
    ROUTES,
    WS_PATH,
    LoginRequest,
    Route,
    request_to_command,
)
from flare_adapters.server.context import (
    BACKEND,
    CALLER,
    EXECUTOR,
    QUICK_READS,
    SETTINGS,
    SPOOL_DIR,
    WEBSOCKETS,
    Caller,
    OpenSockets,
    QuickReads,
    caller_of,
    run_sync,
    serve_at_once,
)
from flare_adapters.server.downloads import open_archive
from flare_adapters.server.events import install_event_stream
from flare_adapters.server.observe import (
    PUBLIC_ROUTES,
    install_observability,
    observe_middleware,
)
from flare_adapters.server.rows import reply_pieces
from flare_adapters.server.settings import ServerSettings
from flare_adapters.server.uploads import UploadTooLarge, spool_stream, upload_reply
from flare_adapters.server.ws import websocket_handler
from flare_adapters.serving import Served, serve_command
from flare_core.errors import AuthenticationError, InvalidArgumentError
from flare_core.nesting import decode_json
from flare_ports import Backend

__all__ = ["build_app", "exception_response", "problem_response", "reply_response"]

logger = logging.getLogger("flare_adapters.server")

_PUBLIC: Final = {("POST", LOGIN_PATH), ("GET", OPENAPI_PATH), *PUBLIC_ROUTES}
_JSON: Final = "application/json"
_ZIP_TYPES: Final = {"application/zip", "application/octet-stream", "application/x-zip-compressed"}
_AUTH_CODES: Final = {"not_authenticated", "session_expired", "session_closed"}
_CHALLENGE: Final = {"WWW-Authenticate": 'Bearer realm="flare-core"'}
_encode = msgspec.json.Encoder().encode


# --- responses -------------------------------------------------------------------------------


def problem_response(
    problem: fc.Problem, status: int | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    """An ``application/problem+json`` response for ``problem``.

    Authentication problems carry a ``WWW-Authenticate: Bearer`` challenge (RFC 6750).
    """
    code, body = encode_problem(problem, status)
    if headers is None and problem.code in _AUTH_CODES:
        headers = dict(_CHALLENGE)
    return web.Response(status=code, body=body, content_type=PROBLEM_CONTENT_TYPE, headers=headers)


def exception_response(exc: BaseException) -> web.Response:
    """The problem response for an exception (413 for oversized uploads; anything that is
    not a domain exception becomes an opaque ``InternalError``)."""
    status = 413 if isinstance(exc, UploadTooLarge) else None
    problem = fc.Problem.from_exception(exc)
    if problem.code == "internal_error" and not isinstance(exc, fc.InternalError):
        logger.error("unexpected error", exc_info=exc)
    return problem_response(problem, status)


def reply_response(reply: fc.Reply, status: int = 200) -> web.Response:
    """``Ok`` as ``{"kind": "ok", "value": ...}``; ``Problem`` as problem+json."""
    if isinstance(reply, fc.Problem):
        return problem_response(reply)
    return web.Response(status=status, body=_encode(reply), content_type=_JSON)


class StreamBroken(Exception):
    """A streamed body failed after its headers went out. ``problems_middleware`` lets it
    through, so aiohttp closes the connection before the body's end: a problem document can
    no longer be sent, and a well-formed end would pass a truncated body off as whole."""


async def send_reply(request: web.Request, reply: fc.Reply) -> web.StreamResponse:
    """``reply_response``, except that a ``Rows`` reply goes out as a chunked body, each piece
    read and encoded in the thread pool (``flare_adapters.server.rows``): the server holds one
    piece of a long listing at a time, never all of its rows."""
    if not (isinstance(reply, fc.Ok) and isinstance(reply.value, fc.Rows)):
        return reply_response(reply)
    app = request.app
    pieces = reply_pieces(reply.value, app[SETTINGS].chunk_bytes)

    async def pull() -> bytes | None:
        return await run_sync(app, next, pieces, None)

    response = web.StreamResponse(status=200, headers={"Content-Type": _JSON})
    return await _stream_body(request, response, pull, "listing")


async def _stream_body(
    request: web.Request,
    response: web.StreamResponse,
    pull: Callable[[], Awaitable[bytes | None]],
    what: str,
) -> web.StreamResponse:
    """Send ``response`` with the pieces ``pull`` gives until it gives None.

    A failure before the first piece is answered as a problem; once the headers are out, the
    only honest signal left is a truncated body (``StreamBroken``), which the client takes
    for a lost reply or an incomplete transfer.
    """
    try:
        piece = await pull()
    except Exception as exc:
        return exception_response(exc)
    try:
        await response.prepare(request)
        while piece is not None:
            await response.write(piece)  # waits while the client's window is full
            piece = await pull()
    except ConnectionResetError:
        raise  # the client went away; nothing to report
    except Exception as exc:
        logger.exception("%s failed mid-stream", what)
        raise StreamBroken(f"{what} failed mid-stream") from exc
    await response.write_eof()
    return response


# --- middlewares -----------------------------------------------------------------------------

_HTTP_CODES: Final = {
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


@web.middleware
async def problems_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Turn every failure into problem+json; never leak tracebacks or server paths."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "bad_request" if exc.status < 500 else "internal_error")
        message = {
            "not_found": f"no such endpoint: {request.method} {request.path}",
            "method_not_allowed": f"method {request.method} is not allowed on {request.path}",
            "payload_too_large": (
                f"request body exceeds {request.app[SETTINGS].max_json_bytes} bytes"
            ),
        }.get(code, exc.reason)
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return problem_response(protocol_problem(code, message), exc.status, headers)
    except (InvalidArgumentError, UploadTooLarge, fc.InvalidJobDefinition) as exc:
        return exception_response(exc)
    except (asyncio.CancelledError, ConnectionResetError, StreamBroken):
        raise
    except Exception:
        logger.exception("unhandled error serving %s %s", request.method, request.path)
        return problem_response(
            fc.Problem.from_exception(fc.InternalError("server internal error"))
        )


# Command requests without a body (GET/DELETE, downloads included, and a POST whose command
# has nothing to send: clone, abort, enable, disable) authenticate the token in the same worker
# job that then parses and serves the command: one hop to the thread pool per request instead
# of two (each costs ~0.1-0.2 ms of the event loop's time here). The order is kept: the header
# is checked first, then the token, and only then is the request parsed. A request that has a
# body stays with the middleware, which refuses a bad token before the body is read.
_ONE_HOP: Final = frozenset(
    (route.method, route.path)
    for route in ROUTES
    if route.fields_in_query and route.transfer != "upload"
)
_BODY_ROUTES: Final = frozenset(
    (route.method, route.path) for route in ROUTES if not route.fields_in_query
)
_BEARER: Final = web.RequestKey("bearer", str)


def _is_one_hop(request: web.Request) -> bool:
    route = request.match_info.route
    resource = route.resource
    if resource is None:
        return False
    key = (route.method, resource.canonical)
    return key in _ONE_HOP or (key in _BODY_ROUTES and not request.body_exists)


class _Refused(NamedTuple):
    """The token was refused (``backend.authenticate`` raised ``error``)."""

    error: Exception


def _authenticate_and_serve(
    backend: Backend, token: str, command: fc.Command | InvalidArgumentError
) -> tuple[Caller, fc.Command, Served] | _Refused:
    # Runs in the thread pool: authenticate (as ``auth_middleware`` does), then serve; a
    # request that did not parse is refused after its token, so a 401 still precedes a 400.
    try:
        principal = backend.authenticate(token)
    except Exception as exc:  # expired, unknown, shut down...: each has its problem
        return _Refused(exc)
    if isinstance(command, InvalidArgumentError):
        raise command
    served = serve_command(backend, token, command, principal=principal)
    return Caller(token, principal), command, served


@web.middleware
async def auth_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Authenticate ``Authorization: Bearer`` on every non-public request.

    The WebSocket endpoint may also be opened without credentials (then its first frame logs
    in); a present but invalid header is refused before the upgrade. On bodiless command
    routes (``_ONE_HOP``) only the header is checked here; the handler authenticates the token
    before anything else.
    """
    if (request.method, request.path) in _PUBLIC:
        return await handler(request)
    header = request.headers.get("Authorization", "")
    if not header:
        if request.path == WS_PATH:
            return await handler(request)
        return exception_response(AuthenticationError("missing bearer token"))
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return exception_response(AuthenticationError("expected 'Authorization: Bearer <token>'"))
    if _is_one_hop(request):
        request[_BEARER] = token  # the handler authenticates it (see ``_ONE_HOP``)
        return await handler(request)
    try:
        principal = await run_sync(request.app, request.app[BACKEND].authenticate, token)
    except Exception as exc:  # expired, unknown, shut down...: each has its problem
        return exception_response(exc)
    request[CALLER] = Caller(token, principal)
    return await handler(request)


# --- handlers ----------------------------------------------------------------------------------


async def _read_json(request: web.Request) -> bytes | None:
    if not request.body_exists:
        return None
    content_type = request.content_type
    if content_type not in (_JSON, "application/octet-stream") and request.headers.get(
        "Content-Type"
    ):
        raise web.HTTPUnsupportedMediaType(reason=f"expected {_JSON}, got {content_type}")
    return await request.read()  # bounded by client_max_size (413 beyond)


async def login_handler(request: web.Request) -> web.StreamResponse:
    """``POST /v1/sessions``: log in and return the grant (201)."""
    body = await _read_json(request)
    try:
        login = msgspec.convert(decode_json(body or b"", "login request"), LoginRequest)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise InvalidArgumentError(f"malformed login request: {exc}") from None
    backend = request.app[BACKEND]
    try:
        grant = await run_sync(request.app, backend.login, login.user, login.api_key, login.study)
    except Exception as exc:  # domain errors carry their meaning; others become opaque
        return exception_response(exc)
    return web.Response(status=201, body=_encode(grant), content_type=_JSON)


def _openapi_handler() -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The handler of ``GET /v1/openapi.json``: the generated OpenAPI document.

    The document depends only on the route table, yet generating it takes ~15 ms (on the
    event loop): each application builds and encodes it once, on its first request.
    """
    body: bytes | None = None

    async def openapi_handler(request: web.Request) -> web.StreamResponse:
        nonlocal body
        if body is None:
            body = _encode(build_openapi())
        # Bytes are immutable, so every response can share them.
        return web.Response(body=body, content_type=_JSON, charset="utf-8")

    return openapi_handler


def _command_handler(route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        if _BEARER in request:
            return await _one_hop(request, route)
        caller = caller_of(request)
        assert caller is not None  # the auth middleware guards every command route
        body = None if route.fields_in_query else await _read_json(request)
        command = request_to_command(
            route, request.match_info, request.query.items(), body, request.headers
        )
        app = request.app
        if route.transfer == "upload":
            return await _upload(request, caller, command)
        served = await run_sync(
            app,
            serve_command,
            app[BACKEND],
            caller.token,
            command,
            principal=caller.principal,
        )
        if served.open_download is not None:
            return await _download(request, command, served.open_download)
        return await send_reply(request, served.reply)

    handler.__name__ = f"handle_{route.op}"
    return handler


async def _one_hop(request: web.Request, route: Route) -> web.StreamResponse:
    app = request.app
    token = request[_BEARER]
    command: fc.Command | InvalidArgumentError
    try:
        command = request_to_command(
            route, request.match_info, request.query.items(), None, request.headers
        )
    except InvalidArgumentError as exc:
        command = exc
    else:
        try:
            quick = serve_at_once(app, token, command)
        except Exception as exc:  # unknown, logged out, shut down: each has its problem
            return exception_response(exc)
        if quick is not None:  # a quick read, served on the loop
            request[CALLER] = Caller(token, quick[0])
            return await send_reply(request, quick[1])
    outcome = await run_sync(app, _authenticate_and_serve, app[BACKEND], token, command)
    if isinstance(outcome, _Refused):
        return exception_response(outcome.error)
    caller, command, served = outcome
    request[CALLER] = caller
    if served.open_download is not None:
        return await _download(request, command, served.open_download)
    return await send_reply(request, served.reply)


async def _upload(request: web.Request, caller: Caller, command: fc.Command) -> web.StreamResponse:
    app = request.app
    settings = app[SETTINGS]
    content_type = request.headers.get("Content-Type")
    if content_type and request.content_type not in _ZIP_TYPES:
        raise web.HTTPUnsupportedMediaType(reason=f"expected application/zip, got {content_type}")
    length = request.content_length
    if length is not None and length > settings.max_upload_bytes:
        raise UploadTooLarge(
            f"invalid job definition: upload exceeds {settings.max_upload_bytes} bytes"
        )
    spool = await spool_stream(
        request.content.iter_chunked(settings.chunk_bytes),
        app[SPOOL_DIR],
        settings.max_upload_bytes,
        app[EXECUTOR],
    )
    # The middleware authenticated the caller before the body was read.
    _, reply = await upload_reply(app, lambda: caller.principal, command, spool)
    return reply_response(reply)


async def _download(
    request: web.Request, command: fc.Command, open_download: Callable[[], Iterator[bytes]]
) -> web.StreamResponse:
    app = request.app
    try:
        stream = await open_archive(app, open_download)
    except Exception as exc:
        return exception_response(exc)
    name = str(getattr(command, "job_id", "download"))
    response = web.StreamResponse(
        status=200,
        headers={
            "Content-Type": "application/zip",
            "Content-Disposition": f'attachment; filename="{name}.zip"',
        },
    )
    try:
        return await _stream_body(request, response, stream.next, f"download of {name}")
    finally:
        await stream.close()


# --- the application ------------------------------------------------------------------------


async def _close_websockets(app: web.Application) -> None:
    for ws in list(app[WEBSOCKETS].sockets):
        await ws.close(code=1001, message=b"server shutting down")


async def _stop_executor(app: web.Application) -> None:
    # Waiting for running backend calls blocks: do it off the loop (timers still fire).
    shutdown = functools.partial(app[EXECUTOR].shutdown, wait=True, cancel_futures=True)
    await asyncio.get_running_loop().run_in_executor(None, shutdown)


def build_app(
    backend: Backend,
    settings: ServerSettings | None = None,
    *,
    spool_dir: str | None = None,
) -> web.Application:
    """Build the aiohttp application serving ``backend``.

    Args:
        backend: the FL system (``AdminService`` or any ``flare_ports.Backend``).
        settings: limits and timings (defaults when None).
        spool_dir: where uploads are received (best on the blob store's file system);
            the system's temporary directory when None.

    Returns:
        The application; run it with ``aiohttp.web.AppRunner`` (the caller owns the backend's
        lifecycle; the app's cleanup stops only its own thread pool and WebSockets).
    """
    settings = settings or ServerSettings()
    app = web.Application(
        middlewares=[observe_middleware, problems_middleware, auth_middleware],
        client_max_size=settings.max_json_bytes,
    )
    app[BACKEND] = backend
    app[QUICK_READS] = QuickReads(backend)
    app[SETTINGS] = settings
    app[SPOOL_DIR] = spool_dir or tempfile.gettempdir()
    app[EXECUTOR] = ThreadPoolExecutor(
        max_workers=settings.worker_threads, thread_name_prefix="flare-server"
    )
    app[WEBSOCKETS] = OpenSockets()
    app.router.add_post(LOGIN_PATH, login_handler)
    app.router.add_get(OPENAPI_PATH, _openapi_handler())
    app.router.add_get(WS_PATH, websocket_handler)
    install_event_stream(app)
    install_observability(app)
    for route in ROUTES:
        app.router.add_route(route.method, route.path, _command_handler(route))
    app.on_shutdown.append(_close_websockets)
    app.on_cleanup.append(_stop_executor)
    return app
