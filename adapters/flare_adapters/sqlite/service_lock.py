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

With a blob directory, the section is also one ``BlobDirectory.grouped_sync()``: its
directory flushes run once each as the section ends, before the commit, so a committed row
still never points at a blob a crash could lose.

A section that only reads may instead ``acquire(blocking=False)`` the lock: it takes the
service lock and the connection if both are free at once, and commits nothing
(``AdminService.serve_at_once``, a read served on the server's event loop).
"""

from __future__ import annotations

import threading
from types import TracebackType

from flare_adapters.sqlite.blobs import BlobDirectory
from flare_adapters.sqlite.db import Database

__all__ = ["CommittingLock"]


class CommittingLock:
    """A re-entrant lock that batches ``db``'s writes (and ``blobs``' directory flushes)
    while held (see the module docstring).

    Each acquisition enters ``Database.batch()`` and ``BlobDirectory.grouped_sync()``, which
    join an outer one, so only the outermost release flushes and commits.
    """

    def __init__(self, db: Database, blobs: BlobDirectory | None = None) -> None:
        self._db = db
        self._blobs = blobs
        self._lock = threading.RLock()
        # One (began the batch, began the group) pair per acquisition; the holder's. Entered
        # through begin_/end_ calls, not an ExitStack of generators: every command and every
        # authentication takes this lock (the stack cost ~10 us a section).
        self._held: list[tuple[bool, bool]] = []

    def __enter__(self) -> CommittingLock:
        self._lock.acquire()
        try:
            batch = self._db.begin_batch()
        except BaseException:
            self._lock.release()
            raise
        # Entered last, so left first: its directory flushes come before the commit.
        group = self._blobs.begin_group() if self._blobs is not None else False
        self._held.append((batch, group))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        batch, group = self._held.pop()
        try:
            try:
                if self._blobs is not None:
                    self._blobs.end_group(group)
            finally:
                self._db.end_batch(batch)  # the outermost commits (and raises if that fails)
        finally:
            self._lock.release()

    def acquire(self, blocking: bool = True, timeout: float = -1, /) -> bool:
        """Take the lock for a section that only reads (the ``Lock`` port): the service lock,
        then the database connection, neither waited for unless ``blocking``. It opens no
        batch, so it has nothing to commit; ``release()`` ends it.

        Returns:
            False (and holding nothing) when another thread has either.
        """
        if not self._lock.acquire(blocking, timeout):
            return False
        if not self._db.hold(blocking):  # a reader outside the service lock (a listing page)
            self._lock.release()
            return False
        return True

    def release(self) -> None:
        """End a section ``acquire`` began."""
        try:
            self._db.release_hold()
        finally:
            self._lock.release()
