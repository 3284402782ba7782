"""Pull a backend's download archive chunk by chunk in the thread pool (HTTP and WebSocket)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator

from aiohttp import web

from flare_adapters.server.context import run_sync

__all__ = ["ArchiveStream", "open_archive"]


def _next(chunks: Iterator[bytes]) -> bytes | None:
    # Skip empty pieces: an empty chunk must never look like the end of the stream. Pieces are
    # passed on as they come, never held back to fill a larger one: a slow backend (a gateway
    # relaying NVFlare) must not starve the client's idle deadline.
    for chunk in chunks:
        if chunk:
            return chunk
    return None


class ArchiveStream:
    """An open download: ``await next()`` until it returns None, then ``await close()``.

    A pull runs in a worker thread and cannot be interrupted: when the awaiting task is
    cancelled, the pull still finishes, and ``close`` waits for it (a generator cannot be
    closed while another thread is running it).
    """

    def __init__(self, app: web.Application, chunks: Iterator[bytes]) -> None:
        self._app = app
        self._chunks = chunks
        self._pending: asyncio.Future[bytes | None] | None = None

    async def next(self) -> bytes | None:
        """The next non-empty chunk, or None at the end.

        The pull after it starts at once, so reading the archive overlaps sending this chunk
        (one chunk read ahead, never more).
        """
        if self._pending is None:
            self._pending = self._pull()
        chunk = await asyncio.shield(self._pending)
        self._pending = self._pull() if chunk is not None else None
        return chunk

    def _pull(self) -> asyncio.Future[bytes | None]:
        return asyncio.ensure_future(run_sync(self._app, _next, self._chunks))

    async def close(self) -> None:
        """Release the backend's iterator (idempotent)."""
        if self._pending is not None:
            with contextlib.suppress(Exception):
                await self._pending  # let a pull that is still running finish first
            self._pending = None
        close = getattr(self._chunks, "close", None)
        if callable(close):
            await run_sync(self._app, close)


async def open_archive(
    app: web.Application, open_download: Callable[[], Iterator[bytes]]
) -> ArchiveStream:
    """Open the archive a successful download command prepared (``Served.open_download``,
    run in the thread pool).

    Raises:
        JobNotFound: unknown or already consumed download id.
        InternalError: the reply carries no download id.
    """
    chunks = await run_sync(app, open_download)
    return ArchiveStream(app, chunks)
