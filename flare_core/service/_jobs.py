"""Job commands: list, meta, abort, delete, clone, list components (reference §1, §2.6, §4).

Every job-addressed command first resolves the job for the caller (``ServiceCore.load_job``:
UUID4 id, existing, same study - else ``JobNotFound``), then applies the policy with the job's
submitter, then the status rule of ``flare_core.lifecycle.check_operation``.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator
from typing import Any

from flare_core.commands import (
    AbortJob,
    CloneJob,
    DeleteJob,
    GetJobMeta,
    ListJobComponents,
    ListJobs,
)
from flare_core.errors import InternalError
from flare_core.lifecycle import (
    AbortPlan,
    JobOp,
    JobStatus,
    check_operation,
    creation_fields,
    finish_fields,
    is_terminal,
    plan_abort,
)
from flare_core.listing import check_limit, normalize_study, select_jobs, shape_rows
from flare_core.principal import Principal
from flare_core.replies import Rows
from flare_core.service._core import JOB_ARCHIVE, OutsideLock, ServiceCore, job_blob_prefix
from flare_core.service._scheduler import delete_job_now, schedule
from flare_core.service.ports import JobCursor, JobStore
from flare_core.timefmt import iso_utc
from flare_core.tokens import TokenScope, resolve_for_listing, tombstone, validate_submit_token

__all__ = [
    "abort_job",
    "clone_job",
    "delete_job",
    "get_job_meta",
    "list_job_components",
    "list_jobs",
    "list_jobs_read_only",
    "stop_job",
]

# The meta keys a clone copies (reference §1.3 "Clone").
CLONE_KEYS = (
    "name",
    "job_folder_name",
    "deploy_map",
    "resource_spec",
    "content_location",
    "result_location",
    "approvals",
    "min_clients",
    "mandatory_clients",
    "data_storage_format",
    "study",
    "byoc",
)


def list_jobs(
    core: ServiceCore, principal: Principal, command: ListJobs
) -> list[dict[str, Any]] | OutsideLock:
    """The caller's study's jobs, filtered, ordered and shaped (reference §4.2, §2.6).

    A listing of the study reads and renders outside the service lock (the stores are
    thread-safe): a long detailed listing must not make every other user's call wait (issue
    10, fairness). A limited listing is one query; any other reads the study in pages
    (``scan_study``), and one longer than a page is a ``Rows`` reply that reads the rest of
    its pages as the host sends it: no one holds a full listing's rows at once (issue 12).
    """
    _check_listing(core, principal, command)
    jobs = core.ports.jobs
    if command.submit_token is not None:
        token = validate_submit_token(command.submit_token)
        assert token is not None
        record = core.ports.tokens.get(TokenScope.for_principal(principal, token))
        exists = record is not None and bool(record.job_id) and jobs.get(record.job_id) is not None
        job_id = resolve_for_listing(record, exists)
        found = None if job_id is None else jobs.get(job_id)
        candidates = [] if found is None else [found]
        return select_jobs(
            candidates, command, study=principal.study, caller_name=principal.name, now=core.now()
        )
    now = core.now()
    if command.limit and not command.mine_only:
        # The store cuts to the newest N itself (from an index): no later filter drops rows.
        def newest() -> list[dict[str, Any]]:
            candidates = jobs.query(
                study=principal.study,
                id_prefix=command.id_prefix,
                name_prefix=command.name_prefix,
                newest=command.limit,
            )
            return select_jobs(
                candidates, command, study=principal.study, caller_name=principal.name, now=now
            )

        return OutsideLock(newest, serial=False)
    page_size = max(1, core.config.list_page_size)

    def listing() -> list[dict[str, Any]] | Rows:
        # Read the study a page at a time, in the listing's own order.
        metas = scan_study(jobs, principal.study, command, _newest_first(command), page_size)
        rows = shape_rows(
            metas, command, study=principal.study, caller_name=principal.name, now=now
        )
        if command.limit:
            return _newest(rows, command)
        head = list(itertools.islice(rows, page_size + 1))
        if len(head) <= page_size:
            return head  # a short listing is sent as it is
        return Rows(itertools.chain(head, rows))

    return OutsideLock(listing, serial=False)


def list_jobs_read_only(
    core: ServiceCore, principal: Principal, command: ListJobs, at_most: int
) -> list[dict[str, Any]] | None:
    """``list_jobs`` inside a section that must stay short (``ServiceCore.try_guard``): the
    same rows, order and shape, when it reads at most ``at_most`` of the study's jobs (one
    more, to know that none follows).

    Returns:
        The rows, or None when the listing would read more (a longer study, a larger
        limit): ``list_jobs`` serves it then.
    """
    if command.submit_token is not None or (command.limit and not command.mine_only):
        # One lookup, or one indexed query cut to the limit: bounded by the limit.
        if command.limit and command.limit > at_most:
            return None
        value = list_jobs(core, principal, command)
        rows = value.work() if isinstance(value, OutsideLock) else value
        assert isinstance(rows, list)  # a limited listing is never a ``Rows`` stream
        return rows
    _check_listing(core, principal, command)
    page = core.ports.jobs.page(
        study=principal.study,
        size=at_most + 1,  # a page of ``at_most`` may carry a cursor even when it is all
        newest_first=_newest_first(command),
        id_prefix=command.id_prefix,
        name_prefix=command.name_prefix,
    )
    shaped = shape_rows(
        iter(page.rows), command, study=principal.study, caller_name=principal.name, now=core.now()
    )
    if not command.limit:
        return None if page.after is not None else list(shaped)
    kept = _newest(shaped, command)
    if len(kept) < command.limit and page.after is not None:
        return None  # the caller's newest matches may lie beyond the page
    return kept


def _check_listing(core: ServiceCore, principal: Principal, command: ListJobs) -> None:
    core.authorize(principal, command.right)
    check_limit(command.limit)  # the wire bounds it too; a Backend caller may not have


def _newest_first(command: ListJobs) -> bool:
    # The order a paged listing reads the study in: newest first for ``reverse``, and for a
    # limit (mine_only), whose rows are the newest matches.
    return command.reverse or bool(command.limit)


def _newest(rows: Iterator[dict[str, Any]], command: ListJobs) -> list[dict[str, Any]]:
    # A limit keeps the first rows of a newest-first walk, shown oldest first unless reversed.
    assert command.limit
    kept = list(itertools.islice(rows, command.limit))
    if not command.reverse:
        kept.reverse()
    return kept


def scan_study(
    jobs: JobStore, study: str, command: ListJobs, newest_first: bool, page_size: int
) -> Iterator[dict[str, Any]]:
    """Every job of ``study`` matching the command's prefixes, read ``page_size`` at a time
    (``JobStore.page``), oldest submit first or the exact reverse."""
    after: JobCursor | None = None
    while True:
        page = jobs.page(
            study=study,
            size=page_size,
            after=after,
            newest_first=newest_first,
            id_prefix=command.id_prefix,
            name_prefix=command.name_prefix,
        )
        yield from page.rows
        if page.after is None:
            return
        after = page.after


def get_job_meta(core: ServiceCore, principal: Principal, command: GetJobMeta) -> dict[str, Any]:
    """The stored meta of a job, ``study`` normalised (``duration`` is not recomputed)."""
    meta = core.load_job(principal, command.job_id)
    core.authorize(principal, command.right, meta)
    meta["study"] = normalize_study(meta.get("study"))
    return meta


def stop_job(core: ServiceCore, meta: dict[str, Any]) -> AbortPlan:
    """Abort a job as ``plan_abort`` says (under ``core.guard()``); the job may still be live
    after a ``signal``, until its engine reports the end."""
    job_id = str(meta["job_id"])
    status = str(meta.get("status", ""))
    plan = plan_abort(status, job_id)
    if plan.action == "signal":
        if not core.ports.engine.abort(job_id):
            raise InternalError(f"server internal error: Job {job_id} is not running.")
    elif plan.action == "cancel":
        if status == JobStatus.DISPATCHED:
            # Deployed already: stop the engine's copy; it reports FINISHED:ABORTED itself.
            core.ports.engine.abort(job_id)
        current = core.ports.jobs.get(job_id)
        if current is not None and not is_terminal(str(current.get("status", ""))):
            assert plan.new_status is not None
            changes = finish_fields(current, plan.new_status, core.now())
            updated = core.ports.jobs.update(job_id, changes)
            if updated is not None:
                core.publish(updated)
    return plan


def abort_job(core: ServiceCore, principal: Principal, command: AbortJob) -> str:
    """Abort a job; returns the reference's message (aborting a finished job is a no-op)."""
    meta = core.load_job(principal, command.job_id)
    core.authorize(principal, command.right, meta)
    check_operation(JobOp.ABORT, str(meta.get("status", "")), str(meta["job_id"]))
    return stop_job(core, meta).message


