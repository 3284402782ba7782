"""``Database.batch`` and the committing service lock: one commit per locked section."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flare_adapters.sqlite.db import Database
from flare_adapters.sqlite.service_lock import CommittingLock
from flare_adapters.sqlite.stores import SqliteJobStore, SqliteSiteStore


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(str(tmp_path / "flare.db"))
    yield database
    database.close()


def _meta(job_id: str, **extra: Any) -> dict[str, Any]:
    return {"job_id": job_id, "status": "SUBMITTED", "submit_time": 1.0, **extra}


def _committed_jobs(db: Database) -> list[str]:
    """What another process would see: only committed rows."""
    outside = sqlite3.connect(db.path)
    try:
        return [row[0] for row in outside.execute("SELECT job_id FROM jobs ORDER BY job_id")]
    finally:
        outside.close()


def _commits(db: Database) -> list[str]:
    # Count the COMMIT statements the connection runs (each one is a WAL commit and fsync).
    seen: list[str] = []
    with db.reading() as conn:
        conn.set_trace_callback(lambda sql: seen.append(sql) if sql == "COMMIT" else None)
    return seen


def test_the_writes_of_a_batch_are_one_commit_at_its_end(db: Database) -> None:
    jobs = SqliteJobStore(db)
    commits = _commits(db)
    with db.batch():
        jobs.add(_meta("a"))
        jobs.update("a", {"status": "DISPATCHED"})
        jobs.add(_meta("b"))
        assert jobs.get("a") == _meta("a", status="DISPATCHED")  # reads see the batch
        assert _committed_jobs(db) == []  # nobody else does, until it is durable
        assert commits == []
    assert commits == ["COMMIT"]
    assert _committed_jobs(db) == ["a", "b"]


def test_a_batch_that_writes_nothing_commits_nothing(db: Database) -> None:
    jobs = SqliteJobStore(db)
    commits = _commits(db)
    with db.batch():
        assert jobs.get("a") is None
    assert commits == []


def test_a_failing_part_is_undone_alone_and_an_escaping_error_keeps_the_rest(
    db: Database,
) -> None:
    jobs = SqliteJobStore(db)

    def failing_part() -> None:
        with db.transaction() as tx:
            tx.execute("INSERT INTO disabled_sites (name) VALUES ('x')")
            raise RuntimeError("part")

    def section() -> None:
        with db.batch():
            jobs.add(_meta("kept"))
            with pytest.raises(KeyError):
                jobs.add(_meta("kept", name="duplicate"))  # its own part: rolled back alone
            with pytest.raises(RuntimeError, match="part"):
                failing_part()
            jobs.add(_meta("also kept"))
            raise RuntimeError("later")  # as with one commit each, what was written stays

    with pytest.raises(RuntimeError, match="later"):
        section()
    assert _committed_jobs(db) == ["also kept", "kept"]
    assert "name" not in (jobs.get("kept") or {})
    assert SqliteSiteStore(db).disabled() == frozenset()


def test_the_lock_commits_once_at_the_outermost_release(db: Database) -> None:
    jobs = SqliteJobStore(db)
    lock = CommittingLock(db)
    commits = _commits(db)
    with lock:
        jobs.add(_meta("a"))
        with lock:  # re-entrant, as the service's engine callbacks need
            jobs.update("a", {"status": "RUNNING"})
        assert commits == []
        assert _committed_jobs(db) == []
    assert commits == ["COMMIT"]
    assert _committed_jobs(db) == ["a"]


def test_another_thread_reads_only_committed_state(db: Database) -> None:
    jobs = SqliteJobStore(db)
    lock = CommittingLock(db)
    seen: list[dict[str, Any] | None] = []
    written = threading.Event()

    def reader() -> None:
        written.wait()
        seen.append(jobs.get("a"))  # waits for the connection: the batch holds it

    thread = threading.Thread(target=reader)
    thread.start()
    with lock:
        jobs.add(_meta("a"))
        written.set()
        jobs.update("a", {"status": "RUNNING"})
    thread.join()
    assert seen == [_meta("a", status="RUNNING")]
