"""Client flows of the job methods: submit, clone, list, meta, download, abort, delete,
logs and job-log configuration (reference §1-§2, §4.1, §5.1; DECISIONS §3, §8, §10-§12).

Each flow validates its arguments with the shared rule modules before yielding anything, so a
bad argument raises before a single byte is sent.
"""

from __future__ import annotations

import posixpath
from typing import Any

from flare_core.commands import (
    AbortJob,
    CloneJob,
    ConfigureJobLog,
    DeleteJob,
    DownloadJobComponents,
    DownloadJobResult,
    GetJobLogs,
    GetJobMeta,
    ListJobComponents,
    SubmitJob,
    TokenScope,
)
from flare_core.errors import InternalError, InvalidArgumentError, InvalidJobDefinition
from flare_core.flows._calls import call, download, upload
from flare_core.flows._context import ClientFlow, FlowContext
from flare_core.jobdef import check_folder_name
from flare_core.listing import build_list_jobs
from flare_core.site_names import SERVER_SITE
from flare_core.steps import InspectPath, PathInfo
from flare_core.tokens import validate_submit_token
from flare_core.validation import (
    check_job_id,
    check_log_target,
    check_tail_lines,
    encode_job_log_config,
    filter_logs,
)

__all__ = [
    "abort_job",
    "clone_job",
    "configure_job_log",
    "delete_job",
    "download_job_components",
    "download_job_result",
    "get_job_logs",
    "get_job_meta",
    "list_job_components",
    "list_jobs",
    "submit_job",
]


def _resolve_job_folder(ctx: FlowContext, job_definition_path: object) -> ClientFlow[PathInfo]:
    # Reference §2.1 steps 1-2: the path as given, else relative to upload_dir.
    if not job_definition_path:
        raise InvalidJobDefinition("job_definition_path is required but not specified.")
    if not isinstance(job_definition_path, str):
        raise InvalidJobDefinition(
            f"job_definition_path must be str but got {type(job_definition_path)}."
        )
    info: PathInfo = yield InspectPath(path=job_definition_path)
    if info.is_dir:
        return info
    info = yield InspectPath(path=posixpath.join(ctx.upload_dir, job_definition_path))
    if info.is_dir:
        return info
    raise InvalidJobDefinition(f"job_definition_path '{job_definition_path}' is not a valid folder")


def submit_job(
    ctx: FlowContext, job_definition_path: str, submit_token: str | None = None
) -> ClientFlow[str]:
    """Upload a job folder and return the new (or replayed) job id.

    Without a user token a private session-scoped token is minted (DECISIONS §8), so that the
    automatic retries of this one call can never create two jobs.

    Raises:
        InvalidJobDefinition: the path is missing, not a folder, or its name is unsupported;
            or the server rejected the definition.
        InvalidArgumentError: ``submit_token`` is malformed.
    """
    folder = yield from _resolve_job_folder(ctx, job_definition_path)
    folder_name = posixpath.basename(folder.path.rstrip("/"))
    check_folder_name(folder_name)
    token = validate_submit_token(submit_token)
    scope: TokenScope = "user"
    if token is None:
        token, scope = ctx.mint_token(), "session"
    command = SubmitJob(folder_name=folder_name, submit_token=token, token_scope=scope)
    job_id = yield from upload(ctx, command, folder.path)
    if not isinstance(job_id, str) or not job_id:
        raise InternalError("server failed to return job id")
    return job_id


def clone_job(ctx: FlowContext, job_id: str) -> ClientFlow[str]:
    """Clone a job; return the new job's id (never retried: it is not idempotent)."""
    job_id = check_job_id(job_id)
    new_id = yield from call(ctx, CloneJob(job_id=job_id))
    if not isinstance(new_id, str) or not new_id:
        raise InternalError(f"server failed to return job id: {new_id!r}")
    return new_id


def list_jobs(
    ctx: FlowContext,
    detailed: bool = False,
    limit: int | None = None,
    id_prefix: str | None = None,
    name_prefix: str | None = None,
    reverse: bool = False,
    submit_token: str | None = None,
    **kwargs: object,
) -> ClientFlow[list[dict[str, Any]]]:
    """List the session study's jobs (reference §4.1 client side)."""
    command = build_list_jobs(
        detailed, limit, id_prefix, name_prefix, reverse, submit_token, **kwargs
    )
    jobs = yield from call(ctx, command)
    if jobs is None:
        return []
    if not isinstance(jobs, list):
        raise InternalError(f"list_jobs returned {type(jobs).__name__}, not a list")
    return jobs


