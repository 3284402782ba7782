"""SQLite stores, the blob directory and crash recovery."""

from __future__ import annotations

import errno
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import msgspec
import pytest

from flare_adapters.spooled_file import SpooledFile
from flare_adapters.sqlite import blobs as blobs_module
from flare_adapters.sqlite.blobs import BlobDirectory
from flare_adapters.sqlite.db import SCHEMA_VERSION, Database
from flare_adapters.sqlite.recovery import collect_orphans, recover_jobs
from flare_adapters.sqlite.service_lock import CommittingLock
from flare_adapters.sqlite.stores import (
    SqliteJobStore,
    SqliteSessionStore,
    SqliteSiteStore,
    SqliteStudyStore,
    SqliteTokenStore,
)
from flare_adapters.zipsafe import ZipLimits
from flare_core.errors import InvalidJobDefinition
from flare_core.principal import Principal
from flare_core.service.ports import SCRATCH_PREFIX, SessionRecord
from flare_core.studies import Study, StudyRegistry
from flare_core.tokens import TokenRecord, TokenScope
from tests.server.server_kit import hello_zip, make_zip
from tests.service.helpers import held_elsewhere


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(str(tmp_path / "flare.db"))
    yield database
    database.close()


def _meta(job_id: str, **extra: Any) -> dict[str, Any]:
    return {"job_id": job_id, "status": "SUBMITTED", "submit_time": 1.0, **extra}


def _id(n: int) -> str:
    return f"{n:08x}-0000-4000-8000-000000000000"


# --- database -------------------------------------------------------------------------------


def test_database_is_durable_wal(db: Database) -> None:
    with db.reading() as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "future.db")
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(sqlite3.DatabaseError, match="newer"):
        Database(path)


def test_a_failed_transaction_rolls_back(db: Database) -> None:
    jobs = SqliteJobStore(db)

    def failing() -> None:
        with db.transaction() as tx:
            tx.execute("INSERT INTO disabled_sites (name) VALUES ('x')")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        failing()
    assert SqliteSiteStore(db).disabled() == frozenset()
    jobs.add(_meta(_id(1)))
    assert jobs.get(_id(1)) is not None


def test_close_is_idempotent(tmp_path: Path) -> None:
    database = Database(str(tmp_path / "x.db"))
    database.close()
    database.close()


# --- batches: one commit per service-lock section -----------------------------------------


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


def test_a_read_only_section_takes_the_lock_only_when_all_of_it_is_free(db: Database) -> None:
    # ``acquire(False)``, as ``AdminService.serve_at_once`` takes it on the event loop: the
    # service lock and the connection, or neither; nothing to commit either way.
    jobs = SqliteJobStore(db)
    lock = CommittingLock(db)
    commits = _commits(db)
    with lock:
        jobs.add(_meta("a"))

    def elsewhere() -> bool:  # whether another thread gets it now
        got: list[bool] = []

        def attempt() -> None:
            got.append(lock.acquire(False))
            if got[0]:
                lock.release()

        thread = threading.Thread(target=attempt)
        thread.start()
        thread.join()
        return got[0]

    with held_elsewhere(db.reading):  # a listing page, read outside the service lock
        assert not lock.acquire(False)
    with held_elsewhere(lambda: lock):  # a write section
        assert not lock.acquire(False)
    assert elsewhere()  # the failed attempts left nothing held
    assert lock.acquire(False)
    try:
        assert jobs.get("a") == _meta("a")
        assert not elsewhere()
        assert lock.acquire(False)  # re-entrant on its own thread
        lock.release()
    finally:
        lock.release()
    assert elsewhere()
    assert commits == ["COMMIT"]  # the write's; the read-only sections commit nothing


# --- jobs ------------------------------------------------------------------------------------


