"""System commands: status, resources, version, restart, shutdown, site log level (§6).

``check_status`` value (DECISIONS §13, §14; also carries the reference's meta keys so a client
can build ``SystemInfo`` and existing tools keep working). For ``server``/``all``::

    {
        "server": {"status": "started", "start_time": <epoch float>,
                   "jobs": [{"job_id": str, "app_name": str}, ...]},      # RUNNING jobs
        "server_status": "started",                                       # reference keys
        "server_start_time": <epoch float>,
        "jobs": [{"job_id": str, "app_name": str}, ...],
        "clients": [{"client_name": str, "client_last_conn_time": <epoch float>,
                     "fqcn": str}, ...],                  # only when a client is connected
    }

and for ``client``/``all``, one entry per addressed client plus the reference's rows::

    {
        "<site>": {"status": "started", "last_connect_time": <epoch float>,
                   "jobs": [{"job_id": str, "app_name": str, "status": "started"}, ...]},
        "client_status": [{"client_name", "app_name", "job_id", "status": "started"}   # per job
                          | {"client_name", "status": "no_jobs"}, ...],
    }

The reference keys win over a site that happens to share their name. ``all`` while no client
can be addressed fails like the reference: ``InternalError("error: no responses from
clients")``.

``report_resources`` -> ``{"server": {...}, "<site>": {...}}`` (dicts, DECISIONS §14);
``report_version`` -> ``{"server": {"version": ...}, "<site>": {"version": ...}}``.

``restart`` refuses while a job is DISPATCHED/RUNNING (``JobNotDone``); ``server``/``all``
restarts the addressed clients (they reconnect with a new ``last_connect_time``) and then the
server (a new ``start_time``): ``{"server_status": "ok", "client_status": {site: "ok"}}``.
``shutdown`` refuses while a job runs, and ``server`` refuses while clients are connected
(``ClientsStillRunning``); ``client``/``all`` disconnects the addressed clients; ``server``/
``all`` then stops the service: every later call fails with ``NoConnection`` until the host
calls ``AdminService.start()``.
"""

from __future__ import annotations

from typing import Any

from flare_core.commands import (
    CheckStatus,
    ConfigureSiteLog,
    ReportResources,
    ReportVersion,
    Restart,
    Shutdown,
)
from flare_core.errors import ClientsStillRunning, InternalError, InvalidTarget, JobNotDone
from flare_core.info import TargetType
from flare_core.lifecycle import JobStatus
from flare_core.principal import Principal
from flare_core.service._core import ServiceCore
from flare_core.service._scheduler import client_app, client_sites_of, schedule, server_app
from flare_core.site_names import SERVER_SITE
from flare_core.validation import check_site_log_config

__all__ = [
    "check_status",
    "configure_site_log",
    "report_resources",
    "report_version",
    "restart",
    "shutdown",
]

_LIVE = (JobStatus.DISPATCHED.value, JobStatus.RUNNING.value)


def _running_jobs(core: ServiceCore) -> list[dict[str, Any]]:
    return core.ports.jobs.unfinished((JobStatus.RUNNING,))


def check_status(core: ServiceCore, principal: Principal, command: CheckStatus) -> dict[str, Any]:
    """The server's and the addressed clients' status (shape in the module docstring)."""
    core.authorize(principal, command.right)
    server, clients = core.resolve_targets(principal, command.target_type, command.targets)
    if command.target_type == TargetType.ALL and not clients:
        raise InternalError("error: no responses from clients")
    running = _running_jobs(core)
    value: dict[str, Any] = {}
    reference: dict[str, Any] = {}
    known = core.sites_by_name()
    if clients:
        rows: list[dict[str, Any]] = []
        for name in clients:
            site = known.get(name)
            jobs = [
                {
                    "job_id": str(m["job_id"]),
                    "app_name": client_app(core, m, name),
                    "status": "started",
                }
                for m in running
                if name in client_sites_of(m)
            ]
            value[name] = {
                "status": "started",
                "last_connect_time": None if site is None else site.last_connect_time,
                "jobs": jobs,
            }
            rows.extend({"client_name": name, **job} for job in jobs)
            if not jobs:
                rows.append({"client_name": name, "status": "no_jobs"})
        reference["client_status"] = rows
    if server:
        jobs = [{"job_id": str(m["job_id"]), "app_name": server_app(core, m)} for m in running]
        value[SERVER_SITE] = {"status": "started", "start_time": core.start_time, "jobs": jobs}
        reference.update(server_status="started", server_start_time=core.start_time, jobs=jobs)
        connected = [s for s in known.values() if s.connected]
        if connected:
            reference["clients"] = [
                {
                    "client_name": s.name,
                    "client_last_conn_time": s.last_connect_time,
                    "fqcn": s.name,
                }
                for s in connected
            ]
    value.update(reference)
    return value


