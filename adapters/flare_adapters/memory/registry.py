"""In-process systems by name, so ``connect("memory://<name>", ...)`` can reach them.

A memory system (a ``Backend`` and the virtual clock it runs on, e.g. a ``FakeFlare``)
registers itself under a name; the ``memory`` transport factory - the
``flare_core.transports`` entry point ``memory`` - resolves ``memory://<name>`` URLs to it
and opens ``Session`` / ``AsyncSession`` objects over a fresh ``MemoryTransport``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from flare_adapters.inprocess import session_options
from flare_adapters.memory.transport import MemoryTransport, SteppingClock
from flare_adapters.session import AsyncSession, Session
from flare_core.errors import InvalidArgumentError, NoConnection
from flare_core.transports import register_transport
from flare_ports.backend import Backend

__all__ = [
    "SCHEME",
    "MemoryTransportFactory",
    "memory_transport",
    "register_memory_system",
    "resolve_memory_system",
    "unregister_memory_system",
]

SCHEME = "memory"

_lock = threading.Lock()
_systems: dict[str, tuple[Backend, SteppingClock]] = {}


def register_memory_system(name: str, backend: Backend, clock: SteppingClock) -> Callable[[], None]:
    """Make ``memory://<name>`` reach ``backend`` (replacing an earlier system of that name).

    Also registers the ``memory`` scheme with ``flare_ports.connect``, so no installed entry
    point is needed.

    Returns:
        A function that unregisters this system (harmless once replaced).

    Raises:
        InvalidArgumentError: ``name`` is empty or contains ``/``.
    """
    if not isinstance(name, str) or not name or "/" in name:
        raise InvalidArgumentError("memory system name must be a non-empty str without '/'")
    entry = (backend, clock)
    with _lock:
        _systems[name] = entry
    register_transport(SCHEME, memory_transport)

    def unregister() -> None:
        with _lock:
            if _systems.get(name) is entry:
                del _systems[name]

    return unregister


def unregister_memory_system(name: str) -> None:
    """Forget the system registered as ``name`` (no error when there is none)."""
    with _lock:
        _systems.pop(name, None)


def resolve_memory_system(url: str) -> tuple[Backend, SteppingClock]:
    """Return the backend and clock ``memory://<name>`` names.

    Raises:
        InvalidArgumentError: not a ``memory://`` URL.
        NoConnection: no system of that name is registered.
    """
    prefix = SCHEME + "://"
    if not url.lower().startswith(prefix):
        raise InvalidArgumentError(f"not a memory URL: {url!r}")
    name = url[len(prefix) :].strip("/")
    with _lock:
        entry = _systems.get(name)
    if entry is None:
        raise NoConnection(f"cannot connect to server: no in-process system named {name!r}")
    return entry


class MemoryTransportFactory:
    """The ``memory`` transport factory (``flare_core.transports.TransportFactory``)."""

    def connect(
        self, url: str, *, user: str, api_key: str | None, study: str, **options: Any
    ) -> Session:
        """Log in to the named in-process system and return a ``Session``.

        Options: ``upload_dir``, ``download_dir``, ``retry``, ``mint_token`` (see ``Session``).

        Raises:
            NoConnection: no system of that name.
            AuthenticationError: the login was rejected.
            TypeError: an unknown option.
        """
        settings = session_options(options, SCHEME)
        backend, clock = resolve_memory_system(url)
        transport = MemoryTransport(backend, clock, user=user, api_key=api_key, study=study)
        return Session(transport, **settings)

    async def connect_async(
        self, url: str, *, user: str, api_key: str | None, study: str, **options: Any
    ) -> AsyncSession:
        """Like ``connect``, returning an ``AsyncSession``."""
        settings = session_options(options, SCHEME)
        backend, clock = resolve_memory_system(url)
        transport = MemoryTransport(backend, clock, user=user, api_key=api_key, study=study)
        return AsyncSession(transport, **settings)


memory_transport = MemoryTransportFactory()
"""The entry-point object: ``memory = "flare_adapters.memory.registry:memory_transport"``."""