def test_job_store_crud_returns_copies(db: Database) -> None:
    jobs = SqliteJobStore(db)
    meta = _meta(_id(1), name="Alpha", nested={"a": [1]})
    jobs.add(meta)
    with pytest.raises(KeyError):
        jobs.add(meta)
    got = jobs.get(_id(1))
    assert got == meta
    assert got is not None
    got["nested"]["a"].append(2)
    assert jobs.get(_id(1)) == meta
    updated = jobs.update(_id(1), {"status": "RUNNING"})
    assert updated is not None
    assert updated["status"] == "RUNNING"
    assert jobs.update(_id(9), {"status": "RUNNING"}) is None
    assert jobs.remove(_id(1)) is True
    assert jobs.remove(_id(1)) is False
    assert jobs.get(_id(1)) is None


def _short(rows: list[dict[str, Any]]) -> list[str]:
    return [str(row["job_id"])[:3] for row in rows]


def test_job_store_queries(db: Database) -> None:
    jobs = SqliteJobStore(db)
    jobs.add(_meta("abc00000-0000-4000-8000-000000000001", name="Alpha", submit_time=3.0))
    jobs.add(_meta("abd00000-0000-4000-8000-000000000002", name="beta", study="s1"))
    jobs.add(_meta("ffe00000-0000-4000-8000-000000000003", name="ALPINE", study=""))
    jobs.add(_meta("ffe00000-0000-4000-8000-000000000004", status="FINISHED:COMPLETED"))
    assert _short(jobs.query(study="default")) == ["ffe", "ffe", "abc"]  # by submit time
    assert _short(jobs.query(study="s1")) == ["abd"]
    assert _short(jobs.query(id_prefix="AB")) == ["abd", "abc"]
    assert _short(jobs.query(name_prefix="alp")) == ["ffe", "abc"]
    assert _short(jobs.query(study="default", name_prefix="ALPI")) == ["ffe"]
    assert jobs.query(name_prefix="zzz") == []
    assert jobs.count("default") == 3
    assert jobs.count("s1") == 1
    assert len(jobs.unfinished()) == 3
    assert jobs.job_ids() == {r["job_id"] for r in jobs.query()}


def test_status_updates_move_jobs_out_of_unfinished(db: Database) -> None:
    jobs = SqliteJobStore(db)
    jobs.add(_meta(_id(1)))
    jobs.update(_id(1), {"status": "FINISHED:ABORTED"})
    assert jobs.unfinished() == []
    jobs.update(_id(1), {"study": "s2", "name": "Renamed"})
    assert [m["job_id"] for m in jobs.query(study="s2", name_prefix="ren")] == [_id(1)]


def test_listing_uses_indexes(db: Database) -> None:
    def plan(sql: str, *params: object) -> str:
        with db.reading() as conn:
            rows = conn.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
        return " ".join(str(row[-1]) for row in rows)

    assert "jobs_by_study_time" in plan(
        "SELECT meta FROM jobs WHERE study = ? ORDER BY submit_time, job_id", "default"
    )
    assert "SEARCH jobs USING INDEX sqlite_autoindex_jobs_1 (job_id>? AND job_id<?)" in plan(
        "SELECT meta FROM jobs WHERE job_id >= ? AND job_id < ?", "ab", "ab\U0010ffff"
    )
    assert "COVERING INDEX jobs_by_study_name_time" in plan(
        "SELECT rowid FROM jobs WHERE study = ? AND name_lower >= ? AND name_lower < ?"
        " ORDER BY submit_time DESC, rowid DESC LIMIT 20",
        "default",
        "a",
        "a\U0010ffff",
    )
    assert "jobs_by_study_name_time" in plan(
        "SELECT meta FROM jobs WHERE study = ? AND name_lower >= ? AND name_lower < ?",
        "default",
        "a",
        "a\U0010ffff",
    )
    assert "jobs_unfinished" in plan(
        "SELECT meta FROM jobs WHERE finished = 0 ORDER BY submit_time"
    )


