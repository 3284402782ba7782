"""``JobStore.query`` behaves the same over memory and SQLite, including ``newest``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flare_adapters.memory.stores import MemoryJobStore
from flare_adapters.sqlite.db import Database
from flare_adapters.sqlite.stores import SqliteJobStore
from flare_core.service.ports import JobStore


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JobStore]:
    if request.param == "memory":
        yield MemoryJobStore()
        return
    db = Database(str(tmp_path / "jobs.sqlite3"))
    yield SqliteJobStore(db)
    db.close()


def _job(i: int, *, study: str = "default", name: str = "job", when: float | None = None) -> Any:
    return {
        "job_id": str(uuid.UUID(int=i, version=4)),
        "name": name,
        "study": study,
        "status": "SUBMITTED",
        "submit_time": float(i) if when is None else when,
    }


def _ids(metas: list[dict[str, Any]]) -> list[int]:
    return [uuid.UUID(m["job_id"]).int & 0xFFFF for m in metas]


def test_query_returns_oldest_first(store: JobStore) -> None:
    for i in (3, 1, 2):
        store.add(_job(i))
    assert _ids(store.query(study="default")) == [1, 2, 3]


def test_newest_keeps_the_most_recent_matches_oldest_first(store: JobStore) -> None:
    for i in range(1, 21):
        store.add(_job(i, study="default" if i % 2 else "other"))
    assert _ids(store.query(study="default", newest=3)) == [15, 17, 19]
    assert _ids(store.query(study="other", newest=100)) == list(range(2, 21, 2))


def test_newest_applies_after_prefix_filters(store: JobStore) -> None:
    for i in range(1, 11):
        store.add(_job(i, name="alpha" if i <= 4 else "beta"))
    assert _ids(store.query(name_prefix="ALP", newest=2)) == [3, 4]
    assert store.query(name_prefix="gamma", newest=2) == []


def test_newest_equals_the_tail_of_the_full_query(store: JobStore) -> None:
    # Equal submit times: the cut must pick the same jobs the full, ordered query ends with.
    for i in range(1, 9):
        store.add(_job(i, when=100.0))
    full = store.query(study="default")
    assert store.query(study="default", newest=3) == full[-3:]


def test_equal_submit_times_keep_submission_order(store: JobStore) -> None:
    # Issue 10, item 10: ties go by insertion (the submission sequence) in every store,
    # whatever the job ids, so a listing is a total order that reverses exactly.
    for i in (9, 2, 5):
        store.add(_job(i, when=100.0))
    store.update(str(uuid.UUID(int=2, version=4)), {"status": "RUNNING"})  # keeps its place
    assert _ids(store.query(study="default")) == [9, 2, 5]
    assert _ids(store.query(study="default", newest=2)) == [2, 5]


def test_prefix_cuts_match_the_memory_store_past_the_recent_window(tmp_path: Path) -> None:
    # SQLite answers a limited prefix listing from the newest few hundred jobs when they hold
    # enough matches, else from the prefix's key range: both must give the memory store's
    # jobs in its order, ties in submit time included (hence 3 jobs per instant).
    memory = MemoryJobStore()
    db = Database(str(tmp_path / "jobs.sqlite3"))
    sqlite = SqliteJobStore(db)
    try:
        for i in range(1500):
            name = "rare-old" if i < 30 and i % 3 else f"job-{i % 7}"
            job_id = str(uuid.UUID(int=(i * 0x9E3779B97F4A7C15) % 2**128, version=4))
            meta = {**_job(i, name=name, when=float(i // 3)), "job_id": job_id}
            memory.add(dict(meta))
            sqlite.add(dict(meta))
        cases: tuple[dict[str, str], ...] = (
            {"name_prefix": "JOB-"},  # common: the recent window has enough
            {"name_prefix": "job-3"},
            {"name_prefix": "rare"},  # only old jobs: the key range
            {"name_prefix": "none"},
            {"id_prefix": "a"},
            {"id_prefix": "ab"},
            {"id_prefix": "abc"},
            {"id_prefix": "a", "name_prefix": "rare"},
        )
        for case in cases:
            id_prefix, name_prefix = case.get("id_prefix"), case.get("name_prefix")
            for newest in (1, 3, 20, 100):
                want = memory.query(
                    study="default", id_prefix=id_prefix, name_prefix=name_prefix, newest=newest
                )
                got = sqlite.query(
                    study="default", id_prefix=id_prefix, name_prefix=name_prefix, newest=newest
                )
                assert got == want, (case, newest)
                full = memory.query(study="default", id_prefix=id_prefix, name_prefix=name_prefix)
                assert want == full[-newest:] if full else want == []
    finally:
        db.close()
