"""Private event loops for sync code, and the sync transport that runs on one.

The network transports are written once, as ``AsyncTransport`` implementations. Their sync
flavour (``ThreadedTransport``) runs that same object on a private event loop, a
``BorrowedLoop``: every sync call is a coroutine the calling thread runs on that loop itself,
so a call costs no hand-off between threads, while a pump thread keeps the idle loop turning
(WebSocket pings, pushed job events, timers). One loop per transport keeps sessions
independent (closing one never disturbs another). ``LoopThread`` is a loop that its own
thread runs all the time, for what must run while nobody calls (the demo's server).

A coroutine running on the loop that called back into the sync flavour would wait for
itself forever; ``run`` refuses such re-entry with ``RuntimeError`` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from typing import Any, Final, Self, TypeVar

from flare_adapters.chunks import ChunkPull
from flare_core.commands import Command
from flare_core.errors import NoConnection
from flare_core.replies import Reply
from flare_ports.transport import AsyncTransport, ChunkSink

__all__ = ["BorrowedLoop", "LoopThread", "ThreadedTransport"]

T = TypeVar("T")

logger = logging.getLogger(__name__)


async def _shutdown(loop: asyncio.AbstractEventLoop) -> None:
    # Cancel every other task of the loop, then its async generators and default executor.
    current = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await loop.shutdown_asyncgens()
    await loop.shutdown_default_executor()  # the threads of ``asyncio.to_thread``


def _stop_soon(loop: asyncio.AbstractEventLoop) -> None:
    # Finalizer of an abandoned LoopThread: never join here (it may run on any thread).
    if not loop.is_closed():
        with contextlib.suppress(RuntimeError):  # closed meanwhile
            loop.call_soon_threadsafe(loop.stop)


class LoopThread:
    """A private asyncio event loop running on its own daemon thread.

    Args:
        name: the thread's name (shows up in thread dumps).
    """

    def __init__(self, name: str = "flare-loop") -> None:
        self._loop = asyncio.new_event_loop()
        self._closed = False
        self._lock = threading.Lock()
        started = threading.Event()
        self._thread = threading.Thread(target=self._main, args=(started,), name=name, daemon=True)
        self._thread.start()
        started.wait()
        self._finalizer = weakref.finalize(self, _stop_soon, self._loop)

    def _main(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(started.set)
        try:
            self._loop.run_forever()
        finally:
            asyncio.set_event_loop(None)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The private loop (for ``call_soon_threadsafe`` and friends)."""
        return self._loop

    @property
    def closed(self) -> bool:
        """True once ``close`` ran."""
        return self._closed

    def in_loop_thread(self) -> bool:
        """True when called from the loop's own thread."""
        return threading.get_ident() == self._thread.ident

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the private loop and wait for its outcome.

        Args:
            coro: the coroutine; it is closed unrun when it cannot be scheduled.

        Returns:
            The coroutine's result.

        Raises:
            RuntimeError: called from the loop's own thread (it would wait for itself).
            NoConnection: the loop was closed.
            BaseException: whatever the coroutine raised.
        """
        if self.in_loop_thread():
            coro.close()
            raise RuntimeError(
                "a sync flare-core transport cannot be used from its own event loop thread"
            )
        with self._lock:
            if self._closed:
                coro.close()
                raise NoConnection("transport is closed")
            future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result()
        except BaseException:
            # Interrupted (e.g. KeyboardInterrupt) or failed: make sure nothing keeps running.
            future.cancel()
            raise

    def close(self) -> None:
        """Cancel what still runs on the loop, stop it and join the thread (idempotent).

        Raises:
            RuntimeError: called from the loop's own thread.
        """
        if self.in_loop_thread():
            raise RuntimeError("a LoopThread cannot be closed from its own thread")
        with self._lock:
            if self._closed:
                return
            self._closed = True
        asyncio.run_coroutine_threadsafe(_shutdown(self._loop), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
        self._finalizer.detach()


_PUMP_INTERVAL: Final = 0.25
"""Seconds an idle ``BorrowedLoop`` waits before its own thread turns it once: what arrived
meanwhile (a ping to answer, a pushed event, a timer) waits at most this long. WebSocket
keepalives allow seconds (aiohttp's server heartbeat, websockets' ping timeout)."""


class _Lease:
    """Who runs a ``BorrowedLoop``'s loop now; shared with its pump thread, which must not
    hold the ``BorrowedLoop`` itself (an abandoned one is then collected, and its thread
    told to end)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.lock = threading.Lock()
        self.runner: int | None = None  # the thread running the loop, if any
        self.foreign = 0  # coroutines handed to a loop another thread runs, not yet done
        self.drained: asyncio.Future[None] | None = None  # the pump's wait for them
        self.closed = False
        self.ended = False  # the pump thread may leave
        self.wake = threading.Event()  # asks the pump thread to run the loop now

    def foreign_done(self) -> None:
        # On the loop, in whatever thread runs it: the last one done ends the pump's wait.
        with self.lock:
            self.foreign -= 1
            drained = self.drained if self.foreign == 0 else None
        if drained is not None and not drained.done():
            drained.set_result(None)

    def drained_future(self) -> asyncio.Future[None] | None:
        """What the pump runs the loop until: the other threads' coroutines all done (None:
        none is left). A bare future, not a task, so a shutdown cancelling the loop's tasks
        never cancels the wait itself."""
        with self.lock:
            if self.foreign == 0:
                return None
            self.drained = self.loop.create_future()
            return self.drained

    def release(self) -> None:
        with self.lock:
            self.runner = None
            if self.foreign:  # other threads' coroutines still run: the pump takes over
                self.wake.set()


