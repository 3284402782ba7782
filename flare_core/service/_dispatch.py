"""The command table: which handler serves which command type.

Every concrete type of ``flare_core.commands.COMMAND_TYPES`` has exactly one entry (a test
checks it). ``SubmitJob`` is served separately because it alone takes an upload.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flare_core import commands as c
from flare_core.principal import Principal
from flare_core.service import (
    _downloads,
    _jobs,
    _logs,
    _sessions,
    _sites,
    _stats,
    _studies_cmds,
    _system,
)
from flare_core.service._core import ServiceCore

__all__ = ["HANDLERS", "Handler"]

Handler = Callable[[ServiceCore, Principal, Any], Any]
"""``(core, principal, command) -> JSON-able value``; raises domain exceptions on failure."""


def _logout(core: ServiceCore, principal: Principal, command: c.Logout) -> None:
    _sessions.end_session(core, principal)


HANDLERS: Mapping[type[c.Command], Handler] = {
    c.CloneJob: _jobs.clone_job,
    c.ListJobs: _jobs.list_jobs,
    c.GetJobMeta: _jobs.get_job_meta,
    c.DownloadJobResult: _downloads.download_job_result,
    c.ListJobComponents: _jobs.list_job_components,
    c.DownloadJobComponents: _downloads.download_job_components,
    c.AbortJob: _jobs.abort_job,
    c.DeleteJob: _jobs.delete_job,
    c.GetJobLogs: _logs.get_job_logs,
    c.ConfigureJobLog: _logs.configure_job_log,
    c.ShowStats: _stats.show_stats,
    c.ShowErrors: _stats.show_errors,
    c.ResetErrors: _stats.reset_errors,
    c.CheckStatus: _system.check_status,
    c.ReportResources: _system.report_resources,
    c.ReportVersion: _system.report_version,
    c.Restart: _system.restart,
    c.Shutdown: _system.shutdown,
    c.ConfigureSiteLog: _system.configure_site_log,
    c.RemoveClient: _sites.remove_client,
    c.DisableClient: _sites.disable_client,
    c.EnableClient: _sites.enable_client,
    c.ShellCommand: _sites.run_shell_command,
    c.RegisterStudy: _studies_cmds.register_study,
    c.AddStudySite: _studies_cmds.add_study_site,
    c.RemoveStudySite: _studies_cmds.remove_study_site,
    c.RemoveStudy: _studies_cmds.remove_study,
    c.ListStudies: _studies_cmds.list_studies,
    c.ShowStudy: _studies_cmds.show_study,
    c.AddStudyUser: _studies_cmds.add_study_user,
    c.RemoveStudyUser: _studies_cmds.remove_study_user,
    c.Logout: _logout,
}
