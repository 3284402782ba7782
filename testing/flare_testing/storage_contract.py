"""The storage-port contract: what every store behind ``AdminService`` must do.

A new store (PostgreSQL, say) certifies itself the way an implementation certifies itself with
the session contract suite: subclass the contract classes and provide the fixture each one
names, returning a fresh, empty store (fsspec's abstract test classes work the same way)::

    class TestMyJobs(JobStoreContract):
        @pytest.fixture
        def job_store(self) -> JobStore:
            return MyJobStore(fresh_database())

Each class covers one port of ``flare_core.service.ports``: ``JobStoreContract`` (fixture
``job_store``), ``TokenStoreContract`` (``token_store``), ``StudyStoreContract``
(``study_store``), ``SiteStoreContract`` (``site_store``), ``SessionStoreContract``
(``session_store``) and ``BlobStoreContract`` (``blob_store``). flare-core runs them over its
memory and SQLite stores (``tests/storage``).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest

from flare_core.errors import InvalidJobDefinition
from flare_core.principal import Principal
from flare_core.service.ports import (
    BlobStore,
    JobCursor,
    JobStore,
    SessionRecord,
    SessionStore,
    SiteStore,
    StudyStore,
    TokenStore,
)
from flare_core.studies import Study, StudyRegistry
from flare_core.tokens import TokenScope, new_record, tombstone

__all__ = [
    "BlobStoreContract",
    "JobStoreContract",
    "SessionStoreContract",
    "SiteStoreContract",
    "StudyStoreContract",
    "TokenStoreContract",
]


_T0 = 1_764_583_200.0  # 2025-12-01 10:00 UTC: ``submit_time`` is epoch seconds, as stored


def _job(job_id: str, at: float = 0.0, **meta: Any) -> dict[str, Any]:
    return {"job_id": job_id, "submit_time": _T0 + at, "status": "SUBMITTED", **meta}


def _ids(jobs: list[dict[str, Any]]) -> list[str]:
    return [str(job["job_id"]) for job in jobs]


def _walk(
    job_store: JobStore,
    *,
    size: int,
    study: str = "default",
    after: JobCursor | None = None,
    **options: Any,
) -> list[dict[str, Any]]:
    """Every row ``JobStore.page`` gives from ``after`` on, page after page."""
    rows: list[dict[str, Any]] = []
    for _ in range(1000):  # a store whose cursor never ends would loop forever
        page = job_store.page(study=study, size=size, after=after, **options)
        assert len(page.rows) <= size
        rows += page.rows
        if page.after is None:
            return rows
        after = page.after
    raise AssertionError("the pages never ended")


class JobStoreContract:
    """The ``JobStore`` port (fixture ``job_store``: a fresh, empty store)."""

    def test_add_get_and_copies(self, job_store: JobStore) -> None:
        job_store.add(_job("a", name="alpha", nested={"k": [1]}))
        got = job_store.get("a")
        assert got is not None
        assert got["name"] == "alpha"
        got["nested"]["k"].append(2)  # a copy: the stored meta does not change
        assert job_store.get("a") == _job("a", name="alpha", nested={"k": [1]})
        assert job_store.get("missing") is None

    def test_no_read_or_write_aliases_stored_state(self, job_store: JobStore) -> None:
        # Mutating anything handed to the store, or anything it handed out, changes nothing.
        given = _job("a", name="alpha", nested={"k": [1], "d": {"x": [2]}})
        job_store.add(given)
        given["nested"]["k"].append("from the caller's input")
        given["name"] = "changed"
        expected = _job("a", name="alpha", nested={"k": [1], "d": {"x": [2]}})
        assert job_store.get("a") == expected
        changes = {"progress": {"rounds": [1]}}
        merged = job_store.update("a", changes)
        assert merged is not None
        changes["progress"]["rounds"].append(2)
        merged["nested"]["d"]["x"].append(3)
        merged["progress"]["rounds"].append(4)
        expected["progress"] = {"rounds": [1]}
        assert job_store.get("a") == expected
        for listed in (job_store.query(), job_store.query(id_prefix="a"), job_store.unfinished()):
            assert listed == [expected]
            listed[0]["nested"]["k"].append(5)
            listed[0]["progress"]["rounds"].clear()
            listed[0]["status"] = "FINISHED:COMPLETED"
        assert job_store.get("a") == expected
        assert job_store.get("a") is not job_store.get("a")

    def test_add_twice_is_a_key_error(self, job_store: JobStore) -> None:
        job_store.add(_job("a"))
        with pytest.raises(KeyError):
            job_store.add(_job("a", name="other"))
        assert "name" not in (job_store.get("a") or {})

    def test_update_merges_and_returns_the_result(self, job_store: JobStore) -> None:
        job_store.add(_job("a", name="alpha"))
        merged = job_store.update("a", {"status": "RUNNING", "progress": {"round": 1}})
        assert merged == _job("a", name="alpha", status="RUNNING", progress={"round": 1})
        assert job_store.get("a") == merged
        assert job_store.update("missing", {"status": "RUNNING"}) is None

    def test_remove(self, job_store: JobStore) -> None:
        job_store.add(_job("a"))
        assert job_store.remove("a") is True
        assert job_store.get("a") is None
        assert job_store.remove("a") is False

    def test_query_orders_by_submit_time_with_ties_in_submission_order(
        self, job_store: JobStore
    ) -> None:
        job_store.add(_job("c", 2.0))
        for job_id in ("b2", "a1", "b1"):  # one instant: the order they were added
            job_store.add(_job(job_id, 1.0))
        assert _ids(job_store.query()) == ["b2", "a1", "b1", "c"]
        assert _ids(job_store.query(newest=2)) == ["b1", "c"]
        assert _ids(job_store.query(newest=10)) == ["b2", "a1", "b1", "c"]

    def test_pages_walk_a_study_in_listing_order_across_ties(self, job_store: JobStore) -> None:
        # Seven jobs, three at one instant (ties straddle a page boundary at size 2).
        for job_id, at in (("e", 3.0), ("a", 1.0), ("c", 2.0), ("c2", 2.0), ("c3", 2.0)):
            job_store.add(_job(job_id, at))
        job_store.add(_job("f", 4.0, study="other"))
        job_store.add(_job("g", 5.0))
        oldest_first = _ids(job_store.query(study="default"))
        assert oldest_first == ["a", "c", "c2", "c3", "e", "g"]
        for size in (1, 2, 4, 6, 50):
            assert _ids(_walk(job_store, size=size)) == oldest_first
            assert _ids(_walk(job_store, size=size, newest_first=True)) == oldest_first[::-1]

    def test_pages_filter_by_prefixes_and_ignore_other_studies(self, job_store: JobStore) -> None:
        job_store.add(_job("abc-1", 1.0, name="Hello", study="s1"))
        job_store.add(_job("abd-2", 2.0, name="help", study="s1"))
        job_store.add(_job("xyz-3", 3.0, name="hello", study="s1"))
        job_store.add(_job("abe-4", 4.0, name="hello"))
        assert _ids(_walk(job_store, study="s1", size=1, id_prefix="AB")) == ["abc-1", "abd-2"]
        assert _ids(_walk(job_store, study="s1", size=2, name_prefix="HEL")) == [
            "abc-1",
            "abd-2",
            "xyz-3",
        ]
        assert _ids(
            _walk(job_store, study="s1", size=1, name_prefix="hello", newest_first=True)
        ) == ["xyz-3", "abc-1"]
        assert _walk(job_store, study="nobody", size=3) == []

    def test_a_page_gives_copies_and_a_cursor_only_when_more_may_follow(
        self, job_store: JobStore
    ) -> None:
        for n in range(3):
            job_store.add(_job(f"j{n}", float(n), nested={"k": [n]}))
        first = job_store.page(study="default", size=2)
        assert _ids(first.rows) == ["j0", "j1"]
        assert first.after is not None
        first.rows[0]["nested"]["k"].append(9)
        assert job_store.get("j0") == _job("j0", 0.0, nested={"k": [0]})
        last = job_store.page(study="default", size=2, after=first.after)
        assert (_ids(last.rows), last.after) == (["j2"], None)

    def test_pages_see_changes_between_pages_without_repeating_a_row(
        self, job_store: JobStore
    ) -> None:
        for n in range(4):
            job_store.add(_job(f"j{n}", float(n)))
        first = job_store.page(study="default", size=2)
        job_store.remove("j0")  # already listed
        job_store.remove("j3")  # not yet listed: gone from the rest
        job_store.add(_job("j4", 9.0))  # newer than every row: listed at the end
        job_store.update("j2", {"status": "RUNNING"})
        rest = _walk(job_store, size=2, after=first.after)
        assert _ids(first.rows) + _ids(rest) == ["j0", "j1", "j2", "j4"]
        assert rest[0]["status"] == "RUNNING"

    def test_query_filters_combine(self, job_store: JobStore) -> None:
        job_store.add(_job("abc-1", 1.0, name="Hello", study="s1"))
        job_store.add(_job("abd-2", 2.0, name="help", study="s1"))
        job_store.add(_job("xyz-3", 3.0, name="hello", study="s2"))
        job_store.add(_job("abe-4", 4.0, name="hello"))  # no study: "default"
        assert _ids(job_store.query(study="s1")) == ["abc-1", "abd-2"]
        assert _ids(job_store.query(study="default")) == ["abe-4"]
        assert _ids(job_store.query(id_prefix="AB")) == ["abc-1", "abd-2", "abe-4"]
        assert _ids(job_store.query(name_prefix="HEL", study="s1")) == ["abc-1", "abd-2"]
        assert _ids(job_store.query(name_prefix="hello")) == ["abc-1", "xyz-3", "abe-4"]
        assert _ids(job_store.query(id_prefix="ab", name_prefix="help")) == ["abd-2"]

    def test_count_by_study(self, job_store: JobStore) -> None:
        job_store.add(_job("a", study="s1"))
        job_store.add(_job("b", study="s1", status="FINISHED:COMPLETED"))
        job_store.add(_job("c"))
        assert (job_store.count("s1"), job_store.count("default"), job_store.count("x")) == (
            2,
            1,
            0,
        )

    def test_count_by_status_spans_studies_and_follows_updates(self, job_store: JobStore) -> None:
        assert job_store.count_by_status() == {}
        job_store.add(_job("a", study="s1"))
        job_store.add(_job("b", status="RUNNING"))
        job_store.add(_job("c"))
        assert job_store.count_by_status() == {"SUBMITTED": 2, "RUNNING": 1}
        job_store.update("b", {"status": "FINISHED:COMPLETED"})
        job_store.remove("c")
        assert job_store.count_by_status() == {"SUBMITTED": 1, "FINISHED:COMPLETED": 1}

    def test_unfinished_oldest_first(self, job_store: JobStore) -> None:
        job_store.add(_job("late", 5.0, status="RUNNING"))
        job_store.add(_job("done", 1.0, status="FINISHED:ABORTED"))
        job_store.add(_job("early", 2.0))
        assert _ids(job_store.unfinished()) == ["early", "late"]

    def test_unfinished_by_status(self, job_store: JobStore) -> None:
        job_store.add(_job("run-late", 5.0, status="RUNNING"))
        job_store.add(_job("waiting", 3.0))
        job_store.add(_job("approved", 4.0, status="APPROVED"))
        job_store.add(_job("run-early", 1.0, status="RUNNING"))
        job_store.add(_job("done", 2.0, status="FINISHED:COMPLETED"))
        assert _ids(job_store.unfinished(("RUNNING",))) == ["run-early", "run-late"]
        assert _ids(job_store.unfinished(["APPROVED", "SUBMITTED"])) == ["waiting", "approved"]
        assert job_store.unfinished(("FINISHED:COMPLETED",)) == []  # never a finished job
        assert job_store.unfinished(()) == []
        job_store.update("waiting", {"status": "DISPATCHED"})  # the index follows updates
        assert _ids(job_store.unfinished(("SUBMITTED", "APPROVED"))) == ["approved"]
        job_store.update("run-early", {"status": "FINISHED:ABORTED"})
        assert _ids(job_store.unfinished(("RUNNING", "DISPATCHED"))) == ["waiting", "run-late"]


_SCOPE = TokenScope(
    study="default",
    submitter_name="admin@nvidia.com",
    submitter_org="nvidia",
    submitter_role="project_admin",
    token="nightly-1",
)


def _record(scope: TokenScope = _SCOPE, job_id: str = "job-1") -> Any:
    return new_record(
        scope,
        job_id=job_id,
        job_name="hello",
        job_folder_name="hello",
        content_hash="sha256:abc",
        submit_time="2026-12-01T10:00:00+00:00",
    )


class TokenStoreContract:
    """The ``TokenStore`` port (fixture ``token_store``)."""

    def test_create_once_per_scope(self, token_store: TokenStore) -> None:
        assert token_store.get(_SCOPE) is None
        assert token_store.create(_record()) is True
        assert token_store.create(_record(job_id="job-2")) is False  # no change
        stored = token_store.get(_SCOPE)
        assert stored is not None
        assert stored.job_id == "job-1"

    def test_scopes_differ_by_every_field(self, token_store: TokenStore) -> None:
        token_store.create(_record())
        for field, value in (
            ("study", "other"),
            ("submitter_name", "lead@nvidia.com"),
            ("token", "nightly-2"),
            ("kind", "session"),
        ):
            other = TokenScope(**{**_asdict(_SCOPE), field: value})
            assert token_store.get(other) is None, field
            assert token_store.create(_record(other, job_id=f"job-{field}")) is True

    def test_put_replaces_and_for_job_indexes(self, token_store: TokenStore) -> None:
        record = _record()
        token_store.create(record)
        other = TokenScope(**{**_asdict(_SCOPE), "token": "nightly-2"})
        token_store.create(_record(other))
        assert {r.scope.token for r in token_store.for_job("job-1")} == {"nightly-1", "nightly-2"}
        gone = tombstone(
            record,
            deleted_time="2026-12-01T11:00:00+00:00",
            deleted_by=Principal(name="admin@nvidia.com", org="nvidia", role="project_admin"),
        )
        token_store.put(gone)
        assert token_store.get(_SCOPE) == gone
        assert token_store.for_job("nothing") == []


def _asdict(scope: TokenScope) -> dict[str, Any]:
    return {field: getattr(scope, field) for field in scope.__struct_fields__}


class StudyStoreContract:
    """The ``StudyStore`` port (fixture ``study_store``)."""

    def test_empty_then_saved_then_replaced(self, study_store: StudyStore) -> None:
        assert study_store.load() is None
        first = StudyRegistry(
            studies={"s1": Study(site_orgs={"nvidia": ["site-1", "site-2"]}, admins=["a"])}
        )
        study_store.save(first)
        assert study_store.load() == first
        second = StudyRegistry(studies={"s2": Study(site_orgs={"other": []}, admins=[])})
        study_store.save(second)
        assert study_store.load() == second


class SiteStoreContract:
    """The ``SiteStore`` port (fixture ``site_store``)."""

    def test_disable_and_enable(self, site_store: SiteStore) -> None:
        assert site_store.disabled() == frozenset()
        site_store.set_disabled("site-1", True)
        site_store.set_disabled("site-2", True)
        site_store.set_disabled("site-1", True)  # idempotent
        assert site_store.disabled() == {"site-1", "site-2"}
        site_store.set_disabled("site-1", False)
        site_store.set_disabled("never", False)
        assert site_store.disabled() == {"site-2"}


def _session(session_id: str, last_seen: float, study: str = "default") -> SessionRecord:
    principal = Principal(
        name="admin@nvidia.com",
        org="nvidia",
        role="project_admin",
        study=study,
        session_id=session_id,
    )
    return SessionRecord(session_id=session_id, principal=principal, last_seen=last_seen)


class SessionStoreContract:
    """The ``SessionStore`` port (fixture ``session_store``)."""

    def test_put_get_replace_remove(self, session_store: SessionStore) -> None:
        assert session_store.get("s1") is None
        session_store.put(_session("s1", 1.0))
        session_store.put(_session("s1", 2.0, study="s"))
        assert session_store.get("s1") == _session("s1", 2.0, study="s")
        session_store.remove("s1")
        session_store.remove("s1")  # absent: no error
        assert session_store.get("s1") is None

    def test_purge_forgets_idle_sessions_only(self, session_store: SessionStore) -> None:
        for session_id, seen in (("old", 1.0), ("edge", 5.0), ("new", 9.0)):
            session_store.put(_session(session_id, seen))
        assert session_store.purge(5.0) == 1
        assert session_store.get("old") is None
        assert session_store.get("edge") is not None
        assert session_store.get("new") is not None

    def test_count_seen_since_includes_the_edge(self, session_store: SessionStore) -> None:
        assert session_store.count_seen_since(0.0) == 0
        for session_id, seen in (("old", 1.0), ("edge", 5.0), ("new", 9.0)):
            session_store.put(_session(session_id, seen))
        assert [session_store.count_seen_since(t) for t in (0.0, 5.0, 9.5)] == [3, 2, 0]
        session_store.remove("new")
        assert session_store.count_seen_since(5.0) == 1


def _chunks(*parts: bytes) -> Iterator[bytes]:
    yield from parts


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


class BlobStoreContract:
    """The ``BlobStore`` port (fixture ``blob_store``)."""

    def test_write_read_exists(self, blob_store: BlobStore) -> None:
        assert blob_store.write("jobs/a/x", _chunks(b"he", b"llo")) == 5
        assert blob_store.exists("jobs/a/x")
        assert b"".join(blob_store.read("jobs/a/x")) == b"hello"
        assert blob_store.write("jobs/a/x", [b"new"]) == 3  # replaces
        assert b"".join(blob_store.read("jobs/a/x")) == b"new"
        with pytest.raises(KeyError):
            blob_store.read("jobs/none")
        assert not blob_store.exists("jobs/none")

    def test_a_failing_write_stores_nothing(self, blob_store: BlobStore) -> None:
        def broken() -> Iterator[bytes]:
            yield b"partial"
            raise OSError("the upload broke off")

        with pytest.raises(OSError, match="broke off"):
            blob_store.write("jobs/a/x", broken())
        assert not blob_store.exists("jobs/a/x")
        blob_store.write("jobs/a/y", [b"old"])
        with pytest.raises(OSError, match="broke off"):
            blob_store.write("jobs/a/y", broken())
        assert b"".join(blob_store.read("jobs/a/y")) == b"old"  # all or nothing

    def test_keys_move_and_delete_prefix(self, blob_store: BlobStore) -> None:
        for key in ("jobs/a/1", "jobs/a/2", "jobs/ab/1", "uploads/u"):
            blob_store.write(key, [key.encode()])
        assert blob_store.keys("jobs/a/") == ["jobs/a/1", "jobs/a/2"]
        blob_store.move("uploads/u", "jobs/a/3")
        assert not blob_store.exists("uploads/u")
        assert b"".join(blob_store.read("jobs/a/3")) == b"uploads/u"
        with pytest.raises(KeyError):
            blob_store.move("uploads/u", "jobs/a/4")
        assert blob_store.delete_prefix("jobs/a/") == 3
        assert blob_store.keys("jobs/") == ["jobs/ab/1"]

    def test_copy_leaves_two_independent_blobs(self, blob_store: BlobStore) -> None:
        blob_store.write("jobs/a/job.zip", [b"archive"])
        blob_store.write("jobs/b/job.zip", [b"replaced"])
        blob_store.copy("jobs/a/job.zip", "jobs/b/job.zip")
        blob_store.copy("jobs/a/job.zip", "jobs/c/job.zip")
        assert b"".join(blob_store.read("jobs/b/job.zip")) == b"archive"
        blob_store.write("jobs/a/job.zip", [b"rewritten"])  # the copies keep their content
        assert blob_store.delete_prefix("jobs/b/") == 1
        assert b"".join(blob_store.read("jobs/c/job.zip")) == b"archive"
        assert b"".join(blob_store.read("jobs/a/job.zip")) == b"rewritten"
        with pytest.raises(KeyError):
            blob_store.copy("jobs/none", "jobs/d/job.zip")
        assert not blob_store.exists("jobs/d/job.zip")

    def test_archive_views_a_zip_and_refuses_what_is_not_one(self, blob_store: BlobStore) -> None:
        blob_store.write("jobs/a/job.zip", [_zip({"job/meta.json": b"{}", "job/app/x": b"x"})])
        view = blob_store.archive("jobs/a/job.zip")
        assert sorted(view.names()) == ["job/app/x", "job/meta.json"]
        assert b"".join(view.open("job/meta.json")) == b"{}"
        assert view.size("job/app/x") == 1
        blob_store.write("jobs/a/bad.zip", [b"not a zip"])
        with pytest.raises(InvalidJobDefinition):
            blob_store.archive("jobs/a/bad.zip")
        with pytest.raises(KeyError):
            blob_store.archive("jobs/a/none.zip")

    def test_a_trusted_archive_skips_the_upload_bounds_only(self, blob_store: BlobStore) -> None:
        # A job's own workspace may be far larger, or more compressible, than an upload may.
        zeros = bytes(4 * 1024 * 1024)  # deflates over 1000 times: a zip bomb's ratio
        blob_store.write("jobs/a/workspace.zip", [_zip({"server/model.bin": zeros})])
        with pytest.raises(InvalidJobDefinition, match="compression ratio"):
            blob_store.archive("jobs/a/workspace.zip")
        view = blob_store.archive("jobs/a/workspace.zip", trusted=True)
        assert b"".join(view.open("server/model.bin")) == zeros
        blob_store.write("jobs/a/unsafe.zip", [_zip({"../escape": b"x"})])
        with pytest.raises(InvalidJobDefinition, match="unsafe member name"):
            blob_store.archive("jobs/a/unsafe.zip", trusted=True)
