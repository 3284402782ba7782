"""The memory adapters: virtual clock, zipsafe, stores, blobs, workspaces, ids."""

from __future__ import annotations

import io
import os
import random
import stat
import uuid
import zipfile
from collections.abc import Iterator

import pytest

from flare_adapters.memory.blobs import MemoryBlobStore
from flare_adapters.memory.clock import DEFAULT_EPOCH, VirtualClock
from flare_adapters.memory.ids import RandomIds, SeededIds
from flare_adapters.memory.stores import (
    MemoryJobStore,
    MemorySessionStore,
    MemorySiteStore,
    MemoryStudyStore,
    MemoryTokenStore,
)
from flare_adapters.memory.workspaces import MemoryFileTree, MemoryWorkspaces
from flare_adapters.zipsafe import (
    CHUNK_SIZE,
    UnsafeZipError,
    ZipLimits,
    open_zip,
    stream_zip,
)
from flare_core import InvalidArgumentError, InvalidJobDefinition, Principal
from flare_core.service.ports import SessionRecord
from flare_core.shell import FileStat
from flare_core.studies import Study, StudyRegistry
from flare_core.tokens import TokenScope, new_record

# --- VirtualClock ----------------------------------------------------------------------------


def test_clock_starts_at_the_default_epoch_and_zero_monotonic() -> None:
    clock = VirtualClock()
    assert clock.time() == DEFAULT_EPOCH
    assert clock.monotonic() == 0.0
    assert VirtualClock(start=5.0).time() == 5.0


def test_clock_runs_timers_in_due_order_and_reads_their_due_time() -> None:
    clock = VirtualClock(start=100.0)
    seen: list[tuple[str, float]] = []
    clock.call_later(3, lambda: seen.append(("c", clock.time())))
    clock.call_later(1, lambda: seen.append(("a", clock.time())))
    clock.call_later(1, lambda: seen.append(("b", clock.time())))
    clock.advance(2)
    assert seen == [("a", 101.0), ("b", 101.0)]
    assert clock.time() == 102.0
    clock.advance(5)
    assert seen[-1] == ("c", 103.0)
    assert clock.time() == 107.0


def test_clock_cancelled_timer_never_runs_and_next_deadline_skips_it() -> None:
    clock = VirtualClock()
    fired: list[int] = []
    cancel = clock.call_later(1, lambda: fired.append(1))
    clock.call_later(4, lambda: fired.append(4))
    assert clock.next_deadline() == 1.0
    cancel()
    cancel()  # idempotent
    assert clock.next_deadline() == 4.0
    clock.advance(10)
    assert fired == [4]
    assert clock.next_deadline() is None


def test_clock_timers_added_by_callbacks_run_within_the_same_advance() -> None:
    clock = VirtualClock()
    fired: list[float] = []

    def first() -> None:
        fired.append(clock.monotonic())
        clock.call_later(1, lambda: fired.append(clock.monotonic()))

    clock.call_later(1, first)
    clock.advance(5)
    assert fired == [1.0, 2.0]


def test_clock_zero_delay_runs_on_advance_zero_and_negative_advance_is_refused() -> None:
    clock = VirtualClock()
    fired: list[int] = []
    clock.call_later(-3, lambda: fired.append(1))
    assert fired == []
    clock.advance(0)
    assert fired == [1]
    with pytest.raises(InvalidArgumentError):
        clock.advance(-1)


# --- zipsafe ---------------------------------------------------------------------------------


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def test_stream_zip_round_trips_through_open_zip() -> None:
    data = b"".join(stream_zip([("a/x.txt", [b"hello ", b"world"]), ("b.bin", iter([b"\0" * 9]))]))
    view = open_zip(io.BytesIO(data))
    assert list(view.names()) == ["a/x.txt", "b.bin"]
    assert b"".join(view.open("a/x.txt")) == b"hello world"
    assert view.size("b.bin") == 9
    with pytest.raises(KeyError):
        view.open("missing")


def test_stream_zip_sends_small_members_in_one_piece_and_large_ones_in_chunks() -> None:
    small = [(f"logs/{index}.txt", [b"line\n" * 20]) for index in range(50)]
    assert len(list(stream_zip(small))) == 1
    block = os.urandom(CHUNK_SIZE)  # incompressible: stored, each block passed on as itself
    pieces = list(stream_zip([*small, ("model.bin", [block, block, block])]))
    assert all(len(piece) >= CHUNK_SIZE for piece in pieces[:-1])
    assert any(piece is block for piece in pieces)
    assert b"".join(open_zip(io.BytesIO(b"".join(pieces))).open("model.bin")) == block * 3


def test_stream_zip_is_reproducible_and_refuses_unsafe_names() -> None:
    members = [("x.txt", [b"1"])]
    assert b"".join(stream_zip(members)) == b"".join(stream_zip(members))
    with pytest.raises(UnsafeZipError):
        b"".join(stream_zip([("../x", [b"1"])]))


