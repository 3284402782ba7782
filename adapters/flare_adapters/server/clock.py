"""The real clock of the server, with one-shot timers on its event loop.

``LoopClock`` implements the service's ``Clock`` and ``Timers`` ports and the simulated
engine's ``TimerClock``: ``time()``/``monotonic()`` read the system clocks, and ``call_later``
may be called from any thread. Timers are kept by the event loop, but their callbacks run on a
small pool of dedicated worker threads, started in due order: they call into the service
(SQLite writes, archiving a job's workspace), which must not block the loop.

A pool, not one thread: a job's end is mostly waiting (its files' fsyncs, the service lock),
and one thread ending jobs one at a time managed about 13 a second under issue 10's load
phase, fewer than were submitted, until waits timed out; four keep up (about 35 a second).
One job's callbacks still run one after another, because each arms the next (the engine
schedules a job's end from its start), and the service serialises what they change under its
lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

__all__ = ["LoopClock"]

logger = logging.getLogger("flare_adapters.server.clock")


class LoopClock:
    """System time plus thread-safe timers on ``loop``.

    Args:
        loop: the event loop that keeps the timers (it must be running while timers are due).
        workers: how many callbacks may run at once.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, *, workers: int = 4) -> None:
        self._loop = loop
        self._worker = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="flare-timers")
        self._closed = threading.Event()

    def time(self) -> float:
        """Wall-clock time, epoch seconds."""
        return time.time()

    def monotonic(self) -> float:
        """Monotonic seconds (session idle timers)."""
        return time.monotonic()

    def call_later(self, delay: float, callback: Callable[[], object]) -> Callable[[], None]:
        """Run ``callback`` on a timer thread after ``delay`` seconds (from any thread).

        Returns:
            A cancel function (idempotent; harmless after the callback ran).
        """
        cancelled = threading.Event()
        handle: list[asyncio.TimerHandle] = []

        def run() -> None:
            if cancelled.is_set() or self._closed.is_set():
                return
            try:
                callback()
            except Exception:
                logger.exception("timer callback failed")

        def fire() -> None:
            if not (cancelled.is_set() or self._closed.is_set()):
                with contextlib.suppress(RuntimeError):  # worker already shut down
                    self._worker.submit(run)

        def arm() -> None:
            if not cancelled.is_set():
                handle.append(self._loop.call_later(max(0.0, delay), fire))

        with contextlib.suppress(RuntimeError):  # the loop is closed: the timer never fires
            self._loop.call_soon_threadsafe(arm)

        def cancel() -> None:
            cancelled.set()
            if handle:
                with contextlib.suppress(RuntimeError):
                    self._loop.call_soon_threadsafe(handle[0].cancel)

        return cancel

    def close(self) -> None:
        """Drop pending timers and wait for a running callback to finish (idempotent)."""
        self._closed.set()
        self._worker.shutdown(wait=True, cancel_futures=True)
