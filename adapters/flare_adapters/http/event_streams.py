"""The ``GET /v1/events`` streams an HTTP transport holds open across its sleeps.

A stream opened per sleep and closed at its first event misses any change that lands between
the poll before the sleep and the stream's ``{"subscribed": true}``: that change was only
seen at the next poll, up to ``poll_interval`` later. So, as a WebSocket subscription does,
a stream outlives the sleep that opened it. Its reader counts every event by the transports'
shared ``WakeRule`` (a command about a job has seen that job's events; a sleep wakes on news
since then), and a later sleep on the same key wakes at once for an event that arrived while
no one slept.

Bounds: at most ``limit`` streams (each is a connection); when a new key needs room, the
least recently used stream nobody sleeps on is closed. With every held stream in use the
sleep falls back to a stream of its own, closed when the sleep ends. A stream that ends
(the server restarted, the network broke) wakes its sleepers: events may have been lost, so
they poll, and the next sleep opens it again. One that ends within ``_YOUNG`` seconds of
opening does not wake them again, so a server that keeps cutting streams gets polled at the
sleeps' own pace, not in a loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Final

import aiohttp
import msgspec

from flare_adapters.ws.protocol import WakeRule
from flare_core.errors import NoConnection

__all__ = ["EventStreams", "OpenStream"]

OpenStream = Callable[[str], AbstractAsyncContextManager[aiohttp.ClientResponse]]
"""``GET /v1/events`` for a key (a job id, or ``ANY_JOB`` for the study), not yet entered."""

MAX_STREAMS: Final = 8
"""Streams held per transport at most (an HTTP stream is a connection, not a frame)."""

_YOUNG: Final = 1.0
"""Seconds a stream must have lived for its end to wake its sleepers."""

_SUBSCRIBED: Final = b'{"subscribed"'
_EVENT: Final = b'{"event"'


class _Event(msgspec.Struct):
    job_id: str


class _Line(msgspec.Struct):
    event: _Event


_decode_line = msgspec.json.Decoder(_Line).decode


class EventStreams:
    """Held event streams and the wake rule they feed (see the module docstring).

    Everything runs on the transport's event loop.

    Args:
        open_stream: opens the stream of a key.
        limit: most streams held at once.
    """

    def __init__(self, open_stream: OpenStream, *, limit: int = MAX_STREAMS) -> None:
        self._open = open_stream
        self._limit = limit
        self._wake = WakeRule()
        self._held: OrderedDict[str, asyncio.Task[None]] = OrderedDict()
        self._readers: set[asyncio.Task[None]] = set()  # held, opening or closing
        self._opening = asyncio.Lock()  # one stream per key, however many sleep on it
        self._sleepers: Counter[str] = Counter()
        self._young: set[str] = set()  # keys whose last stream ended young
        self._pulse = asyncio.Event()
        self._closed = False

    @property
    def held(self) -> int:
        """How many streams are open."""
        return len(self._held)

    def asked(self, job_id: str | None) -> None:
        """A command about ``job_id`` (None: no particular job) is being sent."""
        self._wake.asked(job_id)

    async def sleep(self, key: str, deadline: float) -> bool:
        """Sleep until loop time ``deadline`` or news about ``key``.

        Returns:
            True when woken early (an event, a fresh stream or a lost one: poll now), False
            when the time ran out.

        Raises:
            NoConnection: the stream could not be opened (the caller sleeps without one).
            TimeoutError: ``deadline`` passed while it was being opened.
        """
        self._sleepers[key] += 1
        try:
            if key not in self._held:
                async with self._opening:
                    fresh = key not in self._held
                    own = fresh and not self._room_for(key)
                    if fresh and not own:
                        await self._hold(key, deadline)
                if own:
                    return await self._sleep_on_own_stream(key, deadline)
                if fresh and key not in self._young:
                    return True  # an event may have come and gone before the stream: poll now
            if key in self._held:  # (it may have ended young meanwhile)
                self._held.move_to_end(key)
            return await self._wait(key, deadline)
        finally:
            self._sleepers[key] -= 1
            if not self._sleepers[key]:
                del self._sleepers[key]

    async def close(self) -> None:
        """Close every stream (idempotent)."""
        self._closed = True
        readers = list(self._readers)
        for reader in readers:
            reader.cancel()
        for reader in readers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
        self._poke()

    # --- sleeping -------------------------------------------------------------------------------

    async def _wait(self, key: str, deadline: float) -> bool:
        loop = asyncio.get_running_loop()
        while True:
            if self._wake.news(key):
                return True
            if key not in self._held and key not in self._young:
                return True  # the stream ended: events may have been lost
            if loop.time() >= deadline:
                return False
            pulse = self._pulse
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(deadline):
                    await pulse.wait()

    async def _sleep_on_own_stream(self, key: str, deadline: float) -> bool:
        # Every held stream has a sleeper: this sleep gets a stream of its own, closed when
        # it ends (an event between the last poll and its subscription is missed).
        async with asyncio.timeout_at(deadline), self._lines(key) as lines:
            async for line in lines:
                if line.startswith(_EVENT):
                    return True
        raise NoConnection("event stream ended")

    # --- the streams ---------------------------------------------------------------------------

    def _room_for(self, key: str) -> bool:
        while len(self._held) >= self._limit:
            idle = next((k for k in self._held if not self._sleepers[k]), None)
            if idle is None:
                return False
            self._held.pop(idle).cancel()
            self._wake.forget(idle)
        return True

    async def _hold(self, key: str, deadline: float) -> None:
        """Open ``key``'s stream and return once it is subscribed (then it is held)."""
        if self._closed:
            raise NoConnection("transport is closed")
        opened: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
        reader = asyncio.create_task(self._read(key, opened), name=f"flare-http-events-{key}")
        self._readers.add(reader)
        try:
            async with asyncio.timeout_at(deadline):
                failure = await asyncio.shield(opened)
        except BaseException:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
            raise
        if failure is not None:
            raise failure

    async def _read(self, key: str, opened: asyncio.Future[BaseException | None]) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.current_task()
        assert reader is not None
        started = loop.time()
        try:
            async with self._lines(key) as lines:
                async for line in lines:
                    if line.startswith(_EVENT) and self._wake.heard(
                        _decode_line(line).event.job_id
                    ):
                        self._poke()
                    elif line.startswith(_SUBSCRIBED) and not opened.done():
                        # Counted from here: nothing the stream carries is missed.
                        self._held[key] = reader
                        self._wake.listen(key)
                        opened.set_result(None)
            raise NoConnection("event stream ended")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a stream is a hint source: its end is not an error
            if not opened.done():
                opened.set_result(exc)
        finally:
            self._readers.discard(reader)
            if not opened.done():
                opened.set_result(NoConnection("event stream cancelled"))
            if self._held.get(key) is reader:
                del self._held[key]
                self._wake.forget(key)
                if loop.time() - started < _YOUNG:
                    self._young.add(key)
                else:
                    self._young.discard(key)
                self._poke()

    @contextlib.asynccontextmanager
    async def _lines(self, key: str) -> AsyncIterator[aiohttp.StreamReader]:
        """``key``'s stream, its lines once the server accepted it."""
        async with self._open(key) as response:
            if response.status != 200:
                raise NoConnection(f"event stream refused: HTTP {response.status}")
            yield response.content

    def _poke(self) -> None:
        self._pulse.set()
        self._pulse = asyncio.Event()
