"""Startup recovery of a durable store after a crash or ``kill -9``.

Run before the service starts serving, in this order:

1. ``BlobDirectory.clear_incomplete``: writes a crash interrupted leave only temporary files;
2. ``recover_jobs``: a job that was DISPATCHED or RUNNING when the server died cannot still be
   running (the engine's processes died with it): it becomes ``FINISHED:ABNORMAL`` with a reason
   in its meta (``finish_reason``) and in its server log;
3. ``collect_orphans``: blobs no stored job points at (an upload staged when the server died, a
   job whose row never committed) are deleted, and so are directories a crash left empty.
   Blobs are always written before the row that points at them commits, so a committed job
   never loses its blobs here.
"""

from __future__ import annotations

from typing import Final

from flare_adapters.sqlite.blobs import BlobDirectory
from flare_core._lifecycle import JobStatus, Trigger, finish_fields, transition
from flare_core._service._core import job_blob_prefix
from flare_core._service.ports import JobStore
from flare_core._timefmt import iso_utc

__all__ = ["RECOVERY_REASON", "collect_orphans", "recover_jobs"]

RECOVERY_REASON: Final = "the server stopped while the job was {status}"
_LIVE: Final = (JobStatus.DISPATCHED.value, JobStatus.RUNNING.value)


def recover_jobs(jobs: JobStore, blobs: BlobDirectory, now: float) -> list[str]:
    """Mark the jobs a dead server left DISPATCHED/RUNNING as ``FINISHED:ABNORMAL``.

    Args:
        jobs: the job store.
        blobs: the blob directory (the reason is appended to the job's archived server log).
        now: the current time, epoch seconds.

    Returns:
        The ids of the recovered jobs.
    """
    recovered: list[str] = []
    for meta in jobs.unfinished():
        status = str(meta.get("status", ""))
        if status not in _LIVE:
            continue
        job_id = str(meta["job_id"])
        final = transition(status, Trigger.RECOVER_ABNORMAL)
        reason = RECOVERY_REASON.format(status=status)
        log_key = f"{job_blob_prefix(job_id)}workspace/server/log.txt"
        old = b"".join(blobs.read(log_key)) if blobs.exists(log_key) else b""
        line = f"{iso_utc(now)} - ServerRunner - ERROR - [run={job_id}]: {reason}\n"
        blobs.write(log_key, [old, line.encode("utf-8")])
        jobs.update(job_id, {**finish_fields(meta, final, now), "finish_reason": reason})
        recovered.append(job_id)
    return recovered


def collect_orphans(job_ids: set[str], blobs: BlobDirectory) -> int:
    """Delete blobs that no stored job points at; the number of blobs deleted.

    Args:
        job_ids: every job id in the store.
        blobs: the blob directory.
    """
    count = blobs.delete_prefix("uploads/")
    for name in blobs.children("jobs/"):
        if name not in job_ids:
            count += blobs.delete_prefix(job_blob_prefix(name))
    blobs.remove_empty_dirs()
    return count