def delete_job(core: ServiceCore, principal: Principal, command: DeleteJob) -> dict[str, Any]:
    """Delete a job (aborting it first when live, DECISIONS §10) and tombstone its tokens.

    Returns:
        ``{"job_id", "submit_records_marked_deleted"}``. A job whose engine stops it
        asynchronously is deleted as soon as it reports its end.
    """
    meta = core.load_job(principal, command.job_id)
    core.authorize(principal, command.right, meta)
    job_id = str(meta["job_id"])
    check_operation(JobOp.DELETE, str(meta.get("status", "")), job_id)
    deleted_time = iso_utc(core.now())
    marked = 0
    for record in core.ports.tokens.for_job(job_id):
        if record.state != "job_deleted":
            core.ports.tokens.put(
                tombstone(record, deleted_time=deleted_time, deleted_by=principal)
            )
            # Private session tokens (DECISIONS §8) are tombstoned too, but the count reports
            # only the caller-visible user tokens, as the reference does.
            marked += record.scope.kind == "user"
    if not is_terminal(str(meta.get("status", ""))):
        stop_job(core, meta)
    current = core.ports.jobs.get(job_id)
    if current is not None and not is_terminal(str(current.get("status", ""))):
        core.pending_deletes.add(job_id)
    else:
        delete_job_now(core, job_id)
    return {"job_id": job_id, "submit_records_marked_deleted": marked}


