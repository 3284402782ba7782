"""The URL-scheme registry of transports, and ``open_session``: a session from a URL.

Users call ``flare_ports.connect`` / ``connect_async``, the one typed door, which calls
``open_session`` here and checks the result against the port types.

The core picks a transport factory by URL scheme (``memory``, ``http``, ``ws``, ...) from a
registry that adapters fill, so it never imports an adapter: factories register themselves
with ``register_transport``, or are found through the ``flare_core.transports`` entry-point
group, loaded lazily (only the requested scheme, on the first connect that needs it).

A factory returns a ready session: a ``flare_ports.SessionSpec`` from ``connect`` and a
``flare_ports.AsyncSessionSpec`` from ``connect_async`` (typed ``Any`` here because the core
cannot name the port types; hence not exported by ``flare_core``).
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any, Protocol

from flare_core.errors import InvalidArgumentError
from flare_core.studies import check_session_study

__all__ = [
    "ENTRY_POINT_GROUP",
    "TransportFactory",
    "available_schemes",
    "open_session",
    "open_session_async",
    "register_transport",
    "registered_schemes",
    "unregister_transport",
]

ENTRY_POINT_GROUP = "flare_core.transports"
"""Entry points in this group are named after a URL scheme and point at a factory object."""


class TransportFactory(Protocol):
    """Opens sessions for the URLs of one or more schemes."""

    def connect(
        self, url: str, *, user: str, api_key: str | None, study: str, **options: Any
    ) -> Any:
        """Log in and return a ``SessionSpec``.

        Raises:
            NoConnection: the system could not be reached.
            AuthenticationError: the login was rejected.
            TypeError: an option the transport does not know.
        """
        ...

    def connect_async(
        self, url: str, *, user: str, api_key: str | None, study: str, **options: Any
    ) -> Any:
        """Return an awaitable resolving to a logged-in ``AsyncSessionSpec`` (same errors
        as ``connect``, raised when awaited)."""
        ...


_factories: dict[str, TransportFactory] = {}


def register_transport(scheme: str, factory: TransportFactory) -> None:
    """Serve URLs of ``scheme`` with ``factory`` (replacing any earlier registration).

    Raises:
        InvalidArgumentError: ``scheme`` is empty or not a str.
    """
    if not isinstance(scheme, str) or not scheme:
        raise InvalidArgumentError("scheme must be a non-empty str")
    _factories[scheme.lower()] = factory


def unregister_transport(scheme: str) -> None:
    """Forget the factory of ``scheme`` (no error when there is none)."""
    _factories.pop(scheme.lower(), None)


def registered_schemes() -> list[str]:
    """The schemes served right now (entry points not yet loaded are not listed)."""
    return sorted(_factories)


def available_schemes() -> list[str]:
    """Every scheme a URL may use: those registered plus those installed as entry points
    (not loaded: naming them costs no import)."""
    installed = {point.name.lower() for point in entry_points(group=ENTRY_POINT_GROUP)}
    return sorted(installed | set(_factories))


def _scheme(url: object) -> str:
    if not isinstance(url, str) or "://" not in url:
        raise InvalidArgumentError(f"url must look like '<scheme>://...', got {url!r}")
    scheme = url.split("://", 1)[0].lower()
    if not scheme:
        raise InvalidArgumentError(f"url has no scheme: {url!r}")
    return scheme


def _factory(scheme: str) -> TransportFactory:
    factory = _factories.get(scheme)
    if factory is None:
        for point in entry_points(group=ENTRY_POINT_GROUP, name=scheme):
            loaded = point.load()
            # Explicit registrations made meanwhile win over entry points.
            factory = _factories.setdefault(scheme, loaded)
            break
    if factory is None:
        raise InvalidArgumentError(
            f"no transport for URL scheme {scheme!r} (known: {', '.join(available_schemes())})"
        )
    return factory


def _check(user: object) -> str:
    if not isinstance(user, str) or not user:
        raise InvalidArgumentError("user must be a non-empty str")
    return user


def open_session(
    url: str, *, user: str, api_key: str | None = None, study: str = "default", **options: Any
) -> Any:
    """Log in to the system at ``url`` and return a ``flare_ports.SessionSpec``.

    Args:
        url: ``memory://<name>``, ``http(s)://host:port``, ``ws(s)://host:port``, ...
        user: the user name.
        api_key: the user's secret API key.
        study: the study to bind the session to (default ``"default"``).
        **options: transport and session options (e.g. ``upload_dir``, ``download_dir``).

    Returns:
        A logged-in session; close it (or use it as a context manager) when done.

    Raises:
        InvalidArgumentError: a malformed URL, user or study, or an unknown scheme.
        NoConnection: the system could not be reached.
        AuthenticationError: the login was rejected (``auth_code`` says why).
        TypeError: an unknown option.
    """
    factory = _factory(_scheme(url))
    name = _check(user)
    return factory.connect(
        url, user=name, api_key=api_key, study=check_session_study(study), **options
    )


async def open_session_async(
    url: str, *, user: str, api_key: str | None = None, study: str = "default", **options: Any
) -> Any:
    """Log in to the system at ``url`` and return a ``flare_ports.AsyncSessionSpec``.

    Same arguments and errors as ``open_session``.
    """
    factory = _factory(_scheme(url))
    name = _check(user)
    return await factory.connect_async(
        url, user=name, api_key=api_key, study=check_session_study(study), **options
    )
