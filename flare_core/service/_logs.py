"""Job logs (reference §5.1, server side) and ``configure_job_log`` (§6.14).

Where a site's log comes from, first found wins: the site's live workspace
(``<job_id>/<file>``), the job's archived workspace (``<site>/<file>``), then - for a
client - the stored component ``LOG_<file>_<site>``. Only ``log.json`` is honoured as a file
name; anything else reads ``log.txt``. Each text is the last ``max_log_bytes`` bytes (5 MiB),
decoded as UTF-8 with replacement, prefixed by a marker line when cut.

Targets: ``server``; ``all``/``@all`` (the server plus the deploy-map clients, the clients the
job was deployed to, and any site with an archived log or LOG component, sorted); anything else
is one client site name, compared case-sensitively and not checked against the known sites.
Sites without a log are listed under ``unavailable`` with the reference's reason strings.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flare_core.commands import ConfigureJobLog, GetJobLogs
from flare_core.errors import InvalidTarget
from flare_core.info import TargetType
from flare_core.lifecycle import JobOp, check_operation
from flare_core.principal import Principal
from flare_core.service._archived_workspace import ArchivedWorkspace
from flare_core.service._core import ServiceCore, job_blob_prefix
from flare_core.service._scheduler import client_sites_of
from flare_core.site_names import SERVER_SITE, is_all_sites

__all__ = ["SERVER_LOG_UNAVAILABLE", "SITE_LOG_UNAVAILABLE", "configure_job_log", "get_job_logs"]

SERVER_LOG_UNAVAILABLE = "server log not available for this job"
SITE_LOG_UNAVAILABLE = "client log stream not available for this job"


def _tail(chunks: Iterable[bytes], cap: int) -> tuple[bytes, bool]:
    """The last ``cap`` bytes of a stream, and whether anything was cut."""
    kept = bytearray()
    cut = False
    for chunk in chunks:
        kept += chunk
        if len(kept) > cap:
            del kept[: len(kept) - cap]
            cut = True
    return bytes(kept), cut


def _render(data: bytes, cut: bool, cap: int) -> str:
    text = data.decode("utf-8", "replace")
    return f"... output truncated to last {cap} bytes ...\n{text}" if cut else text


def _read_log(
    core: ServiceCore, archived: ArchivedWorkspace, job_id: str, site: str, file: str
) -> str | None:
    cap = core.config.max_log_bytes
    tree = core.ports.workspaces.tree(site)
    if tree is not None:
        stat = tree.stat(f"{job_id}/{file}")
        if stat is not None and stat.kind == "file":
            try:
                # Only the last ``cap`` bytes are read: a huge log costs no more than that.
                data = tree.read(f"{job_id}/{file}", max(0, stat.size - cap))
                kept, cut = _tail([data], cap)
                return _render(kept, cut or stat.size > cap, cap)
            except (OSError, KeyError):
                pass  # deleted between stat and read: look in the archive instead
    kept_file = archived.read(f"{site}/{file}")
    if kept_file is not None:
        return _render(*_tail(kept_file, cap), cap)
    if site != SERVER_SITE:
        try:
            component = core.ports.blobs.read(
                f"{job_blob_prefix(job_id)}components/LOG_{file}_{site}"
            )
        except KeyError:
            return None
        return _render(*_tail(component, cap), cap)
    return None


def _all_sites(core: ServiceCore, meta: dict[str, Any], archived: ArchivedWorkspace) -> list[str]:
    job_id = str(meta["job_id"])
    sites = set(core.deploy_plan(meta).client_sites)
    sites.update(client_sites_of(meta))
    prefix = job_blob_prefix(job_id)
    for name, _ in archived.files():
        site = name.split("/", 1)[0]
        if site != SERVER_SITE:
            sites.add(site)
    for key in core.ports.blobs.keys(prefix + "components/LOG_"):
        name = key[len(prefix + "components/LOG_") :]
        for file in ("log.txt_", "log.json_"):
            if name.startswith(file) and len(name) > len(file):
                sites.add(name[len(file) :])
    return sorted(sites)


def get_job_logs(core: ServiceCore, principal: Principal, command: GetJobLogs) -> dict[str, Any]:
    """``{"logs": {site: text}}``, plus ``"unavailable": {site: reason}`` when some are missing."""
    meta = core.load_job(principal, command.job_id)
    core.authorize(principal, command.right, meta)
    job_id = str(meta["job_id"])
    check_operation(JobOp.GET_LOGS, str(meta.get("status", "")), job_id)
    file = "log.json" if command.log_file_name == "log.json" else "log.txt"
    target = command.target.lower()
    logs: dict[str, str] = {}
    unavailable: dict[str, str] = {}
    archived = ArchivedWorkspace(core, job_id)
    # The target was lower-cased: "all", "@all" and "server" match in any case here.
    every = target == TargetType.ALL or is_all_sites(target)
    if every or target == SERVER_SITE:
        text = _read_log(core, archived, job_id, SERVER_SITE, file)
        if text is None:
            unavailable[SERVER_SITE] = SERVER_LOG_UNAVAILABLE
        else:
            logs[SERVER_SITE] = text
    if every:
        sites = _all_sites(core, meta, archived)
    elif target == SERVER_SITE:
        sites = []
    else:
        sites = [command.target]
    for site in sites:
        text = _read_log(core, archived, job_id, site, file)
        if text is None:
            unavailable[site] = SITE_LOG_UNAVAILABLE
        else:
            logs[site] = text
    value: dict[str, Any] = {"logs": logs}
    if unavailable:
        value["unavailable"] = unavailable
    return value


def configure_job_log(
    core: ServiceCore, principal: Principal, command: ConfigureJobLog
) -> dict[str, str]:
    """Apply a log configuration to a running job on its target sites.

    ``target`` is ``all`` (the server and the job's connected clients), ``server``, or one
    connected client the job runs on.

    Returns:
        ``{site: "log config updated"}`` for every site configured.

    Raises:
        InternalError: the job is not RUNNING (``"error: Job <id> must be running but is
            <status>"``).
        InvalidTarget: a client that is not connected or does not run the job.
    """
    meta = core.load_job(principal, command.job_id)
    core.authorize(principal, command.right, meta)
    job_id = str(meta["job_id"])
    check_operation(JobOp.CONFIGURE_JOB_LOG, str(meta.get("status", "")), job_id)
    connected = set(core.connected_clients())
    clients = [site for site in client_sites_of(meta) if site in connected]
    if command.target == TargetType.ALL:
        sites = [SERVER_SITE, *clients]
    elif command.target == SERVER_SITE:
        sites = [SERVER_SITE]
    elif command.target in clients:
        sites = [command.target]
    else:
        raise InvalidTarget(f"invalid client(s): {command.target}")
    for site in sites:
        core.ports.engine.configure_job_log(job_id, site, command.config)
    return dict.fromkeys(sites, "log config updated")
