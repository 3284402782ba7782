"""An ended job's workspace is one zip blob; logs and results read it, and the older layout (a
blob per file) too."""

from __future__ import annotations

import json

import pytest

from flare_core import AbortJob, DownloadJobResult, GetJobLogs
from flare_core.archive import ArchiveView
from flare_core.principal import Principal
from tests.service.helpers import Harness, unzip


def _forget_live_files(h: Harness, job_id: str) -> None:
    # The live workspace is read first; without it only the archive can answer.
    h.system.workspaces.remove_job(job_id)


def _result(h: Harness, admin: Principal, job_id: str) -> dict[str, bytes]:
    download_id = h.ok(admin, DownloadJobResult(job_id=job_id))["download_id"]
    return unzip(b"".join(h.service.open_download(admin, download_id)))


def test_an_abort_archives_every_site_in_one_blob_write(monkeypatch: pytest.MonkeyPatch) -> None:
    h = Harness()
    admin = h.login()
    job_id = h.submit(admin)
    h.advance(2.0)
    written: list[str] = []
    real = h.system.blobs.write

    def record(key: str, chunks: object) -> int:
        written.append(key)
        return real(key, chunks)  # type: ignore[arg-type]

    monkeypatch.setattr(h.system.blobs, "write", record)
    h.ok(admin, AbortJob(job_id=job_id))
    assert written == [f"jobs/{job_id}/workspace.zip"]
    names = h.system.blobs.archive(written[0], trusted=True).names()
    assert {"server/log.txt", "site-1/log.txt", "site-2/log.txt"} <= set(names)
    assert h.system.blobs.keys(f"jobs/{job_id}/workspace/") == []


def test_logs_and_results_come_from_the_archive_once_the_workspace_is_gone() -> None:
    h = Harness()
    job_id = h.finished()
    _forget_live_files(h, job_id)
    admin = h.login()
    logs = h.ok(admin, GetJobLogs(job_id=job_id, target="all"))["logs"]
    assert sorted(logs) == ["server", "site-1", "site-2"]
    assert all("FINISHED:COMPLETED" in text for text in logs.values())
    members = _result(h, admin, job_id)
    for site in ("server", "site-1", "site-2"):
        assert b"FINISHED:COMPLETED" in members[f"workspace/{site}/log.txt"]
    assert json.loads(members["workspace/site-1/result.json"])["site"] == "site-1"


def test_an_archive_beyond_the_upload_bounds_still_reads_back() -> None:
    # 2 MiB of zeros deflates over 1000 times: an upload that did so would be refused as a
    # zip bomb, but the server wrote this archive itself, from the job's own files.
    h = Harness()
    admin = h.login()
    job_id = h.submit(admin)
    h.advance(2.0)
    zeros = bytes(2 * 1024 * 1024)
    h.system.workspaces.tree("site-1").write(f"{job_id}/models/zeros.bin", zeros, 0.0)
    h.advance(10.0)
    _forget_live_files(h, job_id)
    assert _result(h, admin, job_id)["workspace/site-1/models/zeros.bin"] == zeros
    assert "site-1" in h.ok(admin, GetJobLogs(job_id=job_id, target="site-1"))["logs"]


def test_the_older_layout_of_a_blob_per_file_still_reads() -> None:
    h = Harness()
    job_id = h.finished()
    _forget_live_files(h, job_id)
    h.system.blobs.delete_prefix(f"jobs/{job_id}/workspace.zip")
    h.system.blobs.write(f"jobs/{job_id}/workspace/site-3/log.txt", [b"older layout\n"])
    admin = h.login()
    assert h.ok(admin, GetJobLogs(job_id=job_id, target="site-3"))["logs"] == {
        "site-3": "older layout\n"
    }
    assert "site-3" in h.ok(admin, GetJobLogs(job_id=job_id, target="all"))["logs"]
    members = _result(h, admin, job_id)
    assert [name for name in members if name.startswith("workspace/")] == [
        "workspace/site-3/log.txt"
    ]


def test_a_blob_per_file_wins_over_the_archive_member_of_its_name() -> None:
    # Startup recovery appends its reason to the per-file server log of a job the crash left
    # live, whatever the archive holds: that blob is the later one.
    h = Harness()
    job_id = h.finished()
    _forget_live_files(h, job_id)
    h.system.blobs.write(f"jobs/{job_id}/workspace/server/log.txt", [b"recovered\n"])
    admin = h.login()
    assert h.ok(admin, GetJobLogs(job_id=job_id))["logs"] == {"server": "recovered\n"}
    members = _result(h, admin, job_id)
    assert members["workspace/server/log.txt"] == b"recovered\n"
    assert b"FINISHED:COMPLETED" in members["workspace/site-1/log.txt"]


def test_all_sites_logs_open_the_archive_once(monkeypatch: pytest.MonkeyPatch) -> None:
    h = Harness()
    job_id = h.finished()
    _forget_live_files(h, job_id)
    opened: list[str] = []
    real = h.system.blobs.archive

    def record(key: str, *, trusted: bool = False) -> ArchiveView:
        opened.append(key)
        return real(key, trusted=trusted)

    monkeypatch.setattr(h.system.blobs, "archive", record)
    logs = h.ok(h.login(), GetJobLogs(job_id=job_id, target="all"))["logs"]
    assert sorted(logs) == ["server", "site-1", "site-2"]
    assert opened == [f"jobs/{job_id}/workspace.zip"]