@pytest.mark.parametrize("name", ["../evil.txt", "/abs.txt", "a/../../b", "c:\\x", "a\\b"])
def test_open_zip_rejects_unsafe_member_names(name: str) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr(zipfile.ZipInfo(name), b"x")
    with pytest.raises(UnsafeZipError, match="unsafe member name"):
        open_zip(io.BytesIO(buffer.getvalue()))


def test_open_zip_rejects_symlinks_and_non_zips() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        info = zipfile.ZipInfo("job/link")
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(UnsafeZipError, match="symbolic link"):
        open_zip(io.BytesIO(buffer.getvalue()))
    with pytest.raises(UnsafeZipError, match="not a valid zip"):
        open_zip(io.BytesIO(b"definitely not a zip"))


def test_open_zip_enforces_entry_count_size_and_ratio_limits() -> None:
    many = _zip({f"f{i}.txt": b"x" for i in range(5)})
    with pytest.raises(UnsafeZipError, match="entries"):
        open_zip(io.BytesIO(many), ZipLimits(max_entries=4))
    big = _zip({"big.txt": b"a" * 5000})
    with pytest.raises(UnsafeZipError, match="bytes; at most"):
        open_zip(io.BytesIO(big), ZipLimits(max_entry_size=4000))
    with pytest.raises(UnsafeZipError, match="expands to more than"):
        open_zip(
            io.BytesIO(_zip({"a": b"a" * 600, "b": b"b" * 600})), ZipLimits(max_total_size=1000)
        )
    with pytest.raises(UnsafeZipError, match="compression ratio"):
        open_zip(io.BytesIO(big), ZipLimits(max_ratio=2.0, ratio_floor=100))
    assert open_zip(io.BytesIO(big)).size("big.txt") == 5000


# --- blob store ------------------------------------------------------------------------------


def test_blob_store_write_read_move_keys_and_delete_prefix() -> None:
    blobs = MemoryBlobStore()
    assert blobs.write("jobs/a/x", [b"ab", b"cd"]) == 4
    blobs.write("jobs/a/y", [b""])
    blobs.write("jobs/b/x", [b"z"])
    assert b"".join(blobs.read("jobs/a/x")) == b"abcd"
    assert blobs.keys("jobs/a/") == ["jobs/a/x", "jobs/a/y"]
    blobs.move("jobs/b/x", "jobs/c/x")
    assert not blobs.exists("jobs/b/x")
    assert blobs.exists("jobs/c/x")
    assert blobs.delete_prefix("jobs/a/") == 2
    assert blobs.keys("jobs/") == ["jobs/c/x"]
    with pytest.raises(KeyError):
        blobs.read("nope")
    with pytest.raises(KeyError):
        blobs.move("nope", "x")


def test_blob_store_write_is_atomic_when_the_chunks_fail() -> None:
    blobs = MemoryBlobStore()

    def chunks() -> Iterator[bytes]:
        yield b"partial"
        raise OSError("upload broke")

    with pytest.raises(OSError, match="upload broke"):
        blobs.write("k", chunks())
    assert not blobs.exists("k")


def test_blob_store_archive_wraps_zipsafe_failures_as_invalid_job_definition() -> None:
    blobs = MemoryBlobStore()
    blobs.write("bad", [b"not a zip"])
    with pytest.raises(InvalidJobDefinition, match="invalid job definition: not a valid zip"):
        blobs.archive("bad")
    blobs.write("good", [_zip({"job/meta.json": b"{}"})])
    assert list(blobs.archive("good").names()) == ["job/meta.json"]


# --- stores ----------------------------------------------------------------------------------


def test_job_store_returns_copies_and_filters() -> None:
    jobs = MemoryJobStore()
    jobs.add({"job_id": "a1", "name": "Hello", "study": "s1", "status": "RUNNING", "tags": []})
    jobs.add({"job_id": "b2", "name": "other", "status": "FINISHED:COMPLETED", "submit_time": 1.0})
    with pytest.raises(KeyError):
        jobs.add({"job_id": "a1"})
    got = jobs.get("a1")
    assert got is not None
    got["tags"].append("mutated")
    assert jobs.get("a1") == {
        "job_id": "a1",
        "name": "Hello",
        "study": "s1",
        "status": "RUNNING",
        "tags": [],
    }
    assert [m["job_id"] for m in jobs.query(study="default")] == ["b2"]
    assert [m["job_id"] for m in jobs.query(name_prefix="hEl")] == ["a1"]
    assert [m["job_id"] for m in jobs.query(id_prefix="B")] == ["b2"]
    assert jobs.count("s1") == 1
    assert [m["job_id"] for m in jobs.unfinished()] == ["a1"]
    updated = jobs.update("a1", {"status": "FINISHED:ABORTED"})
    assert updated is not None
    assert updated["status"] == "FINISHED:ABORTED"
    assert jobs.update("zz", {}) is None
    assert jobs.remove("a1")
    assert not jobs.remove("a1")


