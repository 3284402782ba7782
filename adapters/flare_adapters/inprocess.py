"""Calling a ``Backend`` in this process: the exchange every in-process transport shares, and
``LocalTransport``, which runs on the real clock.

``exchange`` is one command's trip through the ``Backend`` port as the server makes it
(``flare_adapters.serving.serve_command``: authenticate the session's token, handle the
command, open a prepared download), then streams a download's archive into the sink. The
memory transport (virtual time) and ``LocalTransport`` (real time, for backends that front a
real system such as NVFlare) both use it.

``LocalTransport`` waits on a condition variable that the backend's job events notify, so a
waiting session wakes as soon as its job changes. Its async methods run the blocking backend
calls on worker threads, never on the event loop.
"""

from __future__ import annotations

import asyncio
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, Iterable, Iterator
from typing import Any

from flare_adapters.serving import serve_command
from flare_core.commands import Command
from flare_core.errors import (
    AuthenticationError,
    InternalError,
    JobNotFound,
    NoConnection,
    SessionExpired,
)
from flare_core.events import JobEvent
from flare_core.replies import Problem, Reply, whole
from flare_core.steps import ANY_JOB
from flare_ports.backend import Backend
from flare_ports.transport import ChunkSink

__all__ = ["SESSION_OPTIONS", "InProcessCalls", "LocalTransport", "exchange", "session_options"]

_NO_CONNECTION = "no_connection"

SESSION_OPTIONS = frozenset({"upload_dir", "download_dir", "retry", "mint_token"})
"""The ``connect`` options of in-process transports: the ``Session`` settings only."""


def session_options(options: dict[str, Any], scheme: str) -> dict[str, Any]:
    """Check ``connect`` options for an in-process scheme.

    Raises:
        TypeError: an option other than ``SESSION_OPTIONS``.
    """
    unknown = sorted(set(options) - SESSION_OPTIONS)
    if unknown:
        raise TypeError(f"unsupported {scheme} connect options: {unknown}")
    return options


def exchange(
    backend: Backend,
    token: str,
    command: Command,
    upload: Iterable[bytes] | None,
    sink: ChunkSink | None,
) -> Reply:
    """Run ``command`` for the session ``token`` names, as the server does (``serve_command``).

    Returns:
        The backend's reply; a download's archive has gone into ``sink`` when it is ``Ok``.
        Authentication failures and an archive that cannot be opened come back as problems.
    """
    try:
        served = serve_command(backend, token, command, upload)
    except (SessionExpired, AuthenticationError) as exc:
        return Problem.from_exception(exc)
    if sink is None or served.open_download is None:
        return whole(served.reply)  # the caller's flow takes the value as it is: read it here
    try:
        chunks = served.open_download()
    except (JobNotFound, InternalError) as exc:  # unknown download, or no download id
        return Problem.from_exception(exc)
    try:
        for chunk in chunks:
            sink(chunk)
    except JobNotFound as exc:  # a lazy archive finds out on its first chunk
        return Problem.from_exception(exc)
    return served.reply


class InProcessCalls(ABC):
    """The three transfer methods of the ``Transport`` port over one ``_exchange``."""

    @abstractmethod
    def _exchange(
        self, command: Command, upload: Iterable[bytes] | None, sink: ChunkSink | None
    ) -> Reply:
        """One command's trip to the backend (each in-process transport has its own)."""

    def call(self, command: Command, timeout: float | None) -> Reply:
        """Run ``command`` on the backend (see ``flare_ports.Transport.call``)."""
        return self._exchange(command, None, None)

    def upload(self, command: Command, chunks: Iterable[bytes], timeout: float | None) -> Reply:
        """Run ``command`` with an archive stream (see ``flare_ports.Transport.upload``)."""
        return self._exchange(command, chunks, None)

    def download(self, command: Command, sink: ChunkSink, timeout: float | None) -> Reply:
        """Run a download command and stream its archive into ``sink``."""
        return self._exchange(command, None, sink)