def get_job_meta(ctx: FlowContext, job_id: str) -> ClientFlow[dict[str, Any]]:
    """Return a job's stored meta (``study`` normalised by the server)."""
    job_id = check_job_id(job_id)
    meta = yield from call(ctx, GetJobMeta(job_id=job_id))
    if not meta or not isinstance(meta, dict):
        raise InternalError("server failed to return job meta")
    return meta


def download_job_result(
    ctx: FlowContext, job_id: str, destination: str | None = None
) -> ClientFlow[str]:
    """Download a finished job's result into ``<destination or download_dir>/<job_id>[__N]``."""
    job_id = check_job_id(job_id)
    if destination is not None and (not isinstance(destination, str) or not destination):
        raise InvalidArgumentError("destination must be a non-empty str or None")
    parent = destination if destination is not None else ctx.download_dir
    path = yield from download(ctx, DownloadJobResult(job_id=job_id), parent, job_id)
    return path


def list_job_components(ctx: FlowContext, job_id: str) -> ClientFlow[list[str]]:
    """Return the names of a job's additional components (``ERRORLOG_site-1``, ...)."""
    job_id = check_job_id(job_id)
    names = yield from call(ctx, ListJobComponents(job_id=job_id))
    if names is None:
        return []
    if not isinstance(names, list):
        raise InternalError(f"list_job_components returned {type(names).__name__}")
    return [str(name) for name in names]


def download_job_components(ctx: FlowContext, job_id: str) -> ClientFlow[str]:
    """Download a job's additional components into ``<download_dir>/<job_id>[__N]``."""
    job_id = check_job_id(job_id)
    path = yield from download(ctx, DownloadJobComponents(job_id=job_id), ctx.download_dir, job_id)
    return path


def abort_job(ctx: FlowContext, job_id: str) -> ClientFlow[None]:
    """Abort a job; aborting a finished job is a no-op (DECISIONS §11). Returns None."""
    job_id = check_job_id(job_id)
    yield from call(ctx, AbortJob(job_id=job_id))
    return None


def delete_job(ctx: FlowContext, job_id: str) -> ClientFlow[dict[str, Any]]:
    """Delete a job (aborting it first when live, DECISIONS §10).

    Returns:
        ``{"job_id": ..., "submit_records_marked_deleted": int}``.
    """
    job_id = check_job_id(job_id)
    result = yield from call(ctx, DeleteJob(job_id=job_id))
    if not isinstance(result, dict):
        raise InternalError(f"delete_job returned {type(result).__name__}, not a dict")
    result.setdefault("job_id", job_id)
    result.setdefault("submit_records_marked_deleted", 0)
    return result


def get_job_logs(
    ctx: FlowContext,
    job_id: str,
    target: str = SERVER_SITE,
    tail_lines: int | None = None,
    grep_pattern: str | None = None,
    log_file_name: str = "log.txt",
) -> ClientFlow[dict[str, Any]]:
    """Fetch a job's logs; ``tail_lines``/``grep_pattern`` filter locally (reference §5.1).

    Returns:
        ``{"logs": {site: text}}`` plus ``"unavailable": {site: reason}`` when the server
        reported any.
    """
    job_id = check_job_id(job_id)
    target = check_log_target(target)
    tail = check_tail_lines(tail_lines)
    if grep_pattern is not None and not isinstance(grep_pattern, str):
        raise InvalidArgumentError("grep_pattern must be a str")
    if not isinstance(log_file_name, str) or not log_file_name:
        raise InvalidArgumentError("log_file_name must be a non-empty str")
    value = yield from call(
        ctx, GetJobLogs(job_id=job_id, target=target, log_file_name=log_file_name)
    )
    payload: dict[str, Any]
    if not isinstance(value, dict):
        payload = {"logs": {}}
    elif "logs" in value:
        payload = {"logs": value["logs"]}
        if "unavailable" in value:
            payload["unavailable"] = value["unavailable"]
    else:
        payload = {"logs": value}
    return filter_logs(payload, tail, grep_pattern)


def configure_job_log(
    ctx: FlowContext, job_id: str, config: object, target: str = "all"
) -> ClientFlow[dict[str, Any]]:
    """Change a running job's log configuration (dict configs travel as JSON text).

    Returns:
        The server's result dict (``{}`` when it sent none).
    """
    job_id = check_job_id(job_id)
    encoded = encode_job_log_config(config)
    target = check_log_target(target)
    result = yield from call(ctx, ConfigureJobLog(job_id=job_id, config=encoded, target=target))
    return result if isinstance(result, dict) else {}
