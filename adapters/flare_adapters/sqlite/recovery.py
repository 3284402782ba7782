"""Startup recovery of a durable store after a crash or ``kill -9``.

Run before the service starts serving, in this order:

1. ``BlobDirectory.clear_incomplete``: writes a crash interrupted leave only temporary files;
2. ``recover_jobs``: a job that was DISPATCHED or RUNNING when the server died cannot still be
   running (the engine's processes died with it): it becomes ``FINISHED:ABNORMAL`` with a reason
   in its meta (``finish_reason``) and in its server log;
3. ``collect_orphans``: blobs no stored job points at (an upload staged when the server died, a
   job whose row never committed) are deleted, and so are directories a crash left empty and
   site-workspace job folders of jobs that no longer exist.
   Blobs are always written before the row that points at them commits, so a committed job
   never loses its blobs here.
"""

from __future__ import annotations

import uuid
from typing import Final

from flare_adapters.disk_workspaces import DiskWorkspaces
from flare_adapters.sqlite.blobs import BlobDirectory
from flare_core.lifecycle import JobStatus, Trigger, finish_fields, transition
from flare_core.service import job_blob_prefix
from flare_core.service.ports import SCRATCH_PREFIX, JobStore
from flare_core.timefmt import iso_utc

__all__ = ["RECOVERY_REASON", "collect_orphans", "recover_jobs"]

RECOVERY_REASON: Final = "the server stopped while the job was {status}"
_LIVE: Final = (JobStatus.DISPATCHED.value, JobStatus.RUNNING.value)
SERVER: Final = "server"


def recover_jobs(
    jobs: JobStore, blobs: BlobDirectory, now: float, workspaces: DiskWorkspaces | None = None
) -> list[str]:
    """Mark the jobs a dead server left DISPATCHED/RUNNING as ``FINISHED:ABNORMAL``.

    Args:
        jobs: the job store.
        blobs: the blob directory (the reason is appended to the job's archived server log).
        now: the current time, epoch seconds.
        workspaces: the sites' workspaces on disk, if any: the reason is also appended to the
            job's live server log there, which ``get_job_logs`` reads first.

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
        live_log = f"{job_id}/log.txt"
        if workspaces is not None and workspaces.tree(SERVER).stat(live_log) is not None:
            workspaces.tree(SERVER).append(live_log, line.encode("utf-8"), now)
        jobs.update(job_id, {**finish_fields(meta, final, now), "finish_reason": reason})
        recovered.append(job_id)
    return recovered


def collect_orphans(
    job_ids: set[str], blobs: BlobDirectory, workspaces: DiskWorkspaces | None = None
) -> int:
    """Delete blobs (and site-workspace job folders) no stored job points at.

    Args:
        job_ids: every job id in the store.
        blobs: the blob directory.
        workspaces: the sites' workspaces on disk, if any.

    Returns:
        The number of blobs and workspace job folders deleted.
    """
    count = blobs.delete_prefix(SCRATCH_PREFIX)
    for name in blobs.children("jobs/"):
        if name not in job_ids:
            count += blobs.delete_prefix(job_blob_prefix(name))
    blobs.remove_empty_dirs()
    if workspaces is not None:
        for site in workspaces.sites():
            tree = workspaces.tree(site)
            for name in tree.listdir(""):
                # Only job folders (named by their UUID) are the service's to collect.
                if _is_job_id(name) and name not in job_ids:
                    tree.remove(name)
                    count += 1
    return count


def _is_job_id(name: str) -> bool:
    try:
        return str(uuid.UUID(name)) == name
    except ValueError:
        return False
