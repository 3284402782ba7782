"""``flare_ports.connect`` / ``connect_async`` over the network schemes."""

from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

from flare_adapters.http.client import http_transport
from flare_adapters.network import NetworkTransportFactory
from flare_adapters.session import AsyncSession, Session
from flare_adapters.ws.client import ws_transport
from flare_core.errors import AuthenticationError, InvalidArgumentError
from flare_core.transports import (
    ENTRY_POINT_GROUP,
    register_transport,
    unregister_transport,
)
from flare_ports import connect, connect_async
from tests.transports.conftest import FAST_RETRY
from tests.transports.servers import ADMIN, VirtualServer

FACTORIES: dict[str, NetworkTransportFactory[Any]] = {
    "http": http_transport,
    "https": http_transport,
    "ws": ws_transport,
    "wss": ws_transport,
}


@pytest.fixture(autouse=True)
def registered() -> Iterator[None]:
    """Register the network schemes as the entry points would."""
    for scheme, factory in FACTORIES.items():
        register_transport(scheme, factory)
    yield
    for scheme in FACTORIES:
        unregister_transport(scheme)


def test_the_factories_are_transport_factories() -> None:
    for factory in FACTORIES.values():
        assert isinstance(factory, NetworkTransportFactory)


def test_installed_entry_points_name_these_factories() -> None:
    for point in entry_points(group=ENTRY_POINT_GROUP):
        if point.name in FACTORIES:
            assert point.load() is FACTORIES[point.name]


@pytest.mark.parametrize("scheme", ["http", "ws"])
def test_connect_picks_the_transport_by_scheme(
    scheme: str, server: VirtualServer, tmp_path: Path
) -> None:
    with connect(
        server.url(scheme),
        user=ADMIN,
        api_key=ADMIN,
        download_dir=str(tmp_path),
        timeout=5.0,
        retry=FAST_RETRY,
    ) as session:
        assert isinstance(session, Session)
        assert session.download_dir == str(tmp_path)
        assert session.get_system_info().server_info.status == "started"


@pytest.mark.asyncio
@pytest.mark.parametrize("scheme", ["http", "ws"])
async def test_connect_async_picks_the_transport_by_scheme(
    scheme: str, server: VirtualServer
) -> None:
    session = await connect_async(server.url(scheme), user=ADMIN, api_key=ADMIN)
    assert isinstance(session, AsyncSession)
    async with session:
        assert (await session.report_version("server"))["server"]


@pytest.mark.parametrize("scheme", ["http", "ws"])
def test_connect_rejects_bad_credentials(scheme: str, server: VirtualServer) -> None:
    with pytest.raises(AuthenticationError):
        connect(server.url(scheme), user=ADMIN, api_key="not-the-key")


def test_connect_validates_the_study_before_connecting() -> None:
    with pytest.raises(InvalidArgumentError):
        connect("http://127.0.0.1:9", user=ADMIN, api_key=ADMIN, study="bad study!")


def test_unknown_options_are_type_errors(server: VirtualServer) -> None:
    with pytest.raises(TypeError, match="encoding"):
        connect(server.http_url, user=ADMIN, api_key=ADMIN, encoding="json")
