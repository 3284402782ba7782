"""Pull a backend's download archive chunk by chunk in the thread pool (HTTP and WebSocket)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator

from aiohttp import web

from flare_adapters.server.context import run_sync

__all__ = ["ArchiveStream", "open_archive"]


def _next(chunks: Iterator[bytes]) -> bytes | None:
    # Skip empty pieces: an empty chunk must never look like the end of the stream.
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
        """The next non-empty chunk, or None at the end."""
        self._pending = asyncio.ensure_future(run_sync(self._app, _next, self._chunks))
        return await asyncio.shield(self._pending)

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