def test_listing_queries_are_exact_at_100k_jobs(db: Database) -> None:
    encode = msgspec.json.encode
    rows = []
    for n in range(100_000):
        study = "big" if n % 10 else "small"
        meta = _meta(_id(n), name=f"job-{n}", study=study, submit_time=float(n))
        rows.append((_id(n), study, float(n), f"job-{n}", 0, encode(meta)))
    with db.transaction() as tx:
        tx.executemany(
            "INSERT INTO jobs (job_id, study, submit_time, name_lower, finished, meta)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
    jobs = SqliteJobStore(db)
    by_prefix = jobs.query(study="big", id_prefix=_id(54321)[:8])
    by_name = jobs.query(study="small", name_prefix="JOB-9999")
    small = jobs.query(study="small")
    assert [m["job_id"] for m in by_prefix] == [_id(54321)]
    assert [m["name"] for m in by_name] == ["job-99990"]
    assert len(small) == 10_000
    assert [m["submit_time"] for m in small[:2]] == [0.0, 10.0]
    assert jobs.count("big") == 90_000
    newest = jobs.query(study="big", newest=3)
    assert [m["submit_time"] for m in newest] == [99997.0, 99998.0, 99999.0]
    # Speed at this size is a benchmark goal (``make bench``), not a timed assertion here.


# --- tokens, studies, sites ------------------------------------------------------------------


def _record(
    token: str, job_id: str, state: Literal["creating", "created", "job_deleted"] = "creating"
) -> TokenRecord:
    scope = TokenScope(
        study="default",
        submitter_name="a",
        submitter_org="o",
        submitter_role="lead",
        token=token,
    )
    return TokenRecord(
        scope=scope,
        state=state,
        job_id=job_id,
        job_name="n",
        job_folder_name="f",
        job_content_hash="sha256:x",
        submit_time="t",
    )


def test_token_store(db: Database) -> None:
    tokens = SqliteTokenStore(db)
    first = _record("t1", _id(1))
    assert tokens.create(first) is True
    assert tokens.create(_record("t1", _id(2))) is False
    assert tokens.get(first.scope) == first
    created = msgspec.structs.replace(first, state="created")
    tokens.put(created)
    assert tokens.get(first.scope) == created
    tokens.put(_record("t2", _id(1)))
    assert {r.scope.token for r in tokens.for_job(_id(1))} == {"t1", "t2"}
    assert tokens.for_job(_id(3)) == []
    session_scope = msgspec.structs.replace(first.scope, kind="session")
    assert tokens.get(session_scope) is None


def test_study_and_site_stores(db: Database) -> None:
    studies = SqliteStudyStore(db)
    assert studies.load() is None
    registry = StudyRegistry(studies={"s1": Study(site_orgs={"nvidia": ["site-1"]}, admins=["a"])})
    studies.save(registry)
    assert studies.load() == registry
    sites = SqliteSiteStore(db)
    sites.set_disabled("site-1", True)
    sites.set_disabled("site-1", True)
    sites.set_disabled("site-2", True)
    sites.set_disabled("site-2", False)
    assert sites.disabled() == frozenset({"site-1"})


def test_everything_survives_a_reopen(tmp_path: Path) -> None:
    path = str(tmp_path / "flare.db")
    first = Database(path)
    SqliteJobStore(first).add(_meta(_id(1)))
    SqliteTokenStore(first).create(_record("t", _id(1)))
    SqliteSiteStore(first).set_disabled("site-9", True)
    principal = Principal(name="u", org="o", role="lead", session_id="s")
    SqliteSessionStore(first).put(SessionRecord(session_id="s", principal=principal, last_seen=5))
    first.close()
    second = Database(path)
    try:
        assert SqliteJobStore(second).get(_id(1)) is not None
        assert SqliteTokenStore(second).get(_record("t", _id(1)).scope) is not None
        assert SqliteSiteStore(second).disabled() == frozenset({"site-9"})
        session = SqliteSessionStore(second).get("s")
        assert session is not None
        assert session.principal == principal
    finally:
        second.close()


# --- sessions ----------------------------------------------------------------------------------


def _session(session_id: str, last_seen: float) -> SessionRecord:
    principal = Principal(name="u", org="o", role="lead", session_id=session_id)
    return SessionRecord(session_id=session_id, principal=principal, last_seen=last_seen)


def _persisted(db: Database, session_id: str) -> float | None:
    with db.reading() as conn:
        row = conn.execute(
            "SELECT last_seen FROM sessions WHERE session_id = ?", (session_id,)
        ).fetchone()
    return None if row is None else float(row[0])


def test_session_refreshes_are_persisted_coarsely(db: Database) -> None:
    sessions = SqliteSessionStore(db, persist_every=5.0)
    sessions.put(_session("a", 100.0))
    assert _persisted(db, "a") == 100.0
    sessions.put(_session("a", 103.0))
    assert sessions.get("a") == _session("a", 103.0)  # reads see every refresh
    assert _persisted(db, "a") == 100.0  # the disk lags by less than persist_every
    sessions.put(_session("a", 106.0))
    assert _persisted(db, "a") == 106.0
    sessions.remove("a")
    assert sessions.get("a") is None
    assert _persisted(db, "a") is None
    sessions.remove("a")


def test_session_purges(db: Database) -> None:
    sessions = SqliteSessionStore(db)
    for name, seen in (("old", 10.0), ("new", 50.0), ("future", 900.0)):
        sessions.put(_session(name, seen))
    assert sessions.purge(idle_before=20.0) == 1
    assert sessions.purge_after(seen_after=100.0) == 1
    assert sessions.get("new") is not None
    assert _persisted(db, "old") is None
    assert _persisted(db, "future") is None


# --- blobs ------------------------------------------------------------------------------------


@pytest.fixture
def blobs(tmp_path: Path) -> BlobDirectory:
    return BlobDirectory(str(tmp_path / "blobs"))


def test_blob_write_read_exists_move(blobs: BlobDirectory) -> None:
    assert blobs.write("jobs/j1/job.zip", [b"ab", b"cd"]) == 4
    assert b"".join(blobs.read("jobs/j1/job.zip")) == b"abcd"
    assert blobs.exists("jobs/j1/job.zip")
    assert not blobs.exists("jobs/j1")
    assert not blobs.exists("../escape")
    blobs.move("jobs/j1/job.zip", "jobs/j2/job.zip")
    assert not blobs.exists("jobs/j1/job.zip")
    assert b"".join(blobs.read("jobs/j2/job.zip")) == b"abcd"
    with pytest.raises(KeyError):
        blobs.read("jobs/j1/job.zip")
    with pytest.raises(KeyError):
        blobs.move("nope", "x")


def test_blob_keys_may_nest_under_other_keys(blobs: BlobDirectory) -> None:
    blobs.write("a", [b"1"])
    blobs.write("a/b", [b"2"])
    blobs.write("a/b/c", [b"3"])
    assert blobs.keys("a") == ["a", "a/b", "a/b/c"]
    assert blobs.keys("a/") == ["a/b", "a/b/c"]
    assert blobs.keys("a/b/") == ["a/b/c"]
    assert blobs.keys("zz") == []
    assert b"".join(blobs.read("a")) == b"1"


def test_blob_delete_prefix_and_children(blobs: BlobDirectory) -> None:
    for key in ("jobs/j1/job.zip", "jobs/j1/workspace/s/log.txt", "jobs/j2/job.zip", "uploads/u"):
        blobs.write(key, [b"x"])
    assert blobs.children("jobs/") == ["j1", "j2"]
    assert blobs.children("missing/") == []
    assert blobs.delete_prefix("jobs/j1/") == 2
    assert blobs.keys("") == ["jobs/j2/job.zip", "uploads/u"]
    assert not os.path.exists(os.path.join(blobs.root, "data", "jobs", "j1"))
    assert blobs.delete_prefix("nothing/") == 0


def _flushes(monkeypatch: pytest.MonkeyPatch, blobs: BlobDirectory) -> list[str]:
    # The directories flushed, relative to the data root, in order ("." for the root).
    seen: list[str] = []
    real = blobs_module.fsync_dir

    def record(path: str) -> None:
        real(path)
        seen.append(os.path.relpath(path, os.path.join(blobs.root, "data")))

    monkeypatch.setattr(blobs_module, "fsync_dir", record)
    return seen


def test_blob_directories_are_flushed_after_each_write_outside_a_group(
    blobs: BlobDirectory, monkeypatch: pytest.MonkeyPatch
) -> None:
    flushed = _flushes(monkeypatch, blobs)
    blobs.write("jobs/j1/workspace/s/log.txt", [b"x"])
    # Each new directory's parent as it is created, then the file's directory.
    assert flushed == [".", "jobs", "jobs/j1", "jobs/j1/workspace", "jobs/j1/workspace/s"]


def test_a_sync_group_flushes_each_directory_once_at_its_end(
    blobs: BlobDirectory, monkeypatch: pytest.MonkeyPatch
) -> None:
    blobs.write("jobs/old/job.zip", [b"x"])
    flushed = _flushes(monkeypatch, blobs)
    with blobs.grouped_sync():
        for site in ("server", "site-1", "site-2"):
            blobs.write(f"jobs/j1/workspace/{site}/log.txt", [site.encode()])
        with blobs.grouped_sync():  # nested: joins the outer group
            blobs.copy("jobs/old/job.zip", "jobs/j1/job.zip")
            blobs.delete_prefix("jobs/old/")
        assert flushed == []  # nothing yet, though every blob reads back already
        assert b"".join(blobs.read("jobs/j1/workspace/site-1/log.txt")) == b"site-1"
    assert sorted(flushed) == sorted(
        [
            "jobs",  # j1 created, old removed
            "jobs/j1",
            "jobs/j1/workspace",
            *(f"jobs/j1/workspace/{site}" for site in ("server", "site-1", "site-2")),
        ]
    )
    assert len(flushed) == len(set(flushed))
    blobs.write("jobs/j2/job.zip", [b"y"])  # after the group: flushed at once again
    assert flushed[-2:] == ["jobs", "jobs/j2"]


def test_a_scratch_blobs_name_is_never_flushed_but_its_content_is(
    blobs: BlobDirectory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A staged upload: its directories are neither flushed when made nor when pruned; the
    # move to a kept key flushes the kept directories, and the content was flushed first.
    flushed = _flushes(monkeypatch, blobs)
    real_fsync = os.fsync
    files: list[int] = []

    def fsync(fd: int) -> None:
        files.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    blobs.write(f"{SCRATCH_PREFIX}s1/job.zip", [b"upload"])
    assert flushed == []
    assert len(files) == 1  # the content, before its rename
    blobs.move(f"{SCRATCH_PREFIX}s1/job.zip", "jobs/j1/job.zip")
    assert flushed == [".", "jobs", "jobs/j1"]
    assert b"".join(blobs.read("jobs/j1/job.zip")) == b"upload"
    assert not os.path.exists(os.path.join(blobs.root, "data", SCRATCH_PREFIX))
    blobs.write(f"{SCRATCH_PREFIX}s2/job.zip", [b"refused"])
    assert blobs.delete_prefix(f"{SCRATCH_PREFIX}s2/") == 1
    assert flushed == [".", "jobs", "jobs/j1"]


def test_a_directory_removed_inside_a_group_is_not_flushed(
    blobs: BlobDirectory, monkeypatch: pytest.MonkeyPatch
) -> None:
    flushed = _flushes(monkeypatch, blobs)
    with blobs.grouped_sync():
        blobs.write("jobs/j1/workspace/s/log.txt", [b"x"])
        blobs.delete_prefix("jobs/j1/")  # prunes every directory the write made
    assert flushed == ["."]
    assert blobs.keys("") == []


def test_the_lock_flushes_blob_directories_before_it_commits(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blobs = BlobDirectory(str(tmp_path / "blobs"))
    lock = CommittingLock(db, blobs)
    events = _commits(db)
    monkeypatch.setattr(blobs_module, "fsync_dir", lambda path: events.append("flush"))
    with lock:
        blobs.write("jobs/a/job.zip", [b"x"])
        with lock:
            SqliteJobStore(db).add(_meta("a"))
        assert events == []
    assert events == ["flush"] * 3 + ["COMMIT"]  # data/, jobs/ and jobs/a/, then the row


def test_a_failing_write_stores_nothing(blobs: BlobDirectory) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"partial"
        raise OSError("source broke")

    with pytest.raises(OSError, match="source broke"):
        blobs.write("jobs/j/job.zip", chunks())
    assert not blobs.exists("jobs/j/job.zip")
    assert os.listdir(blobs.spool_dir()) == []


def _spooled(blobs: BlobDirectory, content: bytes) -> SpooledFile:
    path = os.path.join(blobs.spool_dir(), "upload-x.zip")
    with open(path, "wb") as handle:
        handle.write(content)
    return SpooledFile(path)


def test_a_spooled_upload_is_renamed_into_place_not_copied(
    blobs: BlobDirectory, monkeypatch: pytest.MonkeyPatch
) -> None:
    spooled = _spooled(blobs, b"upload bytes")
    inode = os.stat(spooled.path).st_ino
    monkeypatch.setattr(SpooledFile, "__iter__", lambda self: pytest.fail("read back"))
    assert blobs.write("uploads/s/job.zip", spooled) == len(b"upload bytes")
    assert spooled.taken
    assert not os.path.exists(spooled.path)
    assert b"".join(blobs.read("uploads/s/job.zip")) == b"upload bytes"
    assert os.stat(blobs._path("uploads/s/job.zip")).st_ino == inode


def test_a_spooled_upload_on_another_file_system_is_copied(
    blobs: BlobDirectory, monkeypatch: pytest.MonkeyPatch
) -> None:
    spooled = _spooled(blobs, b"far away")
    real_replace = os.replace

    def cross_device(src: str, dst: str) -> None:
        if src == spooled.path:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", cross_device)
    assert blobs.write("uploads/s/job.zip", spooled) == len(b"far away")
    assert not spooled.taken  # its owner still discards it
    assert os.path.exists(spooled.path)
    assert b"".join(blobs.read("uploads/s/job.zip")) == b"far away"


def test_a_copy_is_a_hard_link(blobs: BlobDirectory) -> None:
    blobs.write("jobs/a/job.zip", [b"archive"])
    blobs.copy("jobs/a/job.zip", "jobs/b/job.zip")
    assert (
        os.stat(blobs._path("jobs/b/job.zip")).st_ino
        == os.stat(blobs._path("jobs/a/job.zip")).st_ino
    )
    assert os.listdir(blobs.spool_dir()) == []


def test_a_copy_where_links_are_refused_copies_the_bytes(
    blobs: BlobDirectory, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(src: str, dst: str) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    blobs.write("jobs/a/job.zip", [b"archive"])
    monkeypatch.setattr(os, "link", refuse)
    blobs.copy("jobs/a/job.zip", "jobs/b/job.zip")
    assert b"".join(blobs.read("jobs/b/job.zip")) == b"archive"
    assert (
        os.stat(blobs._path("jobs/b/job.zip")).st_ino
        != os.stat(blobs._path("jobs/a/job.zip")).st_ino
    )


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b", "dir/"])
def test_unsafe_blob_keys_are_refused(blobs: BlobDirectory, key: str) -> None:
    with pytest.raises(KeyError):
        blobs.write(key, [b"x"])


def test_blob_archive_checks_the_zip(tmp_path: Path) -> None:
    blobs = BlobDirectory(str(tmp_path / "b"), ZipLimits(max_entries=2))
    blobs.write("ok.zip", [make_zip({"a.txt": b"a"})])
    view = blobs.archive("ok.zip")
    assert list(view.names()) == ["hello/a.txt"]
    blobs.write("many.zip", [hello_zip()])
    with pytest.raises(InvalidJobDefinition, match="entries"):
        blobs.archive("many.zip")
    blobs.write("junk.zip", [b"junk"])
    with pytest.raises(InvalidJobDefinition, match="not a valid zip"):
        blobs.archive("junk.zip")
    with pytest.raises(KeyError):
        blobs.archive("missing.zip")


def test_incomplete_writes_are_cleared(blobs: BlobDirectory) -> None:
    leftover = os.path.join(blobs.spool_dir(), "crashed.part")
    with open(leftover, "wb") as handle:
        handle.write(b"half")
    os.mkdir(os.path.join(blobs.spool_dir(), "dir"))
    assert blobs.clear_incomplete() == 2
    assert os.listdir(blobs.spool_dir()) == []


# --- recovery -----------------------------------------------------------------------------------


def test_recovery_marks_live_jobs_abnormal(db: Database, blobs: BlobDirectory) -> None:
    jobs = SqliteJobStore(db)
    jobs.add(_meta(_id(1), status="RUNNING", start_time="2023-11-14T22:13:20+00:00"))
    jobs.add(_meta(_id(2), status="DISPATCHED"))
    jobs.add(_meta(_id(3), status="SUBMITTED"))
    jobs.add(_meta(_id(4), status="FINISHED:COMPLETED"))
    blobs.write(f"jobs/{_id(1)}/workspace/server/log.txt", [b"earlier line\n"])
    now = 1_700_000_100.0
    assert sorted(recover_jobs(jobs, blobs, now)) == [_id(1), _id(2)]
    running = jobs.get(_id(1))
    assert running is not None
    assert running["status"] == "FINISHED:ABNORMAL"
    assert running["finish_reason"] == "the server stopped while the job was RUNNING"
    assert running["duration"] == "0:01:40"
    dispatched = jobs.get(_id(2))
    assert dispatched is not None
    assert dispatched["status"] == "FINISHED:ABNORMAL"
    assert "duration" not in dispatched  # it never started: no duration to compute
    assert [m["job_id"] for m in jobs.unfinished()] == [_id(3)]
    log = b"".join(blobs.read(f"jobs/{_id(1)}/workspace/server/log.txt")).decode()
    assert log.startswith("earlier line\n")
    assert "the server stopped while the job was RUNNING" in log
    assert recover_jobs(jobs, blobs, now) == []


def test_orphan_blobs_are_collected(db: Database, blobs: BlobDirectory) -> None:
    jobs = SqliteJobStore(db)
    jobs.add(_meta(_id(1)))
    blobs.write(f"jobs/{_id(1)}/job.zip", [b"kept"])
    blobs.write(f"jobs/{_id(2)}/job.zip", [b"orphan"])
    blobs.write(f"jobs/{_id(2)}/workspace/site-1/log.txt", [b"orphan"])
    blobs.write("uploads/abc/job.zip", [b"staged"])
    # A crash between creating a blob's directory and renaming the blob into it:
    os.makedirs(os.path.join(blobs.root, "data", "uploads", "half", "deeper"))
    assert collect_orphans(jobs.job_ids(), blobs) == 3
    assert blobs.keys("") == [f"jobs/{_id(1)}/job.zip"]
    assert os.listdir(os.path.join(blobs.root, "data")) == ["jobs"]
    assert os.listdir(os.path.join(blobs.root, "data", "jobs")) == [_id(1)]
