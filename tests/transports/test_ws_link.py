"""The client link routes each whole server frame from websockets' protocol callback
(``RoutingConnection``), with no reader task in between (issue 12: a task switch less per
reply), and hands fragmented messages to websockets' assembler without reordering."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from flare_adapters.ws.link import Link, Lost, RoutingConnection, read, route_into, take
from flare_adapters.ws.protocol import (
    CLOSE_INVALID_PAYLOAD,
    ChunkFrame,
    EventFrame,
    FrameCodec,
    ReplyFrame,
    ServerFrame,
)
from flare_core.events import JobEvent
from flare_core.replies import Ok

pytestmark = pytest.mark.asyncio

CODEC = FrameCodec("json")
JOB = "7f8c1b0e-0000-4000-8000-000000000001"


def _reply(request_id: int, value: object) -> str:
    return CODEC.encode(ReplyFrame(id=request_id, reply=Ok(value=value))).decode()


def _chunk(data: bytes) -> str:
    return CODEC.encode(ChunkFrame(id=1, data=data)).decode()


def _event(status: str) -> str:
    event = JobEvent(job_id=JOB, study="default", status=status)
    return CODEC.encode(EventFrame(event=event)).decode()


Script = Callable[[ServerConnection], Awaitable[None]]


@asynccontextmanager
async def _linked(script: Script) -> AsyncIterator[tuple[Link, list[JobEvent]]]:
    """A loopback server that runs ``script`` once the client asks (any message), and a
    routed link to it; no reader task unless the test starts one."""

    async def handler(ws: ServerConnection) -> None:
        await ws.recv()
        await script(ws)
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        ws = await connect(f"ws://127.0.0.1:{port}", create_connection=RoutingConnection)
        link = Link(ws, CODEC, itertools.count(1))
        heard: list[JobEvent] = []
        route_into(link, heard.append)
        try:
            yield link, heard
        finally:
            await ws.close()
            if link.reader is not None:
                await link.reader


async def _taken(link: Link, ids: Sequence[int]) -> list[ServerFrame]:
    queues = [link.open(request_id) for request_id in ids]
    await link.ws.send("go")
    # The bound only ends a failing test: a frame left to the assembler is never taken.
    async with asyncio.timeout(10):
        return [await take(queue) for queue in queues]


async def test_whole_frames_reach_their_requests_without_a_reader_task() -> None:
    async def script(ws: ServerConnection) -> None:
        await ws.send(_event("RUNNING"))
        await ws.send(_reply(2, "second"))
        await ws.send(_reply(1, "first"))

    async with _linked(script) as (link, heard):
        assert link.reader is None
        frames = await _taken(link, [1, 2])
        assert [frame.reply for frame in frames] == [Ok(value="first"), Ok(value="second")]
        assert [event.status for event in heard] == ["RUNNING"]


async def test_after_a_fragmented_message_the_assembler_keeps_the_order() -> None:
    # One download's frames: a whole chunk, a fragmented one, then the reply. Were the reply
    # routed past the chunk still in the assembler, the download would end a chunk short.
    async def script(ws: ServerConnection) -> None:
        await ws.send(_chunk(b"one"))
        text = _chunk(b"two")
        await ws.send([text[:5], text[5:]])  # our server never fragments; a proxy may
        await ws.send(_chunk(b"three"))
        await ws.send(_reply(1, "done"))

    async with _linked(script) as (link, heard):
        link.reader = asyncio.get_running_loop().create_task(read(link, heard.append, _ignore))
        queue = link.open(1)
        await link.ws.send("go")
        async with asyncio.timeout(10):
            frames = [await take(queue) for _ in range(4)]
        assert [frame.data for frame in frames] == [b"one", b"two", b"three", b""]
        assert frames[-1].reply == Ok(value="done")


async def test_a_routed_frame_that_does_not_decode_closes_the_link_as_garbled() -> None:
    async def script(ws: ServerConnection) -> None:
        await ws.send("{not json")

    async with _linked(script) as (link, _):
        queue = link.open(1)
        await link.ws.send("go")
        async with asyncio.timeout(10):
            lost = await queue.get()
            await link.ws.wait_closed()
        assert isinstance(lost, Lost)
        assert lost.garbled
        assert link.ws.close_code == CLOSE_INVALID_PAYLOAD


async def test_frames_before_routing_was_set_stay_with_the_assembler() -> None:
    # The connection has no ``route`` yet: every frame is left for a reader, in order.
    async def handler(ws: ServerConnection) -> None:
        await ws.send(_reply(1, "early"))
        await ws.recv()
        await ws.send(_reply(2, "late"))
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}", create_connection=RoutingConnection) as ws:
            async with asyncio.timeout(10):
                early = await ws.recv()  # taken from the assembler: nothing routed it
                link = Link(ws, CODEC, itertools.count(1))
                route_into(link, _ignore)
                queue = link.open(2)
                await ws.send("go")
                late = await ws.recv()
            assert CODEC.decode_server(_as_bytes(early)).id == 1
            assert CODEC.decode_server(_as_bytes(late)).id == 2
            assert queue.empty()


def _as_bytes(message: str | bytes) -> bytes:
    return message.encode() if isinstance(message, str) else message


def _ignore(_: object) -> None:
    pass
