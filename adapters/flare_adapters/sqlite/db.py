"""One SQLite database file: durable settings, the schema, and serialised transactions.

The database runs in WAL mode with ``synchronous=FULL``: a transaction that returned has been
fsynced to the write-ahead log, so it survives ``kill -9`` and power loss. One connection is
shared by every store and guarded by a re-entrant lock (the service may call from executor
threads; SQLite connections are not safe for concurrent use).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

__all__ = ["SCHEMA_VERSION", "Database"]

# Index changes are not version bumps: ``CREATE/DROP INDEX IF EXISTS`` on every open migrates
# a database either way, and older code still opens a database this code has touched.
SCHEMA_VERSION: Final = 1

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    study TEXT NOT NULL,
    submit_time REAL NOT NULL,
    name_lower TEXT,
    finished INTEGER NOT NULL,
    meta BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_study_time ON jobs (study, submit_time);
-- (study, name_lower, submit_time) covers a study's name-prefix range together with the time
-- order (and the rowid, the tie-break, which every index ends with), so the newest N matches
-- are picked from the index alone. It supersedes (study, name_lower), dropped below.
CREATE INDEX IF NOT EXISTS jobs_by_study_name_time ON jobs (study, name_lower, submit_time);
DROP INDEX IF EXISTS jobs_by_study_name;
CREATE INDEX IF NOT EXISTS jobs_by_name ON jobs (name_lower);
CREATE INDEX IF NOT EXISTS jobs_unfinished ON jobs (submit_time) WHERE finished = 0;
-- The live jobs by status (the status lives in the JSON meta): the scheduler's waiting jobs
-- are found without reading the running ones (``SqliteJobStore.unfinished``).
CREATE INDEX IF NOT EXISTS jobs_unfinished_by_status
    ON jobs (json_extract(CAST(meta AS TEXT), '$.status'), submit_time) WHERE finished = 0;

CREATE TABLE IF NOT EXISTS tokens (
    scope_key TEXT PRIMARY KEY,
    job_id TEXT NOT NULL,
    record BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS tokens_by_job ON tokens (job_id);

CREATE TABLE IF NOT EXISTS studies (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    registry BLOB NOT NULL
);

CREATE TABLE IF NOT EXISTS disabled_sites (
    name TEXT PRIMARY KEY
);

CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY,
    last_seen REAL NOT NULL,
    record BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_last_seen ON sessions (last_seen);
"""


class _Reading:
    """``Database.reading()``: a plain context manager, since every store read takes it (a
    ``contextmanager`` generator costs ~2 us a use). It keeps no state of its own, so nested
    and concurrent reads share one."""

    __slots__ = ("_conn", "_lock")

    def __init__(self, lock: threading.RLock, conn: sqlite3.Connection) -> None:
        self._lock = lock
        self._conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self._lock.acquire()
        return self._conn

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


class Database:
    """A SQLite file opened for durable, serialised use.

    Args:
        path: the database file (created with the schema when missing).
        busy_timeout: seconds to wait for another process's lock before failing.

    Raises:
        sqlite3.DatabaseError: the file is not a database, WAL mode is unavailable, or the
            schema is newer than this code.
    """

    def __init__(self, path: str, *, busy_timeout: float = 30.0) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._batching = False  # only read or set by the thread holding _lock
        # isolation_level=None: we issue BEGIN/COMMIT ourselves (explicit, IMMEDIATE).
        self._conn = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=busy_timeout
        )
        try:
            self._configure()
        except BaseException:
            self._conn.close()
            raise
        self._reading = _Reading(self._lock, self._conn)

    def _configure(self) -> None:
        conn = self._conn
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise sqlite3.DatabaseError(f"cannot enable WAL mode (got {mode!r})")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(
                f"database schema version {version} is newer than supported {SCHEMA_VERSION}"
            )
        with self.transaction() as tx:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    tx.execute(statement)
            tx.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Make the write transactions this thread runs inside the block one commit.

        Each ``transaction()`` inside becomes a savepoint of one transaction, begun by the
        first of them (a block that writes nothing commits nothing), so a part that raises
        is still undone on its own, and the whole is committed when the block ends, also when
        it raises: what was written stays written, as with one commit each. Until then no
        other thread reads or writes (the block holds the connection), so nobody sees the
        writes before they are durable. Nested use joins the outer batch.

        Why: one mutation of the service (a submit: its token record, the job, its dispatch
        and start) was several transactions, each a WAL commit and an fsync, in sequence.
        """
        outermost = self.begin_batch()
        try:
            yield
        finally:
            self.end_batch(outermost)

    def begin_batch(self) -> bool:
        """Enter a ``batch()`` without a generator (the service lock enters one per section):
        True when this call began it; pass that to ``end_batch``."""
        self._lock.acquire()
        if self._batching:
            return False
        self._batching = True
        return True

    def end_batch(self, outermost: bool) -> None:
        """Leave the ``batch()`` ``begin_batch`` entered; the outermost commits (and raises
        if that fails, after rolling back)."""
        try:
            if outermost:
                self._batching = False
                if self._conn.in_transaction:
                    try:
                        self._conn.execute("COMMIT")
                    except BaseException:
                        with contextlib.suppress(sqlite3.Error):
                            self._conn.execute("ROLLBACK")
                        raise
        finally:
            self._lock.release()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run a write transaction: committed when the block ends, rolled back if it raises.

        Nested use inside the same thread joins the outer transaction; inside ``batch()`` it
        is a savepoint of the batch's transaction.
        """
        with self._lock:
            if self._batching:
                if not self._conn.in_transaction:
                    self._conn.execute("BEGIN IMMEDIATE")
                self._conn.execute("SAVEPOINT part")
                try:
                    yield self._conn
                except BaseException:
                    self._conn.execute("ROLLBACK TO part")
                    self._conn.execute("RELEASE part")
                    raise
                self._conn.execute("RELEASE part")
                return
            if self._conn.in_transaction:
                yield self._conn
                return
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def hold(self, blocking: bool = True) -> bool:
        """Take the connection for this thread's reads until ``release_hold()``: the reads
        inside re-enter it. With ``blocking=False``, answer False at once when another thread
        has it (a section that must never wait: ``CommittingLock.acquire``)."""
        return self._lock.acquire(blocking)

    def release_hold(self) -> None:
        """Give back the connection ``hold()`` took."""
        self._lock.release()

    def reading(self) -> _Reading:
        """Run reads under the lock (each statement sees one consistent snapshot)."""
        return self._reading

    def close(self) -> None:
        """Checkpoint the WAL and close the connection (idempotent)."""
        with self._lock:
            try:
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.ProgrammingError:
                return  # already closed
            self._conn.close()
