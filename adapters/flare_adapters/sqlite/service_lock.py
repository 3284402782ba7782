"""The service lock of a SQLite-backed server: holding it makes one commit of the writes.

``AdminService`` does every mutation under its lock (``flare_core.service.ports.Lock``), and
one mutation writes several rows: a submit stores its token record, the job, marks the token
created, dispatches the job and starts it, and each was a transaction of its own (a WAL commit
and an fsync each, in sequence). Holding this lock opens a ``Database.batch()``: the writes
made until the outermost release are one transaction, committed as the lock is released,
which is before the service delivers the section's events or the command replies. So every
acknowledged mutation is still on disk before its reply (durability as before, one fsync
instead of several), and readers on other threads never see it uncommitted: the batch holds
the connection until it commits.
"""

from __future__ import annotations

import contextlib
import threading
from types import TracebackType

from flare_adapters.sqlite.db import Database

__all__ = ["CommittingLock"]


class CommittingLock:
    """A re-entrant lock that batches ``db``'s writes while held (see the module docstring)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._lock = threading.RLock()
        self._depth = 0  # only touched by the holder
        self._batch: contextlib.ExitStack | None = None

    def __enter__(self) -> CommittingLock:
        self._lock.acquire()
        if self._depth == 0:
            stack = contextlib.ExitStack()
            try:
                stack.enter_context(self._db.batch())
            except BaseException:
                self._lock.release()
                raise
            self._batch = stack
        self._depth += 1
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._depth -= 1
        try:
            if self._depth == 0 and self._batch is not None:
                batch, self._batch = self._batch, None
                batch.close()  # commits (and raises if the commit fails)
        finally:
            self._lock.release()