def report_resources(
    core: ServiceCore, principal: Principal, command: ReportResources
) -> dict[str, Any]:
    """What each addressed site reports about its resources."""
    core.authorize(principal, command.right)
    server, clients = core.resolve_targets(principal, command.target_type, command.targets)
    sites = ([SERVER_SITE] if server else []) + clients
    return {site: core.ports.engine.resources(site) for site in sites}


def report_version(
    core: ServiceCore, principal: Principal, command: ReportVersion
) -> dict[str, Any]:
    """Each addressed site's software version."""
    core.authorize(principal, command.right)
    server, clients = core.resolve_targets(principal, command.target_type, command.targets)
    value: dict[str, Any] = {}
    if server:
        value[SERVER_SITE] = {"version": core.config.version}
    known = core.sites_by_name()
    for name in clients:
        site = known.get(name)
        value[name] = {"version": core.config.version if site is None else site.version}
    return value


def _refuse_while_running(core: ServiceCore, action: str) -> None:
    if core.ports.jobs.unfinished(_LIVE):
        raise JobNotDone(
            f"There are still jobs running. Please let them finish or abort_job before {action}."
        )


def restart(core: ServiceCore, principal: Principal, command: Restart) -> dict[str, Any]:
    """Restart the addressed clients and/or the server (see the module docstring)."""
    core.authorize(principal, command.right)
    server, clients = core.resolve_targets(principal, command.target_type, command.targets)
    _refuse_while_running(core, "restart")
    value: dict[str, Any] = {}
    if clients:
        for name in clients:
            core.reconnect(name)
        value["client_status"] = dict.fromkeys(clients, "ok")
    if server:
        core.restart_server()
        value["server_status"] = "ok"
    schedule(core)
    return value


def shutdown(core: ServiceCore, principal: Principal, command: Shutdown) -> dict[str, Any]:
    """Shut down the addressed clients and/or the server (see the module docstring)."""
    core.authorize(principal, command.right)
    server, clients = core.resolve_targets(principal, command.target_type, command.targets)
    _refuse_while_running(core, "shutdown")
    if command.target_type == TargetType.SERVER and core.connected_clients():
        raise ClientsStillRunning("one or more clients are still running")
    value: dict[str, Any] = {}
    if clients:
        for name in clients:
            core.disconnect(name)
        value["client_status"] = dict.fromkeys(clients, "shutdown")
    if server:
        core.running = False
        value["server_status"] = "stopped"
    return value


def configure_site_log(
    core: ServiceCore, principal: Principal, command: ConfigureSiteLog
) -> dict[str, str]:
    """Set a log level or mode on the server and/or clients (``all``, ``server``, a client).

    Returns:
        ``{site: "log config updated"}``.

    Raises:
        InvalidArgumentError: not a log level or built-in mode.
        InvalidTarget: a client name that is not connected (or not enrolled).
    """
    core.authorize(principal, command.right)
    config = check_site_log_config(command.config)
    if command.target == TargetType.ALL:
        sites = [SERVER_SITE, *core.resolve_targets(principal, TargetType.ALL, None)[1]]
    elif command.target == SERVER_SITE:
        sites = [SERVER_SITE]
    elif command.target in core.connected_clients():
        sites = [core.resolve_site(principal, command.target)]
    else:
        raise InvalidTarget(f"invalid client(s): {command.target}")
    for site in sites:
        core.ports.engine.configure_site_log(site, config)
    return dict.fromkeys(sites, "log config updated")
