"""The commands a session sends to a backend: one frozen struct per operation.

Commands are domain values: the client flows build them, ``AdminService.handle`` consumes them,
and every transport moves them unchanged (msgspec tagged union; ``flare_ports.wire`` holds the
codecs). Fields are keyword-only and unknown fields are ignored on decode, so either side can
add optional fields without breaking the other (schema evolution).

Class attributes (not fields):
    right: the authorization right the command is checked against (policy table key).
    idempotent: True when replaying the command after a lost reply cannot change the outcome;
        only such commands are retried automatically (DECISIONS §7).
    transfer: ``"upload"`` when the command carries a job-folder archive, ``"download"`` when
        its successful reply is an archive stream, else ``None``.
    result: the type of the successful reply's ``Ok.value`` (``flare_core.results``); the
        HTTP API's success schemas come from it, and a test checks live replies against it.
"""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Literal

import msgspec

from flare_core import results as r

__all__ = [
    "COMMAND_TYPES",
    "AbortJob",
    "AddStudySite",
    "AddStudyUser",
    "CheckStatus",
    "CloneJob",
    "Command",
    "ConfigureJobLog",
    "ConfigureSiteLog",
    "DeleteJob",
    "DisableClient",
    "DownloadJobComponents",
    "DownloadJobResult",
    "EnableClient",
    "GetJobLogs",
    "GetJobMeta",
    "ListJobComponents",
    "ListJobs",
    "ListStudies",
    "Logout",
    "RegisterStudy",
    "RemoveClient",
    "RemoveStudy",
    "RemoveStudySite",
    "RemoveStudyUser",
    "ReportResources",
    "ReportVersion",
    "ResetErrors",
    "Restart",
    "ShellCommand",
    "ShowErrors",
    "ShowStats",
    "ShowStudy",
    "Shutdown",
    "SubmitJob",
]

ShellVerb = Literal["ls", "cat", "head", "tail", "grep", "pwd"]
TokenScope = Literal["user", "session"]


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class Command(msgspec.Struct, frozen=True, kw_only=True, tag_field="op", tag=_snake):
    """Base of every command; the wire tag ``op`` is the snake_case class name."""

    right: ClassVar[str] = ""
    idempotent: ClassVar[bool] = False
    transfer: ClassVar[Literal["upload", "download"] | None] = None
    result: ClassVar[object] = None


# --- jobs ---------------------------------------------------------------------------------


class SubmitJob(Command, frozen=True, kw_only=True):
    """Create a job from the uploaded folder archive.

    ``token_scope="session"`` marks a token minted by the session itself for exactly-once
    delivery (DECISIONS §8); such tokens never collide with user tokens.
    """

    right: ClassVar[str] = "submit_job"
    idempotent: ClassVar[bool] = True  # made so by its (user or private) submit token
    transfer: ClassVar[Literal["upload", "download"] | None] = "upload"
    result: ClassVar[object] = str  # the new job's id
    folder_name: str
    submit_token: str | None = None
    token_scope: TokenScope = "user"


class CloneJob(Command, frozen=True, kw_only=True):
    right: ClassVar[str] = "clone_job"
    result: ClassVar[object] = str  # the new job's id
    job_id: str


MAX_LIST_LIMIT = 2**31 - 1
"""The largest ``list_jobs`` limit: far more jobs than a server holds, and an integer every
store and wire format carries (issue 10: ``limit=2**63`` once overflowed SQLite, a 500)."""


class ListJobs(Command, frozen=True, kw_only=True):
    right: ClassVar[str] = "list_jobs"
    idempotent: ClassVar[bool] = True
    result: ClassVar[object] = list[r.JobRow]
    detailed: bool = False
    # Bounded on decode (HTTP query/body, WS JSON and msgpack) and by the client's checks.
    limit: Annotated[int, msgspec.Meta(ge=0, le=MAX_LIST_LIMIT)] | None = None
    id_prefix: str | None = None
    name_prefix: str | None = None
    reverse: bool = False
    submit_token: str | None = None
    mine_only: bool = False


class GetJobMeta(Command, frozen=True, kw_only=True):
    right: ClassVar[str] = "get_job_meta"
    idempotent: ClassVar[bool] = True
    result: ClassVar[object] = r.JobMeta
    job_id: str


