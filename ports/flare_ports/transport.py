"""The transport ports: the lowest seam under a session driver.

A transport moves one ``Command`` to a backend and brings back its ``Reply``; it also owns the
time base the session waits on (``monotonic`` and ``sleep``), because only the transport
knows where time and job events come from: the memory transport advances a virtual clock
and wakes on the backend's job events, a WebSocket transport sleeps in real time and wakes on
pushed events, an HTTP transport simply sleeps.

Contract shared by every implementation:

- Domain failures come back as a ``Problem`` reply, never as an exception.
- Failing to reach the backend (connection refused, reset, timed out, lost reply) raises
  ``NoConnection``; each adapter translates its foreign errors in exactly one place.
- An expired or unknown session comes back as a ``Problem`` (``session_expired`` /
  ``not_authenticated``); the driver decides what that means for the session.

``Transport`` is the synchronous port and ``AsyncTransport`` the asynchronous one. Their
method names differ (``call`` / ``acall`` ...) so that one object, like the memory transport,
can serve both.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Iterable
from typing import Protocol, runtime_checkable

from flare_core import Command, Reply

__all__ = ["AsyncTransport", "ChunkSink", "Transport"]

ChunkSink = Callable[[bytes], object]
"""Receives a downloaded archive chunk by chunk, in order (e.g. a file's ``write``); its
result is ignored."""


@runtime_checkable
class Transport(Protocol):
    """The synchronous transport port used by ``Session``."""

    def call(self, command: Command, timeout: float | None) -> Reply:
        """Send ``command`` and return the backend's reply.

        Args:
            command: the command to run.
            timeout: seconds to wait for the reply; None uses the transport's default.

        Returns:
            ``Ok`` or ``Problem``.

        Raises:
            NoConnection: the backend could not be reached or the reply was lost.
        """
        ...

    def upload(self, command: Command, chunks: Iterable[bytes], timeout: float | None) -> Reply:
        """Send ``command`` together with a streamed archive (``command.transfer == "upload"``).

        Args:
            command: the command to run.
            chunks: the zip archive's bytes, consumed once, in order.
            timeout: seconds to wait for the reply; None uses the transport's default.

        Returns:
            ``Ok`` or ``Problem``.

        Raises:
            NoConnection: the backend could not be reached or the reply was lost.
        """
        ...

    def download(self, command: Command, sink: ChunkSink, timeout: float | None) -> Reply:
        """Send a download command and stream the archive it produces into ``sink``.

        ``sink`` is called only after the backend accepted the command; when the reply is a
        ``Problem`` it is never called.

        Args:
            command: a command with ``transfer == "download"``.
            sink: receives the archive's bytes in order.
            timeout: seconds to wait for the reply; None uses the transport's default.

        Returns:
            ``Ok`` once the whole archive went into ``sink``, or the backend's ``Problem``.

        Raises:
            NoConnection: the backend could not be reached, or the stream broke off.
        """
        ...

    def monotonic(self) -> float:
        """Return the current time, in seconds, on the clock ``sleep`` runs on."""
        ...

    def sleep(self, seconds: float, wake_on: str | None) -> bool:
        """Wait ``seconds`` on this transport's clock.

        Args:
            seconds: how long to wait (>= 0).
            wake_on: a job id; when the transport learns that this job changed status, it
                may return early. Transports without an event source just sleep.

        Returns:
            True when woken early by a job event, False when the full time passed.
        """
        ...

    def close(self) -> None:
        """Release the transport's resources (idempotent). Does not log out."""
        ...


@runtime_checkable
class AsyncTransport(Protocol):
    """The asynchronous transport port used by ``AsyncSession`` (same contract as
    ``Transport``, method by method)."""

    async def acall(self, command: Command, timeout: float | None) -> Reply:
        """Send ``command`` and return the backend's reply (see ``Transport.call``).

        Raises:
            NoConnection: the backend could not be reached or the reply was lost.
        """
        ...

    async def aupload(
        self, command: Command, chunks: AsyncIterable[bytes], timeout: float | None
    ) -> Reply:
        """Send ``command`` with a streamed archive (see ``Transport.upload``).

        Raises:
            NoConnection: the backend could not be reached or the reply was lost.
        """
        ...

    async def adownload(self, command: Command, sink: ChunkSink, timeout: float | None) -> Reply:
        """Stream a download command's archive into ``sink`` (see ``Transport.download``).

        Raises:
            NoConnection: the backend could not be reached, or the stream broke off.
        """
        ...

    def monotonic(self) -> float:
        """Return the current time, in seconds, on the clock ``asleep`` runs on."""
        ...

    async def asleep(self, seconds: float, wake_on: str | None) -> bool:
        """Wait ``seconds``, returning True when woken early by a job event on ``wake_on``."""
        ...

    async def aclose(self) -> None:
        """Release the transport's resources (idempotent). Does not log out."""
        ...
