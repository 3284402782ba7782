"""A finished job's workspace is archived outside the service lock, in bounded pieces: a real
job's models can be gigabytes, and no other user may wait for their copy."""

from __future__ import annotations

import threading

import pytest

from flare_core import GetJobMeta, ListJobs, Ok
from tests.service.helpers import ADMIN, MEMBER, Harness
from tests.service.test_service_shell_lock import WAIT, GatedTree


class CountingTree(GatedTree):
    """A gated workspace that also records the size of every read."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[int] = []

    def read(self, path: str, offset: int = 0, size: int = -1) -> bytes:
        self.reads.append(size)
        return super().read(path, offset, size)


def test_archiving_a_finished_job_does_not_hold_other_users(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = Harness(duration=100.0)
    admin, member = h.login(ADMIN), h.login(MEMBER)
    job_id = h.submit(admin)
    h.advance(1.0)
    tree = CountingTree()
    model = bytes(range(256)) * 12_000  # ~3 MiB: more than one piece
    tree.write(f"{job_id}/models/server.npy", model, 0.0)
    monkeypatch.setattr(h.system.workspaces, "tree", lambda site: tree)

    finisher = threading.Thread(target=h.engine.finish_job, args=(job_id,))
    finisher.start()
    try:
        assert tree.entered.wait(WAIT)
        # The archive copy is parked inside a file read: another user must not wait for it.
        replies: list[object] = []
        listing = threading.Thread(target=lambda: replies.append(h.reply(member, ListJobs())))
        listing.start()
        listing.join(WAIT)
        assert not listing.is_alive(), "list_jobs waited for another job's archive copy"
        assert isinstance(replies[0], Ok)
    finally:
        tree.gate.set()
        finisher.join(WAIT)
    assert h.ok(admin, GetJobMeta(job_id=job_id))["status"] == "FINISHED:COMPLETED"
    archive = h.system.blobs.archive(f"jobs/{job_id}/workspace.zip", trusted=True)
    assert b"".join(archive.open("server/models/server.npy")) == model
    assert all(0 < size <= 1024 * 1024 for size in tree.reads)  # bounded pieces, never whole