class LocalTransport(InProcessCalls):
    """A transport calling ``backend`` in-process on the real clock (sync and async ports).

    Logs in at construction. Thread-safe.

    Args:
        backend: the system to talk to (e.g. an ``NVFlareBackend``).
        user: the user to log in as.
        api_key: the user's API key, if the backend wants one.
        study: the study to bind the session to.

    Raises:
        AuthenticationError, NoConnection: the backend rejected or could not make the login.
    """

    def __init__(
        self, backend: Backend, *, user: str, api_key: str | None = None, study: str = "default"
    ) -> None:
        self._backend = backend
        self._changed: set[str] = set()
        self._cond = threading.Condition()
        self._closed = False
        self._token = backend.login(user, api_key, study).token
        self._unsubscribe = backend.subscribe(self._on_event)

    # --- Transport (call/upload/download: InProcessCalls) -------------------------------

    def monotonic(self) -> float:
        """The real monotonic clock."""
        return time.monotonic()

    def sleep(self, seconds: float, wake_on: str | None) -> bool:
        """Sleep ``seconds``, returning True as soon as ``wake_on``'s job changed."""
        with self._cond:
            self._cond.wait_for(
                lambda: self._closed or self._woken(wake_on), timeout=max(0.0, seconds)
            )
            if self._woken(wake_on):
                if wake_on == ANY_JOB:
                    self._changed.clear()
                else:
                    self._changed.discard(str(wake_on))
                return True
            return False

    def _woken(self, wake_on: str | None) -> bool:
        # Called with the condition held.
        if wake_on == ANY_JOB:
            return bool(self._changed)
        return wake_on is not None and wake_on in self._changed

    def close(self) -> None:
        """Stop listening to job events; later calls raise ``NoConnection``. Idempotent."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        self._unsubscribe()

    # --- AsyncTransport ---------------------------------------------------------------------

    async def acall(self, command: Command, timeout: float | None) -> Reply:
        """Async ``call`` (on a worker thread)."""
        return await asyncio.to_thread(self.call, command, timeout)

    async def aupload(
        self, command: Command, chunks: AsyncIterable[bytes], timeout: float | None
    ) -> Reply:
        """Async ``upload``: the worker thread pulls the chunks from this loop one by one."""
        loop = asyncio.get_running_loop()
        source = chunks.__aiter__()

        async def next_chunk() -> bytes:
            return await anext(source)

        def pull() -> Iterator[bytes]:
            while True:
                try:
                    yield asyncio.run_coroutine_threadsafe(next_chunk(), loop).result()
                except StopAsyncIteration:
                    return

        return await asyncio.to_thread(self.upload, command, pull(), timeout)

    async def adownload(self, command: Command, sink: ChunkSink, timeout: float | None) -> Reply:
        """Async ``download`` (on a worker thread)."""
        return await asyncio.to_thread(self.download, command, sink, timeout)

    async def asleep(self, seconds: float, wake_on: str | None) -> bool:
        """Async ``sleep`` (on a worker thread, woken by job events)."""
        return await asyncio.to_thread(self.sleep, seconds, wake_on)

    async def aclose(self) -> None:
        """Async ``close``."""
        self.close()

    # --- internals --------------------------------------------------------------------------

    def _on_event(self, event: JobEvent) -> None:
        with self._cond:
            self._changed.add(event.job_id)
            self._cond.notify_all()

    def _exchange(
        self, command: Command, upload: Iterable[bytes] | None, sink: ChunkSink | None
    ) -> Reply:
        with self._cond:
            if self._closed:
                raise NoConnection("transport is closed")
            self._changed.clear()  # events seen before this call are reflected in its reply
        reply = exchange(self._backend, self._token, command, upload, sink)
        if isinstance(reply, Problem) and reply.code == _NO_CONNECTION:
            raise NoConnection(reply.message or "cannot connect to server")
        return reply
