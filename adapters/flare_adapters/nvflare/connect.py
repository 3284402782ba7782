"""``nvflare://`` sessions: ``connect("nvflare:///abs/path/to/admin-kit", user=...)``.

The URL's path is the user's admin startup kit. The factory keeps one ``NVFlareBackend`` per
(kit, user) for the life of the process, so a second ``connect`` reuses the NVFlare login of
the first (NVFlare takes about a second to log in), and opens ``Session``/``AsyncSession``
objects over a ``LocalTransport`` on it: the same flows as every other transport, on the real
clock, woken by the backend's job watcher.
"""

from __future__ import annotations

import atexit
import os
import threading
from typing import Any
from urllib.parse import unquote, urlsplit

from flare_adapters.inprocess import LocalTransport, session_options
from flare_adapters.nvflare.backend import NVFlareBackend, NVFlareConfig
from flare_adapters.nvflare.kits import KitUser
from flare_adapters.session import AsyncSession, Session
from flare_core.errors import AuthenticationError, InvalidArgumentError

__all__ = ["SCHEME", "NVFlareTransportFactory", "close_backends", "nvflare_transport"]

SCHEME = "nvflare"

_lock = threading.Lock()
_backends: dict[tuple[str, str], NVFlareBackend] = {}


def kit_of(url: str) -> str:
    """The absolute kit path an ``nvflare:///path`` URL names.

    Raises:
        InvalidArgumentError: not an ``nvflare://`` URL, a host part, or a relative path.
    """
    parts = urlsplit(url)
    if parts.scheme.lower() != SCHEME:
        raise InvalidArgumentError(f"not an nvflare URL: {url!r}")
    if parts.netloc:
        raise InvalidArgumentError(
            f"nvflare URLs name a local admin kit: nvflare:///abs/path (got host {parts.netloc!r})"
        )
    path = unquote(parts.path)
    if not os.path.isabs(path):
        raise InvalidArgumentError(f"the admin kit path must be absolute: {url!r}")
    return os.path.normpath(path)


def backend_for(kit: str, user: str) -> NVFlareBackend:
    """The process's backend for ``user`` acting through ``kit`` (created on first use).

    Raises:
        AuthenticationError: ``kit`` is not an admin startup kit (NVFlare knows an admin user
            only by a kit: without one there is no user to log in as).
    """
    key = (kit, user)
    with _lock:
        backend = _backends.get(key)
        if backend is None:
            account = KitUser(name=user, kit=kit)
            try:
                account.check()
            except InvalidArgumentError as exc:
                raise AuthenticationError(str(exc)) from None
            backend = NVFlareBackend(NVFlareConfig(users=(account,)))
            _backends[key] = backend
        return backend


@atexit.register
def close_backends() -> None:
    """Close every cached backend (their NVFlare sessions and scratch areas)."""
    with _lock:
        backends = list(_backends.values())
        _backends.clear()
    for backend in backends:
        backend.close()


class NVFlareTransportFactory:
    """The ``nvflare`` transport factory (``flare_core.transports.TransportFactory``)."""

    def connect(
        self, url: str, *, user: str, api_key: str | None, study: str, **options: Any
    ) -> Session:
        """Log ``user`` in to NVFlare through the kit the URL names; return a ``Session``.

        Options: ``upload_dir``, ``download_dir``, ``retry``, ``mint_token`` (see ``Session``).

        Raises:
            InvalidArgumentError: a malformed URL.
            AuthenticationError: no admin kit at the URL's path, or NVFlare refused the login
                (user, study or certificate).
            NoConnection: NVFlare could not be reached.
            TypeError: an unknown option.
        """
        settings = session_options(options, SCHEME)
        backend = backend_for(kit_of(url), user)
        return Session(LocalTransport(backend, user=user, study=study), **settings)

    async def connect_async(
        self, url: str, *, user: str, api_key: str | None, study: str, **options: Any
    ) -> AsyncSession:
        """Like ``connect``, returning an ``AsyncSession`` (the login runs off the loop)."""
        import asyncio

        settings = session_options(options, SCHEME)
        backend = backend_for(kit_of(url), user)
        transport = await asyncio.to_thread(LocalTransport, backend, user=user, study=study)
        return AsyncSession(transport, **settings)


nvflare_transport = NVFlareTransportFactory()
"""The entry-point object: ``nvflare = "flare_adapters.nvflare.connect:nvflare_transport"``."""
