"""The backend port: what a transport or the server calls to reach an FL system."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Protocol, runtime_checkable

from flare_core import Command, Gauges, Grant, JobEvent, Principal, Reply

__all__ = ["Backend", "ReportsGauges", "ServesAtOnce", "Unsubscribe"]

Unsubscribe = Callable[[], None]


class Backend(Protocol):
    """An FL system behind one admin endpoint (``AdminService``, or a proxy to real NVFlare).

    Every method is synchronous and thread-safe; async hosts run it in an executor.
    """

    def login(self, user: str, api_key: str | None, study: str) -> Grant:
        """Authenticate ``user`` and bind a new session to ``study``.

        Raises:
            AuthenticationError: bad credentials or study (``auth_code`` says which).
        """
        ...

    def authenticate(self, token: str) -> Principal:
        """Resolve a bearer token to its principal and refresh the session's idle timer.

        Raises:
            SessionExpired: the session idled out.
            AuthenticationError: the token is unknown or was logged out.
        """
        ...

    def logout(self, token: str) -> None:
        """End the session (idempotent)."""
        ...

    def handle(
        self, principal: Principal, command: Command, upload: Iterable[bytes] | None = None
    ) -> Reply:
        """Run one command for ``principal``; never raises for domain failures.

        ``upload`` is the zip byte stream of commands whose ``transfer == "upload"``.
        A successful download command answers ``Ok({"download_id": ...})``; stream the archive
        with ``open_download``.
        """
        ...

    def open_download(self, principal: Principal, download_id: str) -> Iterator[bytes]:
        """Stream the zip archive prepared by a download command (single use).

        Raises:
            JobNotFound: unknown or already consumed download id.
        """
        ...

    def subscribe(self, listener: Callable[[JobEvent], None]) -> Unsubscribe:
        """Call ``listener`` (from any thread) on every job status change."""
        ...


@runtime_checkable
class ReportsGauges(Protocol):
    """A backend that can count its sessions and jobs for ``/v1/metrics`` (optional)."""

    def gauges(self) -> Gauges:
        """The counts now; thread-safe, and cheap enough for every scrape."""
        ...


@runtime_checkable
class ServesAtOnce(Protocol):
    """A backend that can serve a quick read on the caller's thread (optional).

    The server asks it first, on its event loop, and hands the command to its thread pool
    only when it declines. A backend that must wait for anything (a proxy to a real NVFlare
    federation) does not implement it.
    """

    def serve_at_once(self, token: str, command: Command) -> tuple[Principal, Reply] | None:
        """Authenticate ``token`` and serve ``command`` without waiting, or decline.

        Returns:
            The session's principal and the reply, or None: serve it the usual way.

        Raises:
            AuthenticationError: the token is unknown or was logged out.
            SessionClosed: the session ended (a backend may instead decline, and let
                ``authenticate`` end it).
            NoConnection: the system was shut down.
        """
        ...
