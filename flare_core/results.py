"""The result of each command: what ``AdminService.handle`` puts in ``Ok.value``.

Each command declares its result type as the class attribute ``result`` (``commands.py``);
these are the structs those declarations name. Handlers still build plain dicts (the reply
value is JSON-able data, not these objects): the structs describe that data, so the OpenAPI
document can give every route its own success schema, and a test decodes live replies with
them to keep the two from drifting.

Class attribute (not a field) of a ``Result``:
    extra: what the keys not named by the fields hold. ``None``: there are none (the object is
        closed); ``Any``: free-form data the server passes through (job meta, engine reports),
        said so in the schema; a type: one entry of that type per other key (site names).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

import msgspec

__all__ = [
    "ClientDisabled",
    "ClientEnabled",
    "ClientStatusRow",
    "ClientsDisabled",
    "ClientsEnabled",
    "ConnectedClient",
    "DeletedJob",
    "DownloadTicket",
    "FreeForm",
    "JobLogs",
    "JobMeta",
    "JobRow",
    "Result",
    "RunningJob",
    "ServerStatus",
    "SiteJob",
    "SiteReports",
    "SiteStatus",
    "SiteTexts",
    "SiteVersion",
    "StudyCapabilities",
    "StudyDetail",
    "StudyIdentity",
    "StudyInfo",
    "StudyListing",
    "StudyRemoved",
    "StudySitesAdded",
    "StudySitesRemoved",
    "StudyUser",
    "StudyUserRemoved",
    "SystemActions",
    "SystemStatus",
]


class Result(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Base of the result structs; optional keys are absent, not null, in replies."""

    extra: ClassVar[Any] = None


FreeForm = Annotated[
    dict[str, Any],
    msgspec.Meta(description="Free-form: whatever the engine reports, passed through as is."),
]
"""A JSON object the server does not shape (an engine's stats or resources)."""

SiteTexts = Annotated[
    dict[str, str], msgspec.Meta(description="One confirmation text per site, keyed by site.")
]
SiteReports = Annotated[
    dict[str, FreeForm],
    msgspec.Meta(description="Per site (keyed by site name), the engine's free-form report."),
]


# --- jobs ---------------------------------------------------------------------------------


class JobMeta(Result, frozen=True, kw_only=True):
    """A job's stored meta: these keys always, plus whatever the job definition carried.

    Free-form beyond the named keys: ``meta.json`` may hold any key and the server keeps it.
    """

    extra: ClassVar[Any] = Any
    job_id: str
    status: str
    study: str
    name: str | None = None
    submit_time: float | None = None
    submit_time_iso: str | None = None
    start_time: str | None = None
    duration: str | None = None
    submitter_name: str | None = None


class JobRow(Result, frozen=True, kw_only=True):
    """A ``list_jobs`` row: the summary keys, or with ``detailed`` the whole meta (free-form).

    ``submit_time`` is the ISO text in a summary row and the epoch float in a detailed one.
    """

    extra: ClassVar[Any] = Any
    job_id: str
    status: str
    study: str
    job_name: str | None = None
    submit_time: str | float | None = None
    duration: str | None = None


class DeletedJob(Result, frozen=True, kw_only=True):
    """What ``delete_job`` did: the job and how many user submit tokens it tombstoned."""

    job_id: str
    submit_records_marked_deleted: int


class JobLogs(Result, frozen=True, kw_only=True):
    """A job's logs by site, and the sites whose log is missing with the reason."""

    logs: dict[str, str]
    unavailable: dict[str, str] = msgspec.field(default_factory=dict)


# --- system and sites -----------------------------------------------------------------------


class RunningJob(Result, frozen=True, kw_only=True):
    """A RUNNING job as the server lists it."""

    job_id: str
    app_name: str


class SiteJob(Result, frozen=True, kw_only=True):
    """A RUNNING job as a client site lists it."""

    job_id: str
    app_name: str
    status: str


class ServerStatus(Result, frozen=True, kw_only=True):
    """The server's entry of ``check_status``."""

    status: str
    start_time: float | None
    jobs: list[RunningJob]


class SiteStatus(Result, frozen=True, kw_only=True):
    """A client site's entry of ``check_status`` (keyed by the site name)."""

    status: str
    last_connect_time: float | None
    jobs: list[SiteJob]


