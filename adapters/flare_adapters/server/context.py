"""What the server's handlers share: the application's state keys, the caller, the pool, and
the quick reads served on the loop."""

from __future__ import annotations

import asyncio
import functools
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Final, ParamSpec, TypeVar

import msgspec
from aiohttp import web

import flare_core as fc
from flare_adapters.server.settings import ServerSettings
from flare_ports import Backend, ServesAtOnce

__all__ = [
    "BACKEND",
    "CALLER",
    "EXECUTOR",
    "QUICK_READS",
    "SETTINGS",
    "SPOOL_DIR",
    "WEBSOCKETS",
    "Caller",
    "OpenSockets",
    "QuickReads",
    "caller_of",
    "run_sync",
    "serve_at_once",
]

P = ParamSpec("P")
T = TypeVar("T")

BACKEND: Final = web.AppKey("backend", Backend)
SETTINGS: Final = web.AppKey("settings", ServerSettings)
EXECUTOR: Final = web.AppKey("executor", ThreadPoolExecutor)
SPOOL_DIR: Final = web.AppKey("spool_dir", str)


class OpenSockets:
    """The application's open WebSockets (closed with 1001 when the server shuts down)."""

    def __init__(self) -> None:
        self.sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()


WEBSOCKETS: Final = web.AppKey("websockets", OpenSockets)


class QuickReads:
    """The backend's ``serve_at_once``, when it has one (``flare_ports.ServesAtOnce``): looked
    up once per application, since a protocol check costs microseconds on every request."""

    def __init__(self, backend: Backend) -> None:
        self.serve = backend.serve_at_once if isinstance(backend, ServesAtOnce) else None


QUICK_READS: Final = web.AppKey("quick_reads", QuickReads)


class Caller(msgspec.Struct, frozen=True):
    """An authenticated caller: its bearer token and principal."""

    token: str
    principal: fc.Principal


CALLER: Final = web.RequestKey("caller", Caller)


def caller_of(request: web.Request) -> Caller | None:
    """The authenticated caller the auth middleware attached, if any."""
    return request.get(CALLER)


async def run_sync(
    app: web.Application, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """Run a blocking call (a backend method, file I/O) in the app's thread pool."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(app[EXECUTOR], functools.partial(func, *args, **kwargs))


def serve_at_once(
    app: web.Application, token: str, command: fc.Command
) -> tuple[fc.Principal, fc.Reply] | None:
    """Serve a quick read on the event loop, skipping the thread pool's two wake-ups
    (``AdminService.serve_at_once``); None when the backend declines or cannot.

    Raises:
        AuthenticationError: the token is unknown or was logged out.
        NoConnection: the server was shut down.
    """
    serve = app[QUICK_READS].serve
    return None if serve is None else serve(token, command)
