"""``submit_job`` (reference §2.3, §2.4; DECISIONS §8, §9, §12).

Pipeline: authorize -> check the token and folder name -> store the upload under a scratch key
(``ports.SCRATCH_PREFIX``; outside the lock: it may be large) -> open it through the blob
store's zipsafe checks -> validate the job definition -> hash the content when a token is
given -> under the lock: study enrollment, then the token decision, then create the job with a
server-generated UUID4 and move the upload to ``jobs/<id>/job.zip``. The staging blob is
always cleaned up.

User tokens and the session's private tokens (``token_scope="session"``) live in separate
scopes, so they never collide.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from flare_core.archive import verify_members
from flare_core.commands import SubmitJob
from flare_core.errors import InternalError
from flare_core.jobdef import (
    JobDefinition,
    check_enrollment,
    check_folder_name,
    validate_job_definition,
)
from flare_core.lifecycle import creation_fields
from flare_core.principal import Principal
from flare_core.service._core import JOB_ARCHIVE, ServiceCore, job_blob_prefix
from flare_core.service._scheduler import schedule
from flare_core.service.ports import SCRATCH_PREFIX
from flare_core.studies import enrolled_sites
from flare_core.timefmt import iso_local
from flare_core.tokens import (
    Conflict,
    Create,
    Deleted,
    Recover,
    Replay,
    TokenScope,
    content_hash,
    decide,
    mark_created,
    new_record,
    raise_for,
    validate_submit_token,
)

__all__ = ["submit_job"]

_DATA_STORAGE_FORMAT = 2


def submit_job(
    core: ServiceCore, principal: Principal, command: SubmitJob, upload: Iterable[bytes] | None
) -> str:
    """Create a job from an uploaded folder archive; returns its id.

    Raises:
        AuthorizationError: the caller may not submit.
        InvalidArgumentError: a malformed submit token.
        InvalidJobDefinition: bad folder name, not a safe zip, a job-definition rule, or a
            deploy-map site not enrolled in the session's study.
        SubmitTokenConflict / SubmitTokenJobDeleted: the token's record refuses this submit.
        InternalError: no upload.
    """
    with core.guard():
        core.require_running()
        core.authorize(principal, command.right)
    token = validate_submit_token(command.submit_token)
    check_folder_name(command.folder_name)
    if upload is None:
        raise InternalError("server internal error: missing upload file")
    staging = f"{SCRATCH_PREFIX}{core.ports.ids.secret()}/"
    try:
        core.ports.blobs.write(staging + JOB_ARCHIVE, upload)
        archive = core.ports.blobs.archive(staging + JOB_ARCHIVE)
        # Every CRC and real size, before anything reads a member; with a token, the content
        # hash's digests in the same pass.
        digests = verify_members(archive, digests=token is not None)
        jobdef = validate_job_definition(archive, command.folder_name)
        digest = content_hash(archive, digests) if token is not None else ""
        with core.guard():
            core.require_running()
            enrolled = enrolled_sites(core.registry(), principal.study)
            check_enrollment(jobdef.deploy_sites, principal.study, enrolled)
            if token is None:
                return _create_job(core, principal, jobdef, staging, core.ports.ids.job_id())
            scope = TokenScope.for_principal(principal, token, kind=command.token_scope)
            return _submit_with_token(core, principal, jobdef, staging, scope, digest)
    finally:
        core.ports.blobs.delete_prefix(staging)


def _submit_with_token(
    core: ServiceCore,
    principal: Principal,
    jobdef: JobDefinition,
    staging: str,
    scope: TokenScope,
    digest: str,
) -> str:
    """The record algorithm of reference §2.4 (runs under the service lock)."""
    tokens, jobs = core.ports.tokens, core.ports.jobs
    # Two rounds: if creating the record loses a race, re-read it and decide again.
    for _ in range(2):
        record = tokens.get(scope)
        exists = record is not None and bool(record.job_id) and jobs.get(record.job_id) is not None
        decision = decide(record, digest, exists)
        if isinstance(decision, (Conflict, Deleted)):
            raise_for(decision)
        if isinstance(decision, Replay):
            if record is not None and record.state == "creating":
                tokens.put(mark_created(record))
            return decision.job_id
        if isinstance(decision, Recover) and record is not None:
            # The earlier attempt reserved an id but never created the job: create it now.
            job_id = decision.job_id or core.ports.ids.job_id()
            _create_job(core, principal, jobdef, staging, job_id)
            tokens.put(mark_created(msgspec.structs.replace(record, job_id=job_id)))
            return job_id
        if isinstance(decision, Create):
            job_id = core.ports.ids.job_id()
            name = jobdef.meta.get("name")
            fresh = new_record(
                scope,
                job_id=job_id,
                job_name=name if isinstance(name, str) and name else jobdef.folder_name,
                job_folder_name=jobdef.folder_name,
                content_hash=digest,
                submit_time=iso_local(core.now()),
            )
            if not tokens.create(fresh):
                continue
            _create_job(core, principal, jobdef, staging, job_id)
            tokens.put(mark_created(fresh))
            return job_id
    raise InternalError("server internal error: the submit token record could not be created")


def _create_job(
    core: ServiceCore, principal: Principal, jobdef: JobDefinition, staging: str, job_id: str
) -> str:
    """Store the job (meta per reference §1.4) and its archive; schedule it."""
    meta: dict[str, Any] = {
        **jobdef.meta,
        **creation_fields(core.now()),
        "job_id": job_id,
        "study": principal.study,
        "submitter_name": principal.name,
        "submitter_org": principal.org,
        "submitter_role": principal.role,
        "job_folder_name": jobdef.folder_name,
        "data_storage_format": _DATA_STORAGE_FORMAT,
    }
    core.ports.blobs.move(staging + JOB_ARCHIVE, job_blob_prefix(job_id) + JOB_ARCHIVE)
    # The plan is stored before the meta: a job is never visible without it (a crash between
    # the two leaves an orphan blob for recovery to collect).
    core.store_plan(job_id, jobdef.plan)
    core.ports.jobs.add(meta)
    core.publish(meta)
    schedule(core)
    return job_id
