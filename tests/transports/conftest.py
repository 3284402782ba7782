"""Fixtures of the transport tests: servers, a proxy, and the four ways to open a session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from flare_adapters.http.client import http_transport
from flare_adapters.session import AsyncSession, Session
from flare_adapters.ws.client import ws_transport
from flare_core.flows import RetryPolicy
from tests.transports.proxy import LoopbackProxy
from tests.transports.servers import ADMIN, VirtualServer, virtual_server

SCHEMES = ("http", "ws")
FAST_RETRY = RetryPolicy(attempts=3, initial_delay=0.01, max_delay=0.05, deadline=5.0)
"""Retries with short waits: the tests stay fast while the retry paths still run."""


def factory(scheme: str) -> Any:
    """The transport factory of ``scheme``."""
    return http_transport if scheme == "http" else ws_transport


@pytest.fixture(scope="module")
def server() -> Iterator[VirtualServer]:
    """One virtual-clock server per test module."""
    with virtual_server() as running:
        yield running


@pytest.fixture
def proxy(server: VirtualServer) -> Iterator[LoopbackProxy]:
    """A fault-injecting proxy in front of the module's server."""
    running = LoopbackProxy(server.port)
    try:
        yield running
    finally:
        running.close()


@pytest.fixture(params=SCHEMES)
def scheme(request: pytest.FixtureRequest) -> str:
    """``http`` or ``ws``."""
    return str(request.param)


@pytest.fixture
def open_session(scheme: str, server: VirtualServer, tmp_path: Path) -> Iterator[Any]:
    """Open sync sessions of this test's scheme (closed afterwards)."""
    opened: list[Session] = []

    def open_(url: str | None = None, user: str = ADMIN, **options: Any) -> Session:
        options.setdefault("retry", FAST_RETRY)
        options.setdefault("download_dir", str(tmp_path / "downloads"))
        session: Session = factory(scheme).connect(
            url or server.url(scheme), user=user, api_key=user, study="default", **options
        )
        opened.append(session)
        return session

    yield open_
    for session in opened:
        session.close()


@pytest_asyncio.fixture
async def open_async_session(
    scheme: str, server: VirtualServer, tmp_path: Path
) -> AsyncIterator[Any]:
    """Open async sessions of this test's scheme (closed afterwards)."""
    opened: list[AsyncSession] = []

    async def open_(url: str | None = None, user: str = ADMIN, **options: Any) -> AsyncSession:
        options.setdefault("retry", FAST_RETRY)
        options.setdefault("download_dir", str(tmp_path / "downloads"))
        session: AsyncSession = await factory(scheme).connect_async(
            url or server.url(scheme), user=user, api_key=user, study="default", **options
        )
        opened.append(session)
        return session

    yield open_
    for session in opened:
        await session.aclose()
