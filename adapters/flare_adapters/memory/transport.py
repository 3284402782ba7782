"""The in-process transport: a session talks to a ``Backend`` object directly.

``MemoryTransport`` serves both transport ports (``Transport`` and ``AsyncTransport``), like
httpx's ``MockTransport``: nothing crosses a socket, and time is a virtual clock that the
transport advances while a session sleeps - timer by timer, so the backend's engine runs job
lifetimes in between, and stopping as soon as the awaited job changed status.

It is the bottom layer only: the sessions above it and the backend below it are the
production code. A fault-injection hook (``fail_next``) makes calls fail as a flaky network
would, before the backend saw them or after it handled them (a lost reply).
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncIterable, Iterable
from typing import Literal, Protocol

from flare_adapters.inprocess import InProcessCalls, exchange
from flare_adapters.ws.protocol import WakeRule
from flare_core.commands import Command
from flare_core.errors import NoConnection
from flare_core.events import JobEvent
from flare_core.replies import Problem, Reply
from flare_ports.backend import Backend
from flare_ports.transport import ChunkSink

__all__ = ["FaultPoint", "MemoryTransport", "SteppingClock"]

FaultPoint = Literal["before", "after"]
_NO_CONNECTION = "no_connection"


class SteppingClock(Protocol):
    """The clock a memory system runs on (``VirtualClock`` satisfies it)."""

    def monotonic(self) -> float:
        """Seconds elapsed on the clock."""
        ...

    def advance(self, seconds: float) -> None:
        """Move time forward, running the timers that fall due."""
        ...

    def next_deadline(self) -> float | None:
        """The ``monotonic()`` time of the earliest pending timer, if any."""
        ...


class MemoryTransport(InProcessCalls):
    """A transport calling ``backend`` in-process, on ``clock``'s virtual time.

    Logs in at construction; every command is authenticated with the session's token and
    handed to ``backend.handle``. Thread-safe.

    Args:
        backend: the system to talk to (e.g. an ``AdminService``).
        clock: the virtual clock the system's engine runs on.
        user: the user to log in as.
        api_key: the user's API key.
        study: the study to bind the session to.

    Raises:
        AuthenticationError: the backend rejected the login.
    """

    def __init__(
        self,
        backend: Backend,
        clock: SteppingClock,
        *,
        user: str,
        api_key: str | None = None,
        study: str = "default",
    ) -> None:
        self._backend = backend
        self._clock = clock
        self._lock = threading.Lock()
        self._faults: deque[FaultPoint] = deque()
        # The network clients' rule for what wakes a sleeper; this transport hears every event.
        self._wake = WakeRule(every_job=True)
        self._closed = False
        self._token = backend.login(user, api_key, study).token
        self._unsubscribe = backend.subscribe(self._on_event)

    # --- control ----------------------------------------------------------------------------

    def fail_next(self, n: int = 1, when: FaultPoint = "before") -> None:
        """Make the next ``n`` calls (``call``/``upload``/``download``) raise ``NoConnection``.

        Args:
            n: how many calls fail (>= 0), in addition to failures already queued.
            when: ``"before"``: the backend never sees the call; ``"after"``: the backend
                handles it and the reply is lost.
        """
        if n < 0:
            raise ValueError("n must be >= 0")
        if when not in ("before", "after"):
            raise ValueError("when must be 'before' or 'after'")
        with self._lock:
            self._faults.extend([when] * n)

    @property
    def pending_failures(self) -> int:
        """How many injected failures are still queued."""
        with self._lock:
            return len(self._faults)

    @property
    def closed(self) -> bool:
        """True once ``close``/``aclose`` ran."""
        return self._closed

    # --- Transport (call/upload/download: InProcessCalls) -------------------------------

    def monotonic(self) -> float:
        """The virtual clock's time."""
        return self._clock.monotonic()

    def sleep(self, seconds: float, wake_on: str | None) -> bool:
        """Advance the virtual clock by ``seconds``, stopping early once ``wake_on`` changed.

        The clock moves to the earlier of the sleep's end and the next due timer, repeatedly,
        so that events raised by timers are seen as soon as they happen.
        """
        deadline = self._clock.monotonic() + max(0.0, seconds)
        if wake_on is None:
            self._clock.advance(max(0.0, deadline - self._clock.monotonic()))
            return False
        while True:
            if self._consume(wake_on):
                return True
            now = self._clock.monotonic()
            if now >= deadline:
                return False
            due = self._clock.next_deadline()
            until = deadline if due is None else min(deadline, max(due, now))
            self._clock.advance(until - now)

    def close(self) -> None:
        """Stop listening to job events; later calls raise ``NoConnection``. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._unsubscribe()

    # --- AsyncTransport ---------------------------------------------------------------------

    async def acall(self, command: Command, timeout: float | None) -> Reply:
        """Async ``call``."""
        return self.call(command, timeout)

    async def aupload(
        self, command: Command, chunks: AsyncIterable[bytes], timeout: float | None
    ) -> Reply:
        """Async ``upload``; the archive is collected first (it stays in memory anyway)."""
        collected = [chunk async for chunk in chunks]
        return self.upload(command, collected, timeout)

    async def adownload(self, command: Command, sink: ChunkSink, timeout: float | None) -> Reply:
        """Async ``download``."""
        return self.download(command, sink, timeout)

    async def asleep(self, seconds: float, wake_on: str | None) -> bool:
        """Async ``sleep``; yields to the event loop once so other tasks can run."""
        await asyncio.sleep(0)
        return self.sleep(seconds, wake_on)

    async def aclose(self) -> None:
        """Async ``close``."""
        self.close()

    # --- internals --------------------------------------------------------------------------

    def _on_event(self, event: JobEvent) -> None:
        with self._lock:
            self._wake.heard(event.job_id)

    def _consume(self, job_id: str) -> bool:
        with self._lock:
            return self._wake.news(job_id)

    def _take_fault(self, command: Command) -> FaultPoint | None:
        with self._lock:
            if self._closed:
                raise NoConnection("transport is closed")
            # Events heard before a command about a job are reflected in its reply.
            job_id = getattr(command, "job_id", None)
            self._wake.asked(job_id if isinstance(job_id, str) else None)
            return self._faults.popleft() if self._faults else None

    def _exchange(
        self, command: Command, upload: Iterable[bytes] | None, sink: ChunkSink | None
    ) -> Reply:
        fault = self._take_fault(command)
        if fault == "before":
            raise NoConnection("cannot connect to server: injected connection failure")
        reply = exchange(self._backend, self._token, command, upload, sink)
        if fault == "after":
            raise NoConnection("cannot connect to server: injected loss of the reply")
        if isinstance(reply, Problem) and reply.code == _NO_CONNECTION:
            raise NoConnection(reply.message or "cannot connect to server")
        return reply
