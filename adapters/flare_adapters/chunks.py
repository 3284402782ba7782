"""The one bridge from a sync chunk iterator (a zip being written) to an event loop.

Zipping reads files, so each chunk is produced in a worker thread: the loop's reader,
pings and keepalives go on meanwhile. ``AsyncSession`` uploads through it, and so does
``ThreadedTransport`` (the sync flavour of a network transport).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterable, Iterator

__all__ = ["ChunkPull"]


class ChunkPull:
    """Feeds a sync chunk iterable to the loop, one worker-thread ``next`` per chunk.

    The iterator is never touched by two threads, so its owner may close it afterwards:

    - a reader cancelled mid-chunk waits for the worker before it gives up (``stream``);
    - a transport that abandons the stream without cancelling it (its writer task ended
      elsewhere) leaves a worker behind, which ``settle`` waits for.

    Args:
        chunks: the chunks, produced lazily (e.g. ``zip_folder``'s generator).
    """

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._iterator: Iterator[bytes] = iter(chunks)
        self._pending: asyncio.Future[bytes | None] | None = None

    async def stream(self) -> AsyncGenerator[bytes, None]:
        """The chunks, each read in a worker thread."""
        loop = asyncio.get_running_loop()
        while True:
            self._pending = loop.run_in_executor(None, next, self._iterator, None)
            try:
                chunk = await asyncio.shield(self._pending)
            except asyncio.CancelledError:
                # The worker may still be inside next(): let it finish, or closing the zip
                # generator afterwards would fail with "generator already executing".
                await self.settle()
                raise
            self._pending = None
            if chunk is None:
                return
            yield chunk

    async def settle(self) -> None:
        """Wait until no worker is inside the iterator (at once when none is)."""
        if self._pending is not None:
            await asyncio.wait([self._pending])
            self._pending = None
