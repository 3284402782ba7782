"""A loopback TCP proxy that drops, delays, holds and cuts connections, for fault tests.

``LoopbackProxy(upstream_port)`` listens on an ephemeral 127.0.0.1 port and forwards every
connection to the upstream server, on its own event-loop thread. Tests steer it from their
own thread:

- ``delay = s``: every piece of data waits ``s`` seconds before it is forwarded;
- ``drop_requests = n``: the next ``n`` commands are not forwarded: the connection is reset
  instead (the command never reaches the server). A command is an HTTP request other than a
  login or a WebSocket upgrade, or a WebSocket ``call``/``upload_start``/``download`` frame;
- ``requests``: how many commands were forwarded to the server;
- ``lose_replies = n``: the next ``n`` replies are not delivered: the connection is reset when
  the server answers (an HTTP response, or a WebSocket frame carrying a ``reply``; acks,
  chunks and events still pass);
- ``hold()`` / ``release()``: keep data from the server back (requests stay in flight);
  ``held`` is set once something was kept back;
- ``cut()``: reset every open connection now;
- ``stop()`` / ``start()``: stop listening and reset everything (a killed server), listen
  again on the same port (the server is back).

Resets are TCP resets (``abort``), the way a crashed peer or a broken network looks.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from typing import Any

import msgspec

from flare_adapters.loop_thread import LoopThread

__all__ = ["LoopbackProxy"]


_REQUEST_LINE = re.compile(rb"(GET|POST|PUT|DELETE) (/[^ ?]*)")
_NOT_COMMANDS = {(b"POST", b"/v1/sessions"), (b"GET", b"/v1/ws")}
_COMMAND_OPS = {"call", "upload_start", "download"}


def _ws_frames(buffer: bytearray) -> list[tuple[bytes, bytes]]:
    """Split complete WebSocket frames off ``buffer`` (client frames are unmasked).

    Returns:
        ``(raw frame bytes, payload)`` per complete frame, in order.
    """
    frames: list[tuple[bytes, bytes]] = []
    while len(buffer) >= 2:
        length = buffer[1] & 0x7F
        offset = 2
        if length == 126:
            if len(buffer) < 4:
                break
            length = int.from_bytes(buffer[2:4], "big")
            offset = 4
        elif length == 127:
            if len(buffer) < 10:
                break
            length = int.from_bytes(buffer[2:10], "big")
            offset = 10
        masked = bool(buffer[1] & 0x80)
        key = bytes(buffer[offset : offset + 4]) if masked else b""
        offset += 4 if masked else 0
        end = offset + length
        if len(buffer) < end:
            break
        payload = bytes(buffer[offset:end])
        if masked:
            # Only small frames can be commands; big ones are upload chunks (not inspected).
            payload = (
                bytes(byte ^ key[i % 4] for i, byte in enumerate(payload))
                if length <= 4096
                else b""
            )
        frames.append((bytes(buffer[:end]), payload))
        del buffer[:end]
    return frames


def _decoded(payload: bytes) -> dict[str, Any]:
    for decode in (msgspec.msgpack.decode, msgspec.json.decode):
        try:
            frame: Any = decode(payload)
        except (msgspec.DecodeError, UnicodeDecodeError):
            continue
        return frame if isinstance(frame, dict) else {}
    return {}


def _is_command_request(data: bytes) -> bool:
    match = _REQUEST_LINE.match(data)
    return match is not None and (match.group(1), match.group(2)) not in _NOT_COMMANDS


class _Pair:
    """One proxied connection: the client side and the upstream side."""

    def __init__(self, client: asyncio.StreamWriter, upstream: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream = upstream
        self.websocket = False
        self.down_buffer = bytearray()
        self.up_buffer = bytearray()

    def reset(self) -> None:
        for writer in (self.client, self.upstream):
            transport = writer.transport
            if not transport.is_closing():
                transport.abort()


class LoopbackProxy:
    """See the module docstring.

    Args:
        upstream_port: the port of the server on 127.0.0.1.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.delay = 0.0
        self.drop_requests = 0
        self.lose_replies = 0
        self.held = threading.Event()
        self.connections = 0
        self.requests = 0
        self._lock = threading.Lock()
        self._pairs: set[_Pair] = set()
        self._runner = LoopThread("loopback-proxy")
        self._server: asyncio.Server | None = None
        self._flowing = asyncio.Event()
        self._flowing.set()
        self.port = 0
        self.start()

    # --- control (from any thread) -------------------------------------------------------------

    def url(self, scheme: str) -> str:
        """The proxy's base URL for ``scheme`` (``http`` or ``ws``)."""
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Listen (again, on the same port once it was chosen)."""
        self._runner.run(self._listen())

    def stop(self) -> None:
        """Stop listening and reset every connection: the server looks dead."""
        self._runner.run(self._shutdown())

    def hold(self) -> None:
        """Keep every byte the server sends back until ``release``."""
        self.held.clear()
        self._runner.loop.call_soon_threadsafe(self._flowing.clear)

    def release(self) -> None:
        """Deliver what was held and let data flow again."""
        self._runner.loop.call_soon_threadsafe(self._flowing.set)

    def cut(self) -> None:
        """Reset every open connection now."""
        self._runner.run(self._cut())

    def close(self) -> None:
        """Stop and release the proxy's thread."""
        with contextlib.suppress(Exception):
            self.stop()
        self._runner.close()

    # --- the loop side ---------------------------------------------------------------------------

    async def _listen(self) -> None:
        if self._server is not None:
            return
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        await self._cut()
        if server is not None:
            await server.wait_closed()

    async def _cut(self) -> None:
        for pair in list(self._pairs):
            pair.reset()
        self._pairs.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        pair = _Pair(writer, up_writer)
        self._pairs.add(pair)
        try:
            await asyncio.gather(self._up(pair, reader), self._down(pair, up_reader))
        except ConnectionError:
            pass  # a peer (or a cut) reset the connection mid-write: the pair is done
        finally:
            pair.reset()
            self._pairs.discard(pair)

    def _take(self, name: str) -> bool:
        with self._lock:
            budget: int = getattr(self, name)
            if budget > 0:
                setattr(self, name, budget - 1)
                return True
            return False

    async def _up(self, pair: _Pair, reader: asyncio.StreamReader) -> None:
        while data := await reader.read(65536):
            if self.delay:
                await asyncio.sleep(self.delay)
            if not await self._forward(pair, data):
                return
        pair.reset()

    def _command(self) -> bool:
        """A command is about to go out: False when it must be dropped instead."""
        if self._take("drop_requests"):
            return False
        with self._lock:
            self.requests += 1
        return True

    async def _forward(self, pair: _Pair, data: bytes) -> bool:
        if not pair.websocket:
            if _is_command_request(data) and not self._command():
                pair.reset()
                return False
            pair.upstream.write(data)
            await pair.upstream.drain()
            return True
        pair.up_buffer += data
        for raw, payload in _ws_frames(pair.up_buffer):
            if _decoded(payload).get("op") in _COMMAND_OPS and not self._command():
                pair.reset()
                return False
            pair.upstream.write(raw)
        await pair.upstream.drain()
        return True

    async def _down(self, pair: _Pair, reader: asyncio.StreamReader) -> None:
        while data := await reader.read(65536):
            if not self._flowing.is_set():
                self.held.set()
                await self._flowing.wait()
            if self.delay:
                await asyncio.sleep(self.delay)
            if not await self._deliver(pair, data):
                return
        pair.reset()

    async def _deliver(self, pair: _Pair, data: bytes) -> bool:
        if not pair.websocket:
            if data.startswith(b"HTTP/1.1 101"):
                pair.websocket = True  # the handshake answer itself is no reply
                head, _, rest = data.partition(b"\r\n\r\n")
                pair.client.write(head + b"\r\n\r\n")
                pair.down_buffer += rest
                data = b""
            elif data.startswith(b"HTTP/") and self._take("lose_replies"):
                pair.reset()
                return False
            else:
                pair.client.write(data)
                await pair.client.drain()
                return True
        pair.down_buffer += data
        for raw, payload in _ws_frames(pair.down_buffer):
            if "reply" in _decoded(payload) and self._take("lose_replies"):
                pair.reset()
                return False
            pair.client.write(raw)
        await pair.client.drain()
        return True
