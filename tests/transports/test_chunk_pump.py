"""``ChunkPump``: what every transport sends of an upload, piece by piece."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from flare_adapters.network import CallerCode, ChunkPump

pytestmark = pytest.mark.asyncio


async def _chunks(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def _drain(pump: ChunkPump) -> list[bytes | memoryview]:
    pieces: list[bytes | memoryview] = []
    while (piece := await pump.next()) is not None:
        pieces.append(piece)
    await pump.stop()
    return pieces


async def test_pieces_are_at_most_the_piece_size_and_views_of_a_larger_chunk() -> None:
    large, small = b"a" * 10, b"bcd"
    pieces = await _drain(ChunkPump(_chunks(large, b"", small), CallerCode(None, "op"), 4))
    assert [bytes(piece) for piece in pieces] == [b"aaaa", b"aaaa", b"aa", b"bcd"]
    assert all(isinstance(piece, memoryview) and piece.obj is large for piece in pieces[:3])
    assert pieces[3] is small  # a chunk that fits is its own piece


async def test_a_failure_producing_the_chunks_is_raised_after_what_came_before() -> None:
    async def failing() -> AsyncIterator[bytes]:
        yield b"xy"
        raise OSError("disk gone")

    pump = ChunkPump(failing(), CallerCode(None, "op"), 4)
    assert await pump.next() == b"xy"
    with pytest.raises(OSError, match="disk gone"):
        await pump.next()
    await pump.stop()
