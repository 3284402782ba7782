"""Scheduling and the engine's reports: SUBMITTED -> DISPATCHED -> RUNNING -> FINISHED:*.

A SUBMITTED job is dispatched as soon as enough enrolled, connected, enabled client sites exist:

* an explicit deploy map needs ``min_clients`` of its client sites connected (all of them when
  ``min_clients`` is absent) and deploys to those that are;
* ``@ALL`` deploys to every connected (enrolled) client and needs ``min_clients`` of them
  (at least one when absent);
* every ``mandatory_clients`` site must be among them.

Otherwise the job stays SUBMITTED; ``schedule`` runs again whenever a site connects or is
enabled, a job ends, the server restarts or the study registry changes. A job whose deploy map
names a site that is no longer enrolled in its study ends as ``FINISHED:CAN_NOT_SCHEDULE``.
Jobs are considered oldest first; ``ServiceConfig.max_running_jobs`` bounds how many may be
DISPATCHED or RUNNING at once (any number when None). With ``timers`` in the ports and
a ``dispatch_delay``, a pass runs that long after its trigger (a scheduler tick), so a new job is
observably SUBMITTED first.

When the engine reports a job's end, its workspace on every participating site is archived
(outside the service lock, in bounded pieces) into the blob store (``_archived_workspace``)
*before* the terminal status is stored and published, so a client that sees ``FINISHED:*`` can
download results and logs at once.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any, Literal

from flare_core.lifecycle import (
    InvalidTransition,
    JobStatus,
    Trigger,
    finish_fields,
    is_terminal,
    start_fields,
    transition,
)
from flare_core.listing import job_name, normalize_study
from flare_core.service._archived_workspace import archive_workspace
from flare_core.service._core import JOB_ARCHIVE, ServiceCore, job_blob_prefix
from flare_core.service.ports import JobLaunch
from flare_core.site_names import SERVER_SITE
from flare_core.studies import enrolled_sites

__all__ = [
    "EngineCallbacks",
    "client_app",
    "client_sites_of",
    "delete_job_now",
    "schedule",
    "schedule_now",
    "server_app",
]

_TRIGGERS: dict[JobStatus, Trigger] = {
    JobStatus.FINISHED_COMPLETED: Trigger.COMPLETE,
    JobStatus.FINISHED_ABORTED: Trigger.ABORT,
    JobStatus.FINISHED_EXECUTION_EXCEPTION: Trigger.EXECUTION_EXCEPTION,
    JobStatus.FINISHED_ABNORMAL: Trigger.ABNORMAL,
    JobStatus.FINISHED_CANT_SCHEDULE: Trigger.CANT_SCHEDULE,
    JobStatus.FAILED_TO_RUN: Trigger.FAIL_TO_RUN,
    JobStatus.ABANDONED: Trigger.ABANDON,
}
_LIVE = (JobStatus.DISPATCHED, JobStatus.RUNNING)
_WAITING = (JobStatus.SUBMITTED, JobStatus.APPROVED)  # what ``_try_dispatch`` can dispatch


def client_sites_of(meta: dict[str, Any]) -> list[str]:
    """The client sites a dispatched job was deployed to (meta ``job_clients``)."""
    clients = meta.get("job_clients")
    if not isinstance(clients, list):
        return []
    names = (c.get("name") if isinstance(c, dict) else c for c in clients)
    return [n for n in names if isinstance(n, str)]


def server_app(core: ServiceCore, meta: dict[str, Any]) -> str:
    """The name of the app a job deploys to the server (``"?"`` when unknown)."""
    return core.deploy_plan(meta).app_for(SERVER_SITE) or "?"


def client_app(core: ServiceCore, meta: dict[str, Any], site: str) -> str:
    """The name of the app a job deploys to ``site`` (``"?"`` when unknown)."""
    return core.deploy_plan(meta).app_for(site) or "?"


def _min_clients(meta: dict[str, Any]) -> int | None:
    value = meta.get("min_clients")
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def _placement(core: ServiceCore, meta: dict[str, Any]) -> list[str] | Literal["blocked"] | None:
    """Where a SUBMITTED job can run now: its client sites, None (wait), or ``"blocked"``
    (it can never run: a deploy-map site left the job's study)."""
    plan = core.deploy_plan(meta)
    uses_all = plan.uses_all
    explicit = plan.client_sites
    enrolled = enrolled_sites(core.registry(), normalize_study(meta.get("study")))
    if enrolled is not None and any(s not in enrolled for s in explicit):
        return "blocked"
    disabled = core.ports.sites.disabled()
    available = [
        s
        for s in core.connected_clients()
        if s not in disabled and (enrolled is None or s in enrolled)
    ]
    minimum = _min_clients(meta)
    if uses_all:
        candidates = available
        required = minimum if minimum is not None else 1
    else:
        candidates = [s for s in explicit if s in available]
        required = minimum if minimum is not None else len(explicit)
    mandatory = meta.get("mandatory_clients")
    if isinstance(mandatory, list) and any(m not in candidates for m in mandatory):
        return None
    return candidates if len(candidates) >= required else None


def _set_status(
    core: ServiceCore, meta: dict[str, Any], status: JobStatus, extra: dict[str, Any]
) -> dict[str, Any] | None:
    updated = core.ports.jobs.update(str(meta["job_id"]), {**extra, "status": status.value})
    if updated is not None:
        core.publish(updated)
    return updated


def schedule(core: ServiceCore) -> None:
    """Ask for a scheduling pass: after ``dispatch_delay`` when the ports have timers (passes
    requested meanwhile are coalesced), else at once. Must be called under ``core.guard()``.
    """
    timers = core.ports.timers
    delay = core.config.dispatch_delay
    if timers is None or delay <= 0:
        schedule_now(core)
        return
    if core.schedule_pending:
        return
    core.schedule_pending = True

    def tick() -> None:
        with core.guard():
            core.schedule_pending = False
            schedule_now(core)

    timers.call_later(delay, tick)


def schedule_now(core: ServiceCore) -> None:
    """Dispatch every SUBMITTED job that can run now (oldest first); re-entrant safe.

    Must be called under ``core.guard()``.
    """
    if core.scheduling:
        core.reschedule = True  # the running pass starts over once it is done
        return
    core.scheduling = True
    try:
        core.reschedule = True
        while core.reschedule and core.running:
            core.reschedule = False
            waiting = core.ports.jobs.unfinished(_WAITING)
            if not waiting:
                break
            limit = core.config.max_running_jobs
            # Only a limit needs the live count; the pass never reads the running jobs else
            # (with hundreds running, reading them on every submit and job end was the cost).
            live = 0 if limit is None else len(core.ports.jobs.unfinished(_LIVE))
            for candidate in waiting:
                if limit is not None and live >= limit:
                    break  # a job's end triggers the next pass
                live += _try_dispatch(core, str(candidate.get("job_id", "")))
    finally:
        core.scheduling = False


def _try_dispatch(core: ServiceCore, job_id: str) -> bool:
    """Dispatch one job if it can run now; True when it was handed to the engine."""
    meta = core.ports.jobs.get(job_id)  # re-read: an engine callback may have moved it
    if meta is None or meta.get("status") not in (JobStatus.SUBMITTED, JobStatus.APPROVED):
        return False
    placement = _placement(core, meta)
    if placement is None:
        return False
    if placement == "blocked":
        now = core.now()
        status = transition(str(meta["status"]), Trigger.CANT_SCHEDULE)
        _set_status(core, meta, status, finish_fields(meta, status, now))
        return False
    detail = ["server: OK", *(f"{site}: OK" for site in placement)]
    dispatched = _set_status(
        core,
        meta,
        transition(str(meta["status"]), Trigger.DISPATCH),
        {
            "job_clients": [{"name": site, "fqcn": site} for site in placement],
            "job_deploy_detail": detail,
            "last_schedule_time": core.now(),
            "schedule_count": int(meta.get("schedule_count") or 0) + 1,
        },
    )
    if dispatched is None:
        return False
    try:
        archive = core.ports.blobs.archive(job_blob_prefix(job_id) + JOB_ARCHIVE)
        core.ports.engine.launch(
            JobLaunch(
                job_id=job_id,
                study=normalize_study(dispatched.get("study")),
                name=job_name(dispatched),
                sites=list(placement),
                meta=dispatched,
                archive=archive,
            )
        )
    except Exception as exc:  # any engine failure means the job failed to run, not a server error
        current = core.ports.jobs.get(job_id)
        if current is not None and current.get("status") == JobStatus.DISPATCHED:
            reason = {"finish_reason": str(exc)} if str(exc) else {}
            _set_status(core, current, JobStatus.FAILED_TO_RUN, reason)
        return False
    return True


def delete_job_now(core: ServiceCore, job_id: str) -> None:
    """Remove a job, its blobs and its workspace files, and publish its deletion."""
    meta = core.ports.jobs.get(job_id)
    core.pending_deletes.discard(job_id)
    if meta is None:
        return
    core.ports.jobs.remove(job_id)
    core.ports.blobs.delete_prefix(job_blob_prefix(job_id))
    core.forget_plan(job_id)
    core.ports.workspaces.remove_job(job_id)
    core.publish(meta, status="DELETED")


class EngineCallbacks:
    """The ``EngineListener`` the service attaches to its engine."""

    def __init__(self, core: ServiceCore) -> None:
        self._core = core

    def job_started(self, job_id: str) -> None:
        """DISPATCHED -> RUNNING, with ``start_time``."""
        core = self._core
        with core.guard():
            meta = core.ports.jobs.get(job_id)
            if meta is None or meta.get("status") != JobStatus.DISPATCHED:
                return
            status = transition(str(meta["status"]), Trigger.START)
            _set_status(core, meta, status, start_fields(core.now()))

    def job_progress(self, job_id: str, progress: dict[str, Any]) -> None:
        """Store a RUNNING job's progress in its meta and publish it (status unchanged)."""
        core = self._core
        with core.guard():
            meta = core.ports.jobs.get(job_id)
            if meta is None or meta.get("status") != JobStatus.RUNNING:
                return
            updated = core.ports.jobs.update(job_id, {"progress": dict(progress)})
            if updated is not None:
                core.publish(updated)

    def job_finished(self, job_id: str, status: str, reason: str = "") -> None:
        """Archive the workspace, store the terminal status (and ``finish_reason`` when the
        engine gave one), then reschedule.

        The archive is copied outside the service lock: the files are the ended job's own,
        nothing else writes them, and copying a real job's models under the lock would stall
        every other user for as long as the copy takes.
        """
        core = self._core
        with core.guard():
            meta = core.ports.jobs.get(job_id)
            if meta is None or is_terminal(str(meta.get("status", ""))):
                return
        archive_workspace(core, meta, client_sites_of(meta))
        with core.guard():
            meta = core.ports.jobs.get(job_id)
            if meta is None or is_terminal(str(meta.get("status", ""))):
                return
            try:
                final = JobStatus(status)
            except ValueError:
                final = JobStatus.FINISHED_ABNORMAL
            if not final.terminal:
                final = JobStatus.FINISHED_ABNORMAL
            # The engine is authoritative about how a job ended: if the table has no such
            # edge from the stored status, store what the engine said anyway.
            with suppress(InvalidTransition):
                final = transition(str(meta.get("status", "")), _TRIGGERS[final])
            changes = finish_fields(meta, final, core.now())
            reason = core.stop_reasons.pop(job_id, reason)  # a stopping server says why
            if reason:
                changes["finish_reason"] = reason  # the same key startup recovery uses
            _set_status(core, meta, final, changes)
            if job_id in core.pending_deletes:
                delete_job_now(core, job_id)
            schedule(core)