async def _given(pieces: list[bytes]) -> AsyncIterator[bytes]:
    # Pieces already produced, handed to an async transport as its stream.
    for piece in pieces:
        yield piece


async def _turn() -> None:
    # A few iterations of the loop: ready I/O, the callbacks it schedules, due timers.
    for _ in range(4):
        await asyncio.sleep(0)


def _pump(lease: _Lease) -> None:
    """The pump thread: turns an idle loop now and then, and runs it for other threads'
    coroutines when no caller does (see ``BorrowedLoop``)."""
    me = threading.get_ident()
    while True:
        lease.wake.wait(_PUMP_INTERVAL)
        lease.wake.clear()
        with lease.lock:
            if lease.ended:
                return
            if lease.runner is not None or lease.loop.is_closed():
                continue
            lease.runner = me
            pending = lease.foreign > 0
        try:
            if pending:
                while (drained := lease.drained_future()) is not None:
                    lease.loop.run_until_complete(drained)
            else:
                lease.loop.run_until_complete(_turn())
        except asyncio.CancelledError:
            pass  # a shutdown cancelled the turn's task: the loop itself is fine
        except Exception:  # never let the pump die: callers handed over would wait forever
            logger.exception("the private event loop's pump failed a turn")
        finally:
            lease.release()


def _abandon(lease: _Lease) -> None:
    # Finalizer of an abandoned BorrowedLoop: let its thread go (never join here).
    with lease.lock:
        lease.closed = lease.ended = True
    lease.wake.set()


