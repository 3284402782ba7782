"""One private event loop on its own thread, and the sync transport that runs on it.

The network transports are written once, as ``AsyncTransport`` implementations. Their sync
flavour (``ThreadedTransport``) runs that same object on a private event loop owned by one
daemon thread: every sync call is a coroutine submitted to the loop, and the calling thread
waits for its result. One loop per transport keeps sessions independent (closing one never
disturbs another) and lets the WebSocket reader, pings and pushed job events run while the
caller's thread is busy elsewhere. The hop costs some tens of microseconds per call.

A coroutine running on the loop that called back into the sync flavour would wait for
itself forever; ``LoopThread.run`` refuses such re-entry with ``RuntimeError`` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, Self, TypeVar

from flare_adapters.chunks import ChunkPull
from flare_core.commands import Command
from flare_core.errors import NoConnection
from flare_core.replies import Reply
from flare_ports.transport import AsyncTransport, ChunkSink

__all__ = ["LoopThread", "ThreadedTransport"]

T = TypeVar("T")


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
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
        self._finalizer.detach()

    async def _shutdown(self) -> None:
        current = asyncio.current_task()
        tasks = [task for task in asyncio.all_tasks() if task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._loop.shutdown_asyncgens()
        await self._loop.shutdown_default_executor()  # the threads of ``asyncio.to_thread``


class ThreadedTransport:
    """The sync ``Transport`` flavour of an ``AsyncTransport``, run on a private loop thread.

    Build it with ``open``, which also creates the async transport on the loop (aiohttp and
    websockets objects belong to the loop they were made on). ``close`` closes the async
    transport and then the thread.

    Args:
        runner: the loop thread (owned from now on).
        transport: an async transport created on ``runner``'s loop.
    """

    def __init__(self, runner: LoopThread, transport: AsyncTransport) -> None:
        self._runner = runner
        self._transport = transport

    @classmethod
    def open(
        cls, make: Callable[[], Awaitable[AsyncTransport]], *, name: str = "flare-transport"
    ) -> Self:
        """Start a loop thread and create the async transport on it with ``make()``.

        Raises:
            Exception: whatever ``make`` raised (the thread is stopped first).
        """
        runner = LoopThread(name)

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
        """Run a coroutine of the inner transport on the loop thread and wait for it.

        Raises:
            RuntimeError: called from the loop thread itself.
            NoConnection: the transport is closed.
        """
        return self._runner.run(coro)

    def call(self, command: Command, timeout: float | None) -> Reply:
        """See ``flare_ports.Transport.call``."""
        return self._runner.run(self._transport.acall(command, timeout))

    def upload(self, command: Command, chunks: Iterable[bytes], timeout: float | None) -> Reply:
        """See ``flare_ports.Transport.upload``; ``chunks`` are produced off the loop, and
        no worker is inside ``chunks`` any more when this returns."""
        return self._runner.run(self._upload(command, chunks, timeout))

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
        """See ``flare_ports.Transport.download``; ``sink`` is called on the loop thread."""
        return self._runner.run(self._transport.adownload(command, sink, timeout))

    def monotonic(self) -> float:
        """See ``flare_ports.Transport.monotonic``."""
        return self._transport.monotonic()

    def sleep(self, seconds: float, wake_on: str | None) -> bool:
        """See ``flare_ports.Transport.sleep``."""
        return self._runner.run(self._transport.asleep(seconds, wake_on))

    def close(self) -> None:
        """Close the async transport, then stop the loop thread (idempotent)."""
        if self._runner.closed:
            return
        try:
            self._runner.run(self._transport.aclose())
        finally:
            self._runner.close()
