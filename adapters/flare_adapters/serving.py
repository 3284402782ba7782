"""The server side of one command, the same for every host of a ``Backend``.

The HTTP routes, the WebSocket connection (``flare_adapters.server``) and the in-process
transports (``flare_adapters.inprocess``) each receive a command in their own way, then do the
same thing with it: end the session on ``logout``, authenticate the token (unless the host
already did), hand the command to ``Backend.handle`` and, when a download was prepared, open
its archive. ``serve_command`` is that routine; it is blocking (the server runs it in its
thread pool) and knows nothing of sockets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

from flare_core.commands import Command, Logout
from flare_core.errors import InternalError
from flare_core.principal import Principal
from flare_core.replies import Ok, Reply
from flare_ports.backend import Backend

__all__ = ["Served", "download_id_of", "serve_command"]


class Served(NamedTuple):
    """What ``serve_command`` produced.

    Attributes:
        reply: the backend's reply (``Ok(None)`` for a logout).
        open_download: for a download command the backend accepted, opens the archive it
            prepared (blocking; single use). Left to the host because each one reports a
            failure to open in its own way (HTTP answers it as a problem document, the
            in-process transports as a ``Problem`` reply).
    """

    reply: Reply
    open_download: Callable[[], Iterator[bytes]] | None = None


def download_id_of(reply: Ok) -> str:
    """The download id a download command's ``Ok`` carries.

    Raises:
        InternalError: the backend answered something else.
    """
    value = reply.value
    if isinstance(value, dict) and isinstance(value.get("download_id"), str):
        return str(value["download_id"])
    raise InternalError("server internal error: download not prepared")


def serve_command(
    backend: Backend,
    token: str,
    command: Command,
    upload: Iterable[bytes] | None = None,
    principal: Principal | None = None,
) -> Served:
    """Run ``command`` for the session ``token`` names, as every host does.

    A logout is not authenticated first: ending a session that already expired succeeds.

    Args:
        backend: the system serving the command.
        token: the session's bearer token.
        command: the decoded command.
        upload: the archive of an upload command.
        principal: the session's principal when the host authenticated the token already
            (HTTP's middleware, the WebSocket's per-request check); None: authenticate here.

    Returns:
        The reply, and the archive opener of a successful download.

    Raises:
        AuthenticationError: ``token`` is unknown or was logged out.
        SessionExpired: the session idled out.
    """
    if isinstance(command, Logout):
        backend.logout(token)
        return Served(Ok(value=None))
    if principal is None:
        principal = backend.authenticate(token)
    reply = backend.handle(principal, command, upload)
    if command.transfer != "download" or not isinstance(reply, Ok):
        return Served(reply)
    owner, prepared = principal, reply
    return Served(reply, lambda: backend.open_download(owner, download_id_of(prepared)))
