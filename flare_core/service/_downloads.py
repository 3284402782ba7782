"""Downloads: a command prepares one (``{"download_id": ...}``), ``open_download`` streams it.

A job result download is a zip laid out as the reference's unpacked download:

* ``job/<job_folder_name>/...`` - the uploaded job folder (``job.zip`` unzipped: the folder
  name is its single top-level directory, as the reference's client zips it);
* ``meta.json`` - the job meta (study normalised) at the time the download was prepared;
* ``workspace/<site>/...`` - each participating site's archived workspace (logs, results).

A components download holds one member per component (``ERRORLOG_<site>``, ...). A download id
is single-use and only opens for the session that prepared it. Members are read lazily while
the caller consumes the stream.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Any

import msgspec

from flare_core.archive import split_wrapper
from flare_core.commands import DownloadJobComponents, DownloadJobResult
from flare_core.errors import InternalError, JobNotFound
from flare_core.lifecycle import JobOp, check_operation
from flare_core.listing import normalize_study
from flare_core.principal import Principal
from flare_core.service._archived_workspace import ArchivedWorkspace
from flare_core.service._core import JOB_ARCHIVE, PendingDownload, ServiceCore, job_blob_prefix
from flare_core.service._jobs import component_names

__all__ = ["download_job_components", "download_job_result", "open_download"]


def download_job_result(
    core: ServiceCore, principal: Principal, command: DownloadJobResult
) -> dict[str, Any]:
    """Prepare a finished job's result download.

    Raises:
        JobNotFound, AuthorizationError, JobNotDone: the usual job checks.
    """
    meta = core.load_job(principal, command.job_id)
    core.authorize(principal, command.right, meta)
    job_id = str(meta["job_id"])
    check_operation(JobOp.DOWNLOAD_RESULT, str(meta.get("status", "")), job_id)
    meta["study"] = normalize_study(meta.get("study"))
    download = PendingDownload(
        owner=principal.session_id,
        job_id=job_id,
        kind="result",
        meta_json=msgspec.json.encode(meta),
    )
    return {"download_id": core.add_download(download)}


def download_job_components(
    core: ServiceCore, principal: Principal, command: DownloadJobComponents
) -> dict[str, Any]:
    """Prepare a download of a job's extra components.

    Raises:
        InternalError: ``"no_job_components: No components to download"`` when there are none.
    """
    meta = core.load_job(principal, command.job_id)
    core.authorize(principal, command.right, meta)
    job_id = str(meta["job_id"])
    check_operation(JobOp.DOWNLOAD_COMPONENTS, str(meta.get("status", "")), job_id)
    if not component_names(core, job_id):
        raise InternalError("no_job_components: No components to download")
    download = PendingDownload(owner=principal.session_id, job_id=job_id, kind="components")
    return {"download_id": core.add_download(download)}


def _lazy(open_member: Callable[[], Iterable[bytes]]) -> Iterator[bytes]:
    # Open the member only when the packer reaches it, so no file is held open early.
    yield from open_member()


def open_download(core: ServiceCore, principal: Principal, download_id: str) -> Iterator[bytes]:
    """Stream a prepared download as a zip archive (single use).

    Raises:
        JobNotFound: unknown, consumed or foreign download id, or the job is gone.
    """
    with core.guard():
        core.require_running()
        download = core.downloads.get(download_id) if isinstance(download_id, str) else None
        if download is None or download.owner != principal.session_id:
            raise JobNotFound(f"no such download: {download_id}")
        del core.downloads[download_id]
        if core.ports.jobs.get(download.job_id) is None:
            raise JobNotFound(f"no such job: {download.job_id}")
        members = _members(core, download)
    return core.ports.packer.pack(members)


def _members(core: ServiceCore, download: PendingDownload) -> list[tuple[str, Iterable[bytes]]]:
    blobs = core.ports.blobs
    prefix = job_blob_prefix(download.job_id)
    members: list[tuple[str, Iterable[bytes]]] = []
    if download.kind == "components":
        for key in blobs.keys(prefix + "components/"):
            name = key[len(prefix + "components/") :]
            members.append((name, _lazy(partial(blobs.read, key))))
        return members
    archive = blobs.archive(prefix + JOB_ARCHIVE)
    wrapper, files = split_wrapper(archive.names())
    inner = f"{wrapper}/" if wrapper else ""
    meta = msgspec.json.decode(download.meta_json)
    folder = str(meta.get("job_folder_name") or wrapper or download.job_id)
    for rel in files:
        members.append((f"job/{folder}/{rel}", _lazy(partial(archive.open, inner + rel))))
    members.append(("meta.json", [download.meta_json]))
    for name, open_file in ArchivedWorkspace(core, download.job_id).files():
        members.append((f"workspace/{name}", _lazy(open_file)))
    return members
