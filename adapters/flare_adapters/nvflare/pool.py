"""NVFlare admin sessions, one per (user, study), each used by one thread at a time.

NVFlare's ``Session`` blocks and is not thread-safe. A ``Slot`` owns one such session and a
single worker thread: calls queue on that thread (serialised), callers wait off the event loop
with a deadline, and a call that overruns its deadline abandons the slot's session and worker
(the late call finishes on its own, then that session is closed) so no later call waits behind
it. When NVFlare closes a session (server restart, expiry), the replacement is built completely
first and only then swapped in, so a half-built session is never used.

The pool keeps at most ``max_slots`` slots, closing the least recently used beyond that: a
login costs NVFlare about a second, so slots outlive the flare-core sessions that used them.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Protocol, TypeVar

from flare_adapters.nvflare.kits import KitUser
from flare_core.errors import NoConnection

__all__ = ["Pool", "SessionOpener", "Slot", "open_nvflare_session"]

T = TypeVar("T")

# NVFlare closed the session; a fresh one can run the same command (nothing was executed).
_REBUILD_ON = frozenset({"SessionClosed", "SessionExpired"})


class SessionOpener(Protocol):
    """Builds a logged-in NVFlare ``Session`` (raises what NVFlare's login raises)."""

    def __call__(self, user: KitUser, study: str, timeout: float) -> Any: ...


def open_nvflare_session(user: KitUser, study: str, timeout: float) -> Any:
    """The real opener: ``new_secure_session`` on the user's kit (the nvflare extra)."""
    from nvflare.fuel.flare_api.flare_api import new_secure_session

    return new_secure_session(user.name, user.kit, timeout=timeout, study=study)


def _close_quietly(session: Any) -> None:
    # A session being discarded may fail to close in any way; it is gone either way.
    with contextlib.suppress(Exception):
        session.close()


class Slot:
    """One NVFlare session for one (user, study) and the worker thread that uses it.

    Args:
        user: whose kit the session logs in with.
        study: the study it is bound to.
        opener: builds sessions.
        connect_timeout: seconds NVFlare may take to log in.
    """

    def __init__(
        self, user: KitUser, study: str, opener: SessionOpener, connect_timeout: float
    ) -> None:
        self.user = user
        self.study = study
        self._opener = opener
        self._connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._worker = self._new_worker()
        self._session: Any = None  # touched only on the worker thread
        self._stale = False
        self._closed = False

    def _new_worker(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"nvflare-{self.user.name}")

    def run(self, fn: Callable[[Any], T], timeout: float) -> T:
        """Run ``fn(session)`` on the slot's worker within ``timeout`` seconds.

        Raises:
            NoConnection: the call did not finish in time (the session is abandoned), or
                the slot was closed.
            Exception: whatever ``fn`` or the login raised (untranslated).
        """
        with self._lock:
            if self._closed:
                raise NoConnection("cannot connect to server: the NVFlare session pool closed")
            worker = self._worker
            future: Future[T] = worker.submit(self._call, fn)
        try:
            return future.result(timeout=max(0.0, timeout))
        except FutureTimeout:
            if not future.cancel():
                self._abandon(worker)
            raise NoConnection(
                f"cannot connect to server: NVFlare did not answer within {timeout:.1f} s"
            ) from None

    def ensure(self, timeout: float) -> None:
        """Log in now if the slot has no session (so login errors surface at login)."""
        self.run(lambda _session: None, timeout)

    def invalidate(self) -> None:
        """Mark the session stale: the next call first builds a new one (server restarted)."""
        self._stale = True

    def close(self) -> None:
        """Close the session once queued calls are done; later calls raise ``NoConnection``."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            worker = self._worker
        worker.submit(self._drop)
        worker.shutdown(wait=False)

    # --- on the worker thread -----------------------------------------------------------

    def _call(self, fn: Callable[[Any], T]) -> T:
        session = self._current()
        try:
            return fn(session)
        except Exception as exc:
            name = type(exc).__name__
            if name == "NoConnection":
                self._drop()  # reconnect on the next call
            if name not in _REBUILD_ON:
                raise
        return fn(self._replace())

    def _current(self) -> Any:
        if self._session is None or self._stale:
            return self._replace()
        return self._session

    def _replace(self) -> Any:
        # Build first, swap second: on failure the slot keeps no half-built session.
        fresh = self._opener(self.user, self.study, self._connect_timeout)
        old, self._session, self._stale = self._session, fresh, False
        if old is not None:
            _close_quietly(old)
        return fresh

    def _drop(self) -> None:
        old, self._session = self._session, None
        if old is not None:
            _close_quietly(old)

    def _abandon(self, worker: ThreadPoolExecutor) -> None:
        # The overrunning call keeps the old worker and its session; close both after it.
        with self._lock:
            if self._worker is not worker:
                return
            self._worker = self._new_worker()
            old_session, self._session = self._session, None
        if old_session is not None:
            worker.submit(_close_quietly, old_session)
        worker.shutdown(wait=False)


class Pool:
    """The NVFlare sessions of a backend, keyed by (user, study), least recently used last.

    Args:
        opener: builds sessions (``open_nvflare_session`` unless testing).
        connect_timeout: seconds a login may take.
        max_slots: how many sessions stay open at most.
    """

    def __init__(
        self, opener: SessionOpener, *, connect_timeout: float = 10.0, max_slots: int = 64
    ) -> None:
        self._opener = opener
        self._connect_timeout = connect_timeout
        self._max = max_slots
        self._lock = threading.Lock()
        self._slots: OrderedDict[tuple[str, str], Slot] = OrderedDict()

    def slot(self, user: KitUser, study: str) -> Slot:
        """The slot of ``(user, study)``, created (without logging in) when absent."""
        key = (user.name, study)
        evicted: list[Slot] = []
        with self._lock:
            slot = self._slots.get(key)
            if slot is None or slot.user != user:
                if slot is not None:
                    evicted.append(slot)
                slot = Slot(user, study, self._opener, self._connect_timeout)
                self._slots[key] = slot
            self._slots.move_to_end(key)
            while len(self._slots) > self._max:
                evicted.append(self._slots.popitem(last=False)[1])
        for old in evicted:
            old.close()
        return slot

    def discard(self, slot: Slot) -> None:
        """Forget ``slot`` (its login failed) and close it."""
        with self._lock:
            key = (slot.user.name, slot.study)
            if self._slots.get(key) is slot:
                del self._slots[key]
        slot.close()

    def slots(self) -> list[Slot]:
        """The open slots, most recently used last."""
        with self._lock:
            return list(self._slots.values())

    def invalidate_all(self) -> None:
        """Every session is stale: the NVFlare server restarted or shut down."""
        for slot in self.slots():
            slot.invalidate()

    def close(self) -> None:
        """Close every session."""
        with self._lock:
            slots, self._slots = list(self._slots.values()), OrderedDict()
        for slot in slots:
            slot.close()


def monotonic() -> float:
    """The clock deadlines are measured on."""
    return time.monotonic()