def _scope(token: str = "t1") -> TokenScope:
    principal = Principal(name="u", org="o", role="lead")
    return TokenScope.for_principal(principal, token)


def test_token_store_create_is_no_overwrite_and_for_job_finds_records() -> None:
    tokens = MemoryTokenStore()
    record = new_record(
        _scope(),
        job_id="j1",
        job_name="n",
        job_folder_name="f",
        content_hash="sha256:x",
        submit_time="t",
    )
    assert tokens.create(record)
    assert not tokens.create(record)
    assert tokens.get(_scope()) == record
    assert tokens.get(_scope("t2")) is None
    assert tokens.for_job("j1") == [record]
    assert tokens.for_job("j2") == []


def test_study_store_round_trips_without_aliasing() -> None:
    store = MemoryStudyStore()
    assert store.load() is None
    registry = StudyRegistry(studies={"s": Study(site_orgs={"o": ["a"]}, admins=["u"])})
    store.save(registry)
    loaded = store.load()
    assert loaded == registry
    assert loaded is not None
    loaded.studies["s"].admins.append("intruder")
    assert store.load() == registry


def test_site_and_session_stores() -> None:
    sites = MemorySiteStore()
    sites.set_disabled("a", True)
    sites.set_disabled("a", True)
    assert sites.disabled() == frozenset({"a"})
    sites.set_disabled("a", False)
    assert sites.disabled() == frozenset()
    sessions = MemorySessionStore()
    principal = Principal(name="u", org="o", role="r")
    sessions.put(SessionRecord(session_id="s1", principal=principal, last_seen=1.0))
    sessions.put(SessionRecord(session_id="s2", principal=principal, last_seen=9.0))
    assert sessions.purge(idle_before=5.0) == 1
    assert sessions.get("s1") is None
    assert sessions.get("s2") is not None
    sessions.remove("s2")
    sessions.remove("s2")
    assert sessions.get("s2") is None


# --- workspaces and ids ----------------------------------------------------------------------


def test_file_tree_stat_listdir_read_and_confinement() -> None:
    tree = MemoryFileTree("/workspace/site-1")
    tree.write("job/log.txt", b"line\n", 10.0)
    tree.append("job/log.txt", b"more\n", 11.0)
    tree.mkdir("empty", 3.0)
    assert tree.display_root() == "/workspace/site-1"
    assert tree.listdir("") == ["empty", "job"]
    assert tree.listdir("job") == ["log.txt"]
    assert tree.stat("job/log.txt") == FileStat("file", 10, 11.0)
    directory = tree.stat("job")
    assert directory is not None
    assert directory.kind == "dir"
    assert tree.read("./job//log.txt") == b"line\nmore\n"
    for outside in ("../x", "/etc/passwd", "job/../../x", "a\\b"):
        assert tree.stat(outside) is None
        assert tree.listdir(outside) == []
    with pytest.raises(FileNotFoundError):
        tree.read("job")
    with pytest.raises(ValueError, match="not inside the workspace"):
        tree.write("../x", b"", 0.0)
    assert tree.files() == ["job/log.txt"]


def test_workspaces_create_trees_on_demand() -> None:
    workspaces = MemoryWorkspaces(root="/ws/")
    tree = workspaces.tree("site-9")
    assert workspaces.tree("site-9") is tree
    assert tree.display_root() == "/ws/site-9"
    assert workspaces.sites() == ["site-9"]


def test_ids_are_uuid4_and_seeded_ids_are_reproducible() -> None:
    for ids in (RandomIds(), SeededIds(3)):
        job_id = ids.job_id()
        assert uuid.UUID(job_id).version == 4
        assert str(uuid.UUID(job_id)) == job_id
        assert len(ids.secret()) >= 40
    a, b = SeededIds(3), SeededIds(3)
    assert [a.job_id(), a.secret()] == [b.job_id(), b.secret()]
    assert SeededIds(4).job_id() != SeededIds(3).job_id()


def test_stream_zip_stores_incompressible_members_and_deflates_the_rest() -> None:
    payload = random.Random(7).randbytes(200_000)  # incompressible
    text = b"x = 1\n" * 50_000
    # Chunks smaller than the sample: the choice looks past the first chunk.
    data = b"".join(
        stream_zip(
            [
                ("w.bin", (payload[i : i + 1000] for i in range(0, len(payload), 1000))),
                ("c.py", [text]),
                ("e.txt", []),
            ]
        )
    )
    kinds = {i.filename: i.compress_type for i in zipfile.ZipFile(io.BytesIO(data)).infolist()}
    assert kinds == {
        "w.bin": zipfile.ZIP_STORED,
        "c.py": zipfile.ZIP_DEFLATED,
        "e.txt": zipfile.ZIP_STORED,
    }
    view = open_zip(io.BytesIO(data))
    assert b"".join(view.open("w.bin")) == payload
    assert b"".join(view.open("c.py")) == text
    assert b"".join(view.open("e.txt")) == b""
