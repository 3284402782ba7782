"""Servers for the transport tests: the real aiohttp application on an ephemeral loopback port.

``virtual_server()`` serves an in-memory system on a ``VirtualClock`` through the production
application (``build_app``): time moves only when a test advances it, so expiry and job
progress are deterministic. ``flare_testing.serve()`` (the real SQLite-backed server on a
real clock) is used where the whole stack matters.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Awaitable, Callable, Iterator

from aiohttp import web

from flare_adapters.loop_thread import LoopThread
from flare_adapters.memory.system import MemorySystem, build_memory_system
from flare_adapters.server.app import build_app
from flare_adapters.server.settings import ServerSettings

__all__ = ["ADMIN", "GRANT", "Handler", "StubHttpServer", "VirtualServer", "virtual_server"]

ADMIN = "admin@nvidia.com"
"""The memory system's project admin; every memory user's API key is its name."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
"""An aiohttp request handler."""

GRANT = (
    b'{"token":"t","idle_timeout":60.0,"principal":{"name":"u","org":"o","role":"project_admin"}}'
)


class StubHttpServer:
    """An aiohttp server that grants every login and answers every command route with
    ``handler`` (for client-side tests: no backend behind it)."""

    def __init__(self, handler: Handler) -> None:
        async def login(request: web.Request) -> web.StreamResponse:
            return web.Response(status=201, body=GRANT, content_type="application/json")

        app = web.Application()
        app.router.add_post("/v1/sessions", login)
        app.router.add_route("*", "/v1/{tail:.*}", handler)
        self.runner = web.AppRunner(app, access_log=None)
        self.loop = LoopThread("stub-http")
        self.port = self.loop.run(self._start())

    async def _start(self) -> int:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        return int(self.runner.addresses[0][1])

    def close(self) -> None:
        self.loop.run(self.runner.cleanup())
        self.loop.close()


class VirtualServer:
    """A running server over a memory system.

    Attributes:
        system: the memory system (``clock.advance`` moves time; ``engine`` steers jobs).
        port: the bound port.
    """

    def __init__(self, system: MemorySystem, port: int, tls: bool = False) -> None:
        self.system = system
        self.port = port
        self._secure = "s" if tls else ""

    @property
    def http_url(self) -> str:
        """``http(s)://127.0.0.1:PORT``."""
        return f"http{self._secure}://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        """``ws(s)://127.0.0.1:PORT`` (the transport appends ``/v1/ws``)."""
        return f"ws{self._secure}://127.0.0.1:{self.port}"

    def url(self, scheme: str) -> str:
        """The base URL for ``http`` or ``ws``."""
        return self.http_url if scheme == "http" else self.ws_url

    def advance(self, seconds: float) -> None:
        """Move the system's virtual clock forward."""
        self.system.clock.advance(seconds)


@contextlib.contextmanager
def virtual_server(
    *,
    idle_timeout: float = 1800.0,
    settings: ServerSettings | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> Iterator[VirtualServer]:
    """Serve a fresh memory system (dispatching at once) until the block exits (over TLS
    with ``ssl_context``)."""
    system = build_memory_system(dispatch_delay=0.0, idle_timeout=idle_timeout)
    loop = LoopThread("virtual-server")
    runner = web.AppRunner(build_app(system.service, settings), access_log=None)

    async def start() -> int:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
        await site.start()
        return int(runner.addresses[0][1])

    try:
        port = loop.run(start())
        yield VirtualServer(system, port, tls=ssl_context is not None)
    finally:
        loop.run(runner.cleanup())
        loop.close()
