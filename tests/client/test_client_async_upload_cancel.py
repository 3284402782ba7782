"""Cancelling an async upload mid-chunk leaves the zip stream closable (no thread race)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Generator

import pytest

from flare_adapters.chunks import ChunkPull


@pytest.mark.asyncio
async def test_cancel_while_a_chunk_is_being_read_waits_for_the_worker() -> None:
    entered, release = threading.Event(), threading.Event()

    def source() -> Generator[bytes, None, None]:
        yield b"first"
        entered.set()
        release.wait(5)  # a slow read: the worker thread sits inside next()
        yield b"second"

    chunks = source()
    stream = ChunkPull(chunks).stream()
    assert await stream.__anext__() == b"first"
    reader = asyncio.ensure_future(stream.__anext__())
    await asyncio.to_thread(entered.wait, 5)
    reader.cancel()
    for _ in range(5):
        await asyncio.sleep(0)
    assert not reader.done()  # still waiting for the worker thread, not abandoning it
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await reader
    await stream.aclose()
    chunks.close()  # would raise "generator already executing" if the worker still ran
