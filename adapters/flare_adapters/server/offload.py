"""The server's ``Offload`` port: CPU-heavy handler work in a worker process of its own.

A shell command's file work (scanning up to ``MAX_SCAN_BYTES`` of a log, matching a pattern,
listing a tree) is bounded but pure Python. Run in a thread it holds the GIL in 5 ms slices
(0.5 ms under ``flare-core serve``) against the event loop, and every other user's request
waits behind it: the fairness phase of ``make soak`` measured a p99 above its 50 ms goal that
way (issue 10). In another process it costs the loop nothing but the pickling of a small call
and of its bounded reply (at most ``MAX_OUTPUT_BYTES``).

One worker, started on first use (most servers never run a shell command), serves one call at
a time: with the event loop it makes two busy processes, which is what the machines the
server targets have cores for. Workers fork from multiprocessing's fork server, which has
the shell's modules loaded: forking the server itself is unsafe (its threads may hold locks)
and a spawned interpreter takes seconds to import them on a loaded machine, which the first
shell command would wait out. The fork server starts once per process, so the servers of a
test run share it. A call that cannot be pickled runs in the calling thread, as it did
before. The worker leaves when the server's process goes, however it goes (a SIGKILL
included): it watches the server's pid.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Final, TypeVar

from flare_core import InternalError

__all__ = ["ProcessOffload"]

T = TypeVar("T")

logger = logging.getLogger("flare_adapters.server")

_SERVER_POLL: Final = 1.0
"""Seconds between the worker's checks that the server process still exists."""

_PRELOAD: Final = ("flare_core.shell", "flare_adapters.disk_workspaces", __name__)
"""What the fork server imports once, so a worker forked from it runs its first call at once."""


class ProcessOffload:
    """Runs ``Offload`` work in one spawned worker process (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._closed = False
        self._worker_calls = 0

    @property
    def worker_calls(self) -> int:
        """How many calls the worker process ran (the calling thread's fallbacks excluded)."""
        return self._worker_calls

    def run(self, work: Callable[[], T]) -> T:
        """Run ``work`` in the worker and return its value, or raise what it raised.

        Raises:
            InternalError: the worker process died during the call (the next call starts a
                new one), or the offload was closed.
        """
        try:
            payload = pickle.dumps(work, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError):
            logger.debug("offload: %r cannot be pickled; running it in this thread", work)
            return work()
        pool = self._ready_pool()
        try:
            result: T = pool.submit(_call, payload).result()
        except BrokenProcessPool as exc:
            self._discard(pool)
            raise InternalError("the worker process running the command stopped") from exc
        finally:
            with self._lock:
                self._worker_calls += 1
        return result

    def close(self) -> None:
        """Stop the worker (idempotent); later calls raise ``InternalError``."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def _ready_pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._closed:
                raise InternalError("the server is stopping")
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=1,
                    mp_context=_context(),
                    initializer=_watch_server,
                    initargs=(os.getpid(),),
                )
            return self._pool

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=True, cancel_futures=True)  # quick: its worker is dead


def _context() -> multiprocessing.context.BaseContext:
    context = multiprocessing.get_context("forkserver")
    # Effective only before this process's fork server starts; later calls change nothing.
    context.set_forkserver_preload(list(_PRELOAD))
    return context


def _call(payload: bytes) -> Any:
    """In the worker: unpickle the call and run it."""
    work: Callable[[], Any] = pickle.loads(payload)
    return work()


def _watch_server(server: int) -> None:
    """In the worker: exit once the server process is gone, however it went. A SIGKILL may
    leave the worker's pipes open (the fork server and the worker hold each other's), and an
    orphan must not outlive its server; a killed server not yet reaped counts as gone."""

    def watch() -> None:
        while _running(server):
            threading.Event().wait(_SERVER_POLL)
        os._exit(0)

    threading.Thread(target=watch, name="offload-server-watch", daemon=True).start()


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process took the number: ours is gone
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b") ", 1)[1][:1] != b"Z"
    except OSError:  # no procfs: the signal probe is all there is
        return True