def clone_job(core: ServiceCore, principal: Principal, command: CloneJob) -> str:
    """Create a new SUBMITTED job from an existing one (reference §1.3 "Clone"); its id."""
    source = core.load_job(principal, command.job_id)
    core.authorize(principal, command.right, source)
    source_id = str(source["job_id"])
    check_operation(JobOp.CLONE, str(source.get("status", "")), source_id)
    blobs = core.ports.blobs
    source_archive = job_blob_prefix(source_id) + JOB_ARCHIVE
    if not blobs.exists(source_archive):
        raise InternalError(f"server internal error: job {source_id} has no stored content")
    job_id = core.ports.ids.job_id()
    meta: dict[str, Any] = {k: copy.deepcopy(source[k]) for k in CLONE_KEYS if k in source}
    meta.update(creation_fields(core.now()))
    meta.update(
        job_id=job_id,
        study=normalize_study(source.get("study")),
        submitter_name=principal.name,
        submitter_org=principal.org,
        submitter_role=principal.role,
        cloned_from=source_id,
    )
    # Shared, not rewritten: blobs are immutable (a clone of a 1 GiB job copies no bytes).
    blobs.copy(source_archive, job_blob_prefix(job_id) + JOB_ARCHIVE)
    core.clone_plan(source, job_id)  # the clone deploys as its source did
    core.ports.jobs.add(meta)
    core.publish(meta)
    schedule(core)
    return job_id


def list_job_components(
    core: ServiceCore, principal: Principal, command: ListJobComponents
) -> list[str]:
    """The job's extra components (``ERRORLOG_<site>``, ``LOG_<file>_<site>``), sorted."""
    meta = core.load_job(principal, command.job_id)
    core.authorize(principal, command.right, meta)
    job_id = str(meta["job_id"])
    check_operation(JobOp.LIST_COMPONENTS, str(meta.get("status", "")), job_id)
    return component_names(core, job_id)


def component_names(core: ServiceCore, job_id: str) -> list[str]:
    """The names of a job's stored components."""
    prefix = job_blob_prefix(job_id) + "components/"
    return [key[len(prefix) :] for key in core.ports.blobs.keys(prefix)]