class DownloadJobResult(Command, frozen=True, kw_only=True):
    right: ClassVar[str] = "download_job"
    idempotent: ClassVar[bool] = True
    transfer: ClassVar[Literal["upload", "download"] | None] = "download"
    result: ClassVar[object] = r.DownloadTicket
    job_id: str


class ListJobComponents(Command, frozen=True, kw_only=True):
    right: ClassVar[str] = "list_job"
    idempotent: ClassVar[bool] = True
    result: ClassVar[object] = list[str]
    job_id: str


class DownloadJobComponents(Command, frozen=True, kw_only=True):
    right: ClassVar[str] = "download_job_components"
    idempotent: ClassVar[bool] = True
    transfer: ClassVar[Literal["upload", "download"] | None] = "download"
    result: ClassVar[object] = r.DownloadTicket
    job_id: str


class AbortJob(Command, frozen=True, kw_only=True):
    right: ClassVar[str] = "abort_job"
    idempotent: ClassVar[bool] = True  # aborting an aborted job is a no-op
    result: ClassVar[object] = str  # the reference's message
    job_id: str


class DeleteJob(Command, frozen=True, kw_only=True):
    right: ClassVar[str] = "delete_job"
    result: ClassVar[object] = r.DeletedJob
    job_id: str


class GetJobLogs(Command, frozen=True, kw_only=True):
    right: ClassVar[str] = "get_job_log"
    idempotent: ClassVar[bool] = True
    result: ClassVar[object] = r.JobLogs
    job_id: str
    target: str = "server"
    log_file_name: str = "log.txt"


class ConfigureJobLog(Command, frozen=True, kw_only=True):
    right: ClassVar[str] = "configure_job_log"
    result: ClassVar[object] = r.SiteTexts
    job_id: str
    config: str
    target: str = "all"


class ShowStats(Command, frozen=True, kw_only=True):
    right: ClassVar[str] = "show_stats"
    idempotent: ClassVar[bool] = True
    result: ClassVar[object] = r.SiteReports
    job_id: str
    target_type: str
    targets: list[str] = msgspec.field(default_factory=list)


class ShowErrors(Command, frozen=True, kw_only=True):
    right: ClassVar[str] = "show_errors"
    idempotent: ClassVar[bool] = True
    result: ClassVar[object] = r.SiteReports
    job_id: str
    target_type: str
    targets: list[str] = msgspec.field(default_factory=list)


class ResetErrors(Command, frozen=True, kw_only=True):
    right: ClassVar[str] = "reset_errors"
    result: ClassVar[object] = r.SiteTexts
    job_id: str
    target_type: str = "all"
    targets: list[str] = msgspec.field(default_factory=list)


# --- system and sites -----------------------------------------------------------------------


class CheckStatus(Command, frozen=True, kw_only=True):
    right: ClassVar[str] = "check_status"
    idempotent: ClassVar[bool] = True
    result: ClassVar[object] = r.SystemStatus
    target_type: str
    targets: list[str] = msgspec.field(default_factory=list)


class ReportResources(Command, frozen=True, kw_only=True):
    right: ClassVar[str] = "report_resources"
    idempotent: ClassVar[bool] = True
    result: ClassVar[object] = r.SiteReports
    target_type: str
    targets: list[str] = msgspec.field(default_factory=list)


class ReportVersion(Command, frozen=True, kw_only=True):
    right: ClassVar[str] = "report_version"
    idempotent: ClassVar[bool] = True
    result: ClassVar[object] = dict[str, r.SiteVersion]
    target_type: str
    targets: list[str] = msgspec.field(default_factory=list)


class Restart(Command, frozen=True, kw_only=True):
    right: ClassVar[str] = "restart"
    result: ClassVar[object] = r.SystemActions
    target_type: str
    targets: list[str] = msgspec.field(default_factory=list)


class Shutdown(Command, frozen=True, kw_only=True):
    right: ClassVar[str] = "shutdown"
    idempotent: ClassVar[bool] = True  # the reference retries it; a stopped server stays so
    result: ClassVar[object] = r.SystemActions
    target_type: str
    targets: list[str] = msgspec.field(default_factory=list)