class ConnectedClient(Result, frozen=True, kw_only=True):
    """A connected client in the reference's ``clients`` rows."""

    client_name: str
    client_last_conn_time: float | None
    fqcn: str


class ClientStatusRow(Result, frozen=True, kw_only=True):
    """One reference ``client_status`` row: a job on a client, or ``status: no_jobs``."""

    client_name: str
    status: str
    job_id: str | None = None
    app_name: str | None = None


class SystemStatus(Result, frozen=True, kw_only=True):
    """``check_status``: ``server`` and one ``SiteStatus`` per addressed client (keyed by the
    site name), beside the reference's keys (present for the targets addressed)."""

    extra: ClassVar[Any] = SiteStatus
    server: ServerStatus | None = None
    server_status: str | None = None
    server_start_time: float | None = None
    jobs: list[RunningJob] | None = None
    clients: list[ConnectedClient] | None = None
    client_status: list[ClientStatusRow] | None = None


class SiteVersion(Result, frozen=True, kw_only=True):
    """A site's software version."""

    version: str


class SystemActions(Result, frozen=True, kw_only=True):
    """What ``restart``/``shutdown`` did: the server's outcome and one per client."""

    server_status: str | None = None
    client_status: dict[str, str] | None = None


class ClientDisabled(Result, frozen=True, kw_only=True):
    """The row of a disabled client."""

    client_name: str
    state: str
    already_disabled: bool
    active_session_removed: bool
    credential_revoked: bool
    rejoin_allowed: bool


class ClientEnabled(Result, frozen=True, kw_only=True):
    """The row of an enabled client."""

    client_name: str
    state: str
    was_disabled: bool
    credential_revoked: bool
    rejoin_allowed: bool


class ClientsDisabled(Result, frozen=True, kw_only=True):
    """``disable_client``: one row per client."""

    clients: list[ClientDisabled]


class ClientsEnabled(Result, frozen=True, kw_only=True):
    """``enable_client``: one row per client."""

    clients: list[ClientEnabled]


# --- studies ---------------------------------------------------------------------------------


class StudyInfo(Result, frozen=True, kw_only=True):
    """A study: its org groups, their sites, and its users."""

    name: str
    site_orgs: dict[str, list[str]]
    sites: list[str]
    users: list[str]


class StudySitesAdded(Result, frozen=True, kw_only=True):
    """``add_study_site``: what was added, what was enrolled already, and the new groups."""

    study: str
    added: list[str]
    already_enrolled: list[str]
    site_orgs: dict[str, list[str]]
    sites: list[str]


class StudySitesRemoved(Result, frozen=True, kw_only=True):
    """``remove_study_site``: what was removed, what was not enrolled, and the new groups."""

    study: str
    removed: list[str]
    not_enrolled: list[str]
    site_orgs: dict[str, list[str]]
    sites: list[str]


class StudyRemoved(Result, frozen=True, kw_only=True):
    """``remove_study``: the study is gone."""

    name: str
    removed: bool


class StudyIdentity(Result, frozen=True, kw_only=True):
    """The caller, as ``list_studies`` reports it."""

    name: str
    org: str
    role: str


class StudyCapabilities(Result, frozen=True, kw_only=True):
    """What the caller may do in a study."""

    submit_job: bool


class StudyDetail(Result, frozen=True, kw_only=True):
    """One visible study, the caller's role in it, and why it may not submit (if so)."""

    name: str
    role: str
    capabilities: StudyCapabilities
    can_submit_job: bool
    reason: str | None = None


class StudyListing(Result, frozen=True, kw_only=True):
    """``list_studies``: the caller, the visible study names, and one detail per study."""

    identity: StudyIdentity
    studies: list[str]
    study_details: list[StudyDetail]


class StudyUser(Result, frozen=True, kw_only=True):
    """``add_study_user``: the user now in the study."""

    study: str
    user: str


class StudyUserRemoved(Result, frozen=True, kw_only=True):
    """``remove_study_user``: the user is no longer in the study."""

    study: str
    user: str
    removed: bool


class DownloadTicket(Result, frozen=True, kw_only=True):
    """A download command's reply inside the service: the id its host opens the archive by
    (HTTP and WebSocket then stream the archive itself, not this value)."""

    download_id: str
