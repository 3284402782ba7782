"""``show_stats`` / ``show_errors`` / ``reset_errors`` (reference §8, server side).

Checks, in the reference's order: the job (``JobNotFound``), the targets (§6.1), a live job
process on the engine (``JobNotRunning``), then the policy. The value is keyed by site:
``"server"`` for ``server``/``all``, each addressed client for ``client``/``all``, holding what
the engine reports for that site (``{}`` when it has nothing).
"""

from __future__ import annotations

from typing import Any

from flare_core.commands import ResetErrors, ShowErrors, ShowStats
from flare_core.errors import JobNotRunning
from flare_core.lifecycle import JobOp, check_operation
from flare_core.principal import Principal
from flare_core.service._core import ServiceCore
from flare_core.site_names import SERVER_SITE

__all__ = ["reset_errors", "show_errors", "show_stats"]

_OPS: dict[type, JobOp] = {
    ShowStats: JobOp.SHOW_STATS,
    ShowErrors: JobOp.SHOW_ERRORS,
    ResetErrors: JobOp.RESET_ERRORS,
}


def _prepare(
    core: ServiceCore, principal: Principal, command: ShowStats | ShowErrors | ResetErrors
) -> tuple[str, list[str]]:
    meta = core.load_job(principal, command.job_id)
    job_id = str(meta["job_id"])
    server, clients = core.resolve_targets(principal, command.target_type, command.targets)
    if not core.ports.engine.is_running(job_id):
        raise JobNotRunning(f"job {job_id} is not running")
    check_operation(_OPS[type(command)], str(meta.get("status", "")), job_id)
    core.authorize(principal, command.right, meta)
    return job_id, ([SERVER_SITE] if server else []) + clients


def show_stats(core: ServiceCore, principal: Principal, command: ShowStats) -> dict[str, Any]:
    """Each addressed site's statistics for a running job."""
    job_id, sites = _prepare(core, principal, command)
    return {site: core.ports.engine.stats(job_id, site) for site in sites}


def show_errors(core: ServiceCore, principal: Principal, command: ShowErrors) -> dict[str, Any]:
    """Each addressed site's error statistics for a running job."""
    job_id, sites = _prepare(core, principal, command)
    return {site: core.ports.engine.errors(job_id, site) for site in sites}


def reset_errors(core: ServiceCore, principal: Principal, command: ResetErrors) -> dict[str, Any]:
    """Clear each addressed site's error statistics; a confirmation text per site."""
    job_id, sites = _prepare(core, principal, command)
    value: dict[str, Any] = {}
    for site in sites:
        core.ports.engine.reset_errors(job_id, site)
        kind = "server" if site == SERVER_SITE else "client"  # words of the message
        value[site] = f"reset the {kind} error stats for job: {job_id}"
    return value