class BorrowedLoop:
    """A private event loop that each calling thread runs itself, for the length of its call.

    ``run`` drives the loop on the caller's own thread (``run_until_complete``), so a sync
    call costs no thread hand-off: no wake-up of a loop thread, no wake-up of the caller
    when the reply is in (two wake-ups were about 80 us of a 0.4 ms WebSocket read on
    two cores, measured). Between calls nobody runs the loop: a daemon pump thread turns it
    every ``_PUMP_INTERVAL`` seconds, so WebSocket pings are answered, pushed events are
    taken in and timers fire while the caller's thread is elsewhere.

    A second thread calling while the loop is in use (or a caller already inside an event
    loop of its own) hands its coroutine to the loop as ``LoopThread`` does; when the
    borrowing caller returns first, the pump thread runs the loop until those are done.
    Re-entry from a coroutine on this loop is refused with ``RuntimeError``.

    Args:
        name: the pump thread's name (shows up in thread dumps).
    """

    def __init__(self, name: str = "flare-loop") -> None:
        self._lease = _Lease(asyncio.new_event_loop())
        self._thread = threading.Thread(target=_pump, args=(self._lease,), name=name, daemon=True)
        self._thread.start()
        self._finalizer = weakref.finalize(self, _abandon, self._lease)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The private loop."""
        return self._lease.loop

    @property
    def closed(self) -> bool:
        """True once ``close`` ran."""
        return self._lease.closed

    def in_loop_thread(self) -> bool:
        """True when called from the thread running the loop now."""
        return self._lease.runner == threading.get_ident()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the private loop and wait for its outcome (see the class).

        Args:
            coro: the coroutine; it is closed unrun when it cannot be scheduled.

        Returns:
            The coroutine's result.

        Raises:
            RuntimeError: called from a coroutine on this loop (it would wait for itself).
            NoConnection: the loop was closed.
            BaseException: whatever the coroutine raised.
        """
        return self._run(coro, closing=False)

    def borrow(self) -> bool:
        """Hold the loop, without running it, for blocking work on the calling thread.

        While held, no other thread runs the loop (their calls wait in it, as they do while
        a call runs), so the caller may touch state the loop's coroutines own. Every True
        must be followed by ``give_back``.

        Returns:
            True when held; False when another thread runs the loop now, the caller itself
            does, or the loop is closed (then use ``run``, which knows what to do).
        """
        lease = self._lease
        with lease.lock:
            if lease.runner is not None or lease.closed:
                return False
            lease.runner = threading.get_ident()
            return True

    def give_back(self) -> None:
        """End a ``borrow`` (the pump thread runs what other threads handed over meanwhile)."""
        self._lease.release()

    def _run(self, coro: Coroutine[Any, Any, T], *, closing: bool) -> T:
        lease = self._lease
        me = threading.get_ident()
        with lease.lock:
            if lease.runner == me:
                coro.close()
                raise RuntimeError(
                    "a sync flare-core transport cannot be used from its own event loop thread"
                )
            if lease.closed and not closing:
                coro.close()
                raise NoConnection("transport is closed")
            # A thread inside another running loop cannot run this one: it hands over too.
            borrow = lease.runner is None and asyncio._get_running_loop() is None
            if borrow:
                lease.runner = me
            else:
                lease.foreign += 1
                if lease.runner is None:
                    lease.wake.set()
                future = asyncio.run_coroutine_threadsafe(self._handed(coro), lease.loop)
        if not borrow:
            try:
                return future.result()
            except BaseException:
                future.cancel()  # interrupted: make sure nothing keeps running
                raise
        task = lease.loop.create_task(coro)
        try:
            return lease.loop.run_until_complete(task)
        except BaseException:
            task.cancel()  # interrupted (KeyboardInterrupt): the next turn cancels it
            raise
        finally:
            lease.release()

    async def _handed(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            return await coro
        finally:
            self._lease.foreign_done()

    def close(self) -> None:
        """Cancel what still runs on the loop, stop the pump thread and close the loop
        (idempotent).

        Raises:
            RuntimeError: called from a coroutine on this loop.
        """
        lease = self._lease
        with lease.lock:
            if lease.runner == threading.get_ident():
                raise RuntimeError("a BorrowedLoop cannot be closed from its own loop")
            if lease.closed:
                return
            lease.closed = True
        try:
            self._run(_shutdown(lease.loop), closing=True)
        finally:
            with lease.lock:
                lease.ended = True
            lease.wake.set()
            self._thread.join()
            lease.loop.close()
            self._finalizer.detach()


class ThreadedTransport:
    """The sync ``Transport`` flavour of an ``AsyncTransport``, run on a private loop.

    Build it with ``open``, which also creates the async transport on the loop (aiohttp and
    websockets objects belong to the loop they were made on). ``close`` closes the async
    transport and then the loop.

    Args:
        runner: the private loop (owned from now on).
        transport: an async transport created on ``runner``'s loop.
    """

    def __init__(self, runner: BorrowedLoop, transport: AsyncTransport) -> None:
        self._runner = runner
        self._transport = transport

    @classmethod
    def open(
        cls, make: Callable[[], Awaitable[AsyncTransport]], *, name: str = "flare-transport"
    ) -> Self:
        """Start a private loop and create the async transport on it with ``make()``.

        Raises:
            Exception: whatever ``make`` raised (the loop is closed first).
        """
        runner = BorrowedLoop(name)

        async def create() -> AsyncTransport:
            return await make()

        try:
            transport = runner.run(create())
        except BaseException:
            runner.close()
            raise
        return cls(runner, transport)

    @property
    def inner(self) -> AsyncTransport:
        """The async transport doing the work (use it only through ``submit``)."""
        return self._transport

    @property
    def closed(self) -> bool:
        """True once ``close`` ran."""
        return self._runner.closed

    def submit(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine of the inner transport on the private loop and wait for it.

        Raises:
            RuntimeError: called from a coroutine on that loop.
            NoConnection: the transport is closed.
        """
        return self._runner.run(coro)

    def call(self, command: Command, timeout: float | None) -> Reply:
        """See ``flare_ports.Transport.call``."""
        return self._runner.run(self._transport.acall(command, timeout))

    def upload(self, command: Command, chunks: Iterable[bytes], timeout: float | None) -> Reply:
        """See ``flare_ports.Transport.upload``; ``chunks`` are produced off the loop, and
        no worker is inside ``chunks`` any more when this returns.

        The first two pieces are produced here, on the caller's thread: an archive of one
        piece (a small job folder) then needs no worker at all, and a longer one is pulled
        on by workers from the third piece.
        """
        pieces = iter(chunks)
        ready = list(itertools.islice(pieces, 2))
        if len(ready) < 2:
            return self._runner.run(self._transport.aupload(command, _given(ready), timeout))
        return self._runner.run(self._upload(command, itertools.chain(ready, pieces), timeout))

    async def _upload(
        self, command: Command, chunks: Iterable[bytes], timeout: float | None
    ) -> Reply:
        pull = ChunkPull(chunks)
        stream = pull.stream()
        try:
            return await self._transport.aupload(command, stream, timeout)
        finally:
            await pull.settle()
            with contextlib.suppress(RuntimeError):  # still being iterated: it ends with us
                await stream.aclose()

    def download(self, command: Command, sink: ChunkSink, timeout: float | None) -> Reply:
        """See ``flare_ports.Transport.download``; ``sink`` is called on the thread running
        the loop (the caller's, unless another thread's call holds the loop)."""
        return self._runner.run(self._transport.adownload(command, sink, timeout))

    def monotonic(self) -> float:
        """See ``flare_ports.Transport.monotonic``."""
        return self._transport.monotonic()

    def sleep(self, seconds: float, wake_on: str | None) -> bool:
        """See ``flare_ports.Transport.sleep``."""
        return self._runner.run(self._transport.asleep(seconds, wake_on))

    def close(self) -> None:
        """Close the async transport, then the private loop (idempotent)."""
        if self._runner.closed:
            return
        try:
            self._runner.run(self._transport.aclose())
        finally:
            self._runner.close()