class ConfigureSiteLog(Command, frozen=True, kw_only=True):
    right: ClassVar[str] = "configure_site_log"
    result: ClassVar[object] = r.SiteTexts
    config: str
    target: str = "all"


class RemoveClient(Command, frozen=True, kw_only=True):
    right: ClassVar[str] = "remove_client"
    result: ClassVar[object] = None
    client_name: str


class DisableClient(Command, frozen=True, kw_only=True):
    right: ClassVar[str] = "disable_client"
    result: ClassVar[object] = r.ClientsDisabled
    client_name: str


class EnableClient(Command, frozen=True, kw_only=True):
    right: ClassVar[str] = "enable_client"
    result: ClassVar[object] = r.ClientsEnabled
    client_name: str


class ShellCommand(Command, frozen=True, kw_only=True):
    """``ls``/``cat``/``head``/``tail``/``grep``/``pwd`` on a site's workspace (the right is
    the verb)."""

    idempotent: ClassVar[bool] = True
    result: ClassVar[object] = str  # what the coreutils command prints
    verb: ShellVerb
    target: str
    options: str | None = None
    path: str | None = None
    pattern: str | None = None


# --- studies ---------------------------------------------------------------------------------


class RegisterStudy(Command, frozen=True, kw_only=True):
    right: ClassVar[str] = "register_study"
    result: ClassVar[object] = r.StudyInfo
    study: str
    sites: list[str] | None = None
    site_orgs: list[str] | None = None


class AddStudySite(Command, frozen=True, kw_only=True):
    right: ClassVar[str] = "add_study_site"
    result: ClassVar[object] = r.StudySitesAdded
    study: str
    sites: list[str] | None = None
    site_orgs: list[str] | None = None


class RemoveStudySite(Command, frozen=True, kw_only=True):
    right: ClassVar[str] = "remove_study_site"
    result: ClassVar[object] = r.StudySitesRemoved
    study: str
    sites: list[str] | None = None
    site_orgs: list[str] | None = None


class RemoveStudy(Command, frozen=True, kw_only=True):
    right: ClassVar[str] = "remove_study"
    result: ClassVar[object] = r.StudyRemoved
    study: str


class ListStudies(Command, frozen=True, kw_only=True):
    right: ClassVar[str] = "list_studies"
    idempotent: ClassVar[bool] = True
    result: ClassVar[object] = r.StudyListing


class ShowStudy(Command, frozen=True, kw_only=True):
    right: ClassVar[str] = "show_study"
    idempotent: ClassVar[bool] = True
    result: ClassVar[object] = r.StudyInfo
    study: str


class AddStudyUser(Command, frozen=True, kw_only=True):
    right: ClassVar[str] = "add_study_user"
    result: ClassVar[object] = r.StudyUser
    study: str
    user: str


class RemoveStudyUser(Command, frozen=True, kw_only=True):
    right: ClassVar[str] = "remove_study_user"
    result: ClassVar[object] = r.StudyUserRemoved
    study: str
    user: str


# --- session -----------------------------------------------------------------------------------


class Logout(Command, frozen=True, kw_only=True):
    """End the server-side session (best effort; sent by ``close()``)."""

    idempotent: ClassVar[bool] = True
    result: ClassVar[object] = None


COMMAND_TYPES: tuple[type[Command], ...] = (
    SubmitJob,
    CloneJob,
    ListJobs,
    GetJobMeta,
    DownloadJobResult,
    ListJobComponents,
    DownloadJobComponents,
    AbortJob,
    DeleteJob,
    GetJobLogs,
    ConfigureJobLog,
    ShowStats,
    ShowErrors,
    ResetErrors,
    CheckStatus,
    ReportResources,
    ReportVersion,
    Restart,
    Shutdown,
    ConfigureSiteLog,
    RemoveClient,
    DisableClient,
    EnableClient,
    ShellCommand,
    RegisterStudy,
    AddStudySite,
    RemoveStudySite,
    RemoveStudy,
    ListStudies,
    ShowStudy,
    AddStudyUser,
    RemoveStudyUser,
    Logout,
)
"""Every concrete command, in a stable order (the wire union and the OpenAPI document)."""
