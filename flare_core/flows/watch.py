"""``watch_jobs``: a stream of typed job status changes, for one job or the whole study.

One flow for every transport. It takes a snapshot (``get_job_meta`` for one job,
``list_jobs`` for the study), reports each job it sees for the first time (``old_status``
None), then sleeps until the transport hears of a change (``Sleep(wake_on=job_id)``, or
``wake_on=ANY_JOB`` for the study) or ``poll_interval`` passes, takes a new snapshot and
reports the differences. Events pushed by a transport are only hints to look again: the
snapshot is the truth, so a transport without an event source, or an event lost on the way,
costs latency, never a change. Statuses a job passes through between two snapshots are not
reported (the next snapshot shows where it went).

Watching one job ends after its terminal status (or its deletion, ``new_status ==
"DELETED"``); watching the study goes on until the caller stops iterating.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flare_core.errors import JobNotFound
from flare_core.flows._context import ClientFlow, FlowContext
from flare_core.flows.jobs import get_job_meta, list_jobs
from flare_core.lifecycle import monitor_terminal
from flare_core.steps import ANY_JOB, Emit, Sleep, WallClock
from flare_core.validation import check_job_id, check_monitor_args

__all__ = ["DELETED", "JobChange", "watch_jobs"]

DELETED = "DELETED"
"""The ``new_status`` of a job that is gone (deleted, or no longer listed)."""


@dataclass(frozen=True)
class JobChange:
    """One job changed status (or was seen for the first time).

    Attributes:
        job_id: the job.
        job_name: the job's name (its meta ``name``; ``job_name`` in listings).
        old_status: the status seen before, or None the first time the watch sees the job.
        new_status: the status now (``DELETED`` when the job is gone).
        time: when this session saw the change (epoch seconds on the session's wall
            clock).
    """

    job_id: str
    job_name: str
    old_status: str | None
    new_status: str
    time: float

    @property
    def terminal(self) -> bool:
        """True when the job reached its end (a ``FINISHED:*`` status, or deletion)."""
        return self.new_status == DELETED or monitor_terminal(self.new_status)


def _snapshot_one(meta: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    return {str(meta["job_id"]): (str(meta.get("name", "")), str(meta.get("status", "")))}


def watch_jobs(
    ctx: FlowContext, job_id: str | None = None, poll_interval: float = 2.0
) -> ClientFlow[None]:
    """Yield ``Emit(JobChange)`` for every status change seen (see the module docstring).

    Raises:
        InvalidArgumentError: ``poll_interval <= 0`` or a malformed job id (nothing sent).
        JobNotFound: watching one job that does not exist (at the start).
    """
    _, interval = check_monitor_args(0, poll_interval)
    one = None if job_id is None else check_job_id(job_id)
    known: dict[str, tuple[str, str]] = {}
    while True:
        if one is None:
            rows = yield from list_jobs(ctx)
            seen = {str(r["job_id"]): (str(r["job_name"]), str(r["status"])) for r in rows}
        else:
            try:
                meta = yield from get_job_meta(ctx, one)
                seen = _snapshot_one(meta)
            except JobNotFound:
                if not known:
                    raise
                seen = {}
        now: float = yield WallClock()
        for jid, (name, status) in seen.items():
            before = known.get(jid)
            if before is None or before[1] != status:
                old = None if before is None else before[1]
                yield Emit(event=JobChange(jid, name, old, status, now))
        for jid, (name, status) in known.items():
            if jid not in seen:
                yield Emit(event=JobChange(jid, name, status, DELETED, now))
        known = seen
        if one is not None:
            current = known.get(one)
            if current is None or monitor_terminal(current[1]):
                return None
        yield Sleep(seconds=interval, wake_on=ANY_JOB if one is None else one)
