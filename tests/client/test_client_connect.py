"""connect / connect_async: scheme registry, entry points, memory:// systems."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from flare_adapters.memory.registry import (
    register_memory_system,
    resolve_memory_system,
    unregister_memory_system,
)
from flare_adapters.memory.system import build_memory_service
from flare_adapters.session import AsyncSession, Session
from flare_core import AuthenticationError, InvalidArgumentError, NoConnection, transports
from flare_core.transports import (
    open_session as connect,
)
from flare_core.transports import (
    open_session_async as connect_async,
)
from flare_core.transports import (
    register_transport,
    registered_schemes,
    unregister_transport,
)

ADMIN = "admin@nvidia.com"


@pytest.fixture
def system_name() -> Iterator[str]:
    service, _, clock = build_memory_service()
    unregister = register_memory_system("connect-test", service, clock)
    yield "connect-test"
    unregister()


def test_connect_opens_a_session_on_a_named_system(system_name: str) -> None:
    with connect(f"memory://{system_name}", user=ADMIN, api_key=ADMIN) as session:
        assert isinstance(session, Session)
        assert session.list_jobs() == []
    assert "memory" in registered_schemes()


@pytest.mark.asyncio
async def test_connect_async_opens_an_async_session(system_name: str) -> None:
    session = await connect_async(f"memory://{system_name}/", user=ADMIN, api_key=ADMIN)
    assert isinstance(session, AsyncSession)
    async with session:
        assert (await session.get_system_info()).server_info.status == "started"


def test_session_options_are_passed_on(system_name: str, tmp_path: Any) -> None:
    session = connect(
        f"memory://{system_name}", user=ADMIN, api_key=ADMIN, upload_dir=str(tmp_path)
    )
    assert session.upload_dir == str(tmp_path)
    session.close()


def test_unknown_options_are_type_errors(system_name: str) -> None:
    with pytest.raises(TypeError, match="unsupported memory connect options"):
        connect(f"memory://{system_name}", user=ADMIN, api_key=ADMIN, colour="red")


def test_wrong_key_is_an_authentication_error(system_name: str) -> None:
    with pytest.raises(AuthenticationError):
        connect(f"memory://{system_name}", user=ADMIN, api_key="wrong")


def test_unknown_study_is_refused_at_login(system_name: str) -> None:
    with pytest.raises(AuthenticationError) as info:
        connect(f"memory://{system_name}", user=ADMIN, api_key=ADMIN, study="cancer")
    assert info.value.auth_code == "AUTH_STUDY_NOT_CONFIGURED"


def test_unknown_system_is_no_connection(system_name: str) -> None:
    with pytest.raises(NoConnection, match="no in-process system named 'nowhere'"):
        connect("memory://nowhere", user=ADMIN, api_key=ADMIN)


@pytest.mark.parametrize(
    ("url", "kwargs", "message"),
    [
        ("no-scheme", {}, "url must look like"),
        ("://x", {}, "url has no scheme"),
        ("gopher://x", {}, "no transport for URL scheme 'gopher'"),
        ("memory://x", {"user": ""}, "user must be a non-empty str"),
        ("memory://x", {"study": "Bad Study"}, "study"),
    ],
)
def test_local_argument_errors(
    system_name: str, url: str, kwargs: dict[str, Any], message: str
) -> None:
    arguments: dict[str, Any] = {"user": ADMIN, "api_key": ADMIN} | kwargs
    with pytest.raises(InvalidArgumentError, match=message):
        connect(url, **arguments)


def test_unregistered_systems_disappear(system_name: str) -> None:
    service, _, clock = build_memory_service()
    register_memory_system("short-lived", service, clock)
    assert resolve_memory_system("memory://short-lived") == (service, clock)
    unregister_memory_system("short-lived")
    with pytest.raises(NoConnection):
        resolve_memory_system("memory://short-lived")


def test_system_names_are_checked() -> None:
    service, _, clock = build_memory_service()
    with pytest.raises(InvalidArgumentError):
        register_memory_system("a/b", service, clock)
    with pytest.raises(InvalidArgumentError, match="not a memory URL"):
        resolve_memory_system("http://x")


class _Factory:
    """A transport factory that records what it was asked to open."""

    def __init__(self) -> None:
        self.opened: list[tuple[str, str, str | None, str, dict[str, Any]]] = []

    def connect(
        self, url: str, *, user: str, api_key: str | None, study: str, **options: Any
    ) -> str:
        self.opened.append((url, user, api_key, study, options))
        return "a session"

    async def connect_async(
        self, url: str, *, user: str, api_key: str | None, study: str, **options: Any
    ) -> str:
        return self.connect(url, user=user, api_key=api_key, study=study, **options)


class _Point:
    def __init__(self, factory: object) -> None:
        self.factory = factory
        self.loads = 0
        self.name = "lazy"

    def load(self) -> object:
        self.loads += 1
        return self.factory


def test_entry_points_are_loaded_lazily_per_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    factory = _Factory()
    point = _Point(factory)
    asked: list[tuple[str, str]] = []

    def fake_entry_points(*, group: str, name: str | None = None) -> list[_Point]:
        if name is None:  # listing the installed schemes for an error message: no load
            return [point]
        asked.append((group, name))
        return [point] if name == "lazy" else []

    monkeypatch.setattr(transports, "entry_points", fake_entry_points)
    unregister_transport("lazy")
    try:
        assert connect("lazy://a", user=ADMIN) == "a session"
        assert connect("LAZY://b", user=ADMIN, api_key="k", study="s1", x=1) == "a session"
        assert asked == [("flare_core.transports", "lazy")]
        assert point.loads == 1
        assert factory.opened == [
            ("lazy://a", ADMIN, None, "default", {}),
            ("LAZY://b", ADMIN, "k", "s1", {"x": 1}),
        ]
        with pytest.raises(InvalidArgumentError, match="no transport"):
            connect("other://x", user=ADMIN)
    finally:
        unregister_transport("lazy")


@pytest.mark.asyncio
async def test_explicit_registrations_win_over_entry_points(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_entry_points(*, group: str, name: str) -> list[_Point]:
        raise AssertionError("entry points must not be consulted")

    monkeypatch.setattr(transports, "entry_points", no_entry_points)
    factory = _Factory()
    register_transport("Mine", factory)
    try:
        assert connect("mine://x", user=ADMIN) == "a session"
        assert await connect_async("mine://y", user=ADMIN) == "a session"
        assert [opened[0] for opened in factory.opened] == ["mine://x", "mine://y"]
    finally:
        unregister_transport("mine")
    with pytest.raises(InvalidArgumentError):
        register_transport("", factory)


def test_an_unknown_scheme_names_the_installed_ones_before_any_is_loaded() -> None:
    # The installed entry points count as known even when no connect has loaded them yet.
    with pytest.raises(InvalidArgumentError) as info:
        connect("gopher://x", user=ADMIN)
    known = str(info.value).split("known: ", 1)[1].rstrip(")").split(", ")
    assert {"http", "https", "memory", "ws", "wss"} <= set(known)
