"""``connect``/``connect_async``: the one door to a session, typed with the port types.

The core's URL-scheme registry (``flare_core.transports``) cannot name ``SessionSpec`` (the
core imports no port), so its ``open_session`` is typed ``Any`` and not exported; these call
it and check the result.
"""

from __future__ import annotations

from typing import Any

from flare_core import InternalError
from flare_core.transports import open_session, open_session_async
from flare_ports.session_spec import AsyncSessionSpec, SessionSpec

__all__ = ["connect", "connect_async"]


def connect(
    url: str, *, user: str, api_key: str | None = None, study: str = "default", **options: Any
) -> SessionSpec:
    """Open a logged-in session on ``url`` (``memory://``, ``http(s)://``, ``ws(s)://``).

    Args:
        url: where the system is; the scheme picks the transport.
        user: the user name to log in as.
        api_key: the user's secret API key (None for systems that need none, e.g. FakeFlare).
        study: the study to bind the session to for its whole life.
        **options: transport options (timeouts, retry policy, TLS context, download_dir, ...).

    Returns:
        A ``SessionSpec``; close it (or use it as a context manager) when done.

    Raises:
        InvalidArgumentError: bad URL, unknown scheme or bad study name.
        NoConnection: the system could not be reached.
        AuthenticationError: the login was rejected (``auth_code`` says why).
    """
    session = open_session(url, user=user, api_key=api_key, study=study, **options)
    if not isinstance(session, SessionSpec):
        raise InternalError(f"transport for {url!r} returned {type(session).__name__}")
    return session


async def connect_async(
    url: str, *, user: str, api_key: str | None = None, study: str = "default", **options: Any
) -> AsyncSessionSpec:
    """Open a logged-in ``AsyncSessionSpec`` on ``url``; see ``connect`` for the arguments."""
    session = await open_session_async(url, user=user, api_key=api_key, study=study, **options)
    if not isinstance(session, AsyncSessionSpec):
        raise InternalError(f"transport for {url!r} returned {type(session).__name__}")
    return session
