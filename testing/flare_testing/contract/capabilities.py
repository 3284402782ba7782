"""Capabilities: what an implementation under contract declares it does, with the reason.

The contract suite encodes flare-core's behaviour. Where flare-core deliberately differs from
the reference (NVIDIA FLARE; see DECISIONS.md), or where a test needs a back door a harness
may not have, the test names a capability with ``@pytest.mark.flare_requires(...)``. An
implementation declares the capabilities it has (the ``flare_capabilities`` fixture); tests
needing an undeclared one are skipped with the reason from ``REASONS``. Capabilities are
declared, never sniffed, so a skip always says why (sqlalchemy ``testing/requirements.py``).

Two kinds exist:

* behaviour capabilities (``DECISIONS §n``): flare-core's choice where the reference differs;
  a real NVIDIA FLARE deployment leaves them out;
* harness capabilities: back doors of the test harness (virtual time, job control, ...); a
  harness over a real deployment declares those it can provide.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = [
    "ABORT_RETURNS_NONE",
    "ALL_CAPABILITIES",
    "ARGUMENT_ERRORS",
    "CLIENT_STATUS_NONE",
    "COMMAND_LOG",
    "CONTEXT_MANAGER",
    "DASH_NAMES",
    "DELETE_LIVE_JOB",
    "DESTRUCTIVE_OPS",
    "EXACTLY_ONCE_SUBMIT",
    "FAULT_INJECTION",
    "JOB_CONTROL",
    "JOB_EVENTS",
    "NAMED_LOGIN",
    "PLAIN_SHELL_OUTPUT",
    "QUICK_JOBS",
    "READ_RETRIES",
    "REASONS",
    "RELAXED_LOG_RIGHTS",
    "SERVER_JOB_IDS",
    "SERVER_STATUS_STARTED",
    "SITE_CONTROL",
    "SITE_REFUSALS_TYPED",
    "SITE_REJOIN",
    "STATUS_BY_SITE",
    "STUDY_ADMIN",
    "UNBOUNDED_TOKEN_HASH",
    "USER_ADMIN",
    "VIRTUAL_TIME",
    "WATCH_JOBS",
    "WORKSPACE_FILES",
    "WORKSPACE_SHELL",
    "missing",
    "skip_reason",
]

# --- behaviour capabilities (flare-core decisions where the reference differs) -------------

ARGUMENT_ERRORS = "argument_errors"
PLAIN_SHELL_OUTPUT = "plain_shell_output"
READ_RETRIES = "read_retries"
EXACTLY_ONCE_SUBMIT = "exactly_once_submit"
UNBOUNDED_TOKEN_HASH = "unbounded_token_hash"
DELETE_LIVE_JOB = "delete_live_job"
ABORT_RETURNS_NONE = "abort_returns_none"
SERVER_JOB_IDS = "server_job_ids"
SERVER_STATUS_STARTED = "server_status_started"
STATUS_BY_SITE = "status_by_site"
CLIENT_STATUS_NONE = "client_status_none"
WORKSPACE_SHELL = "workspace_shell"
RELAXED_LOG_RIGHTS = "relaxed_log_rights"
JOB_EVENTS = "job_events"
CONTEXT_MANAGER = "context_manager"
WATCH_JOBS = "watch_jobs"
DASH_NAMES = "dash_names"
NAMED_LOGIN = "named_login"
SITE_REFUSALS_TYPED = "site_refusals_typed"

# --- harness capabilities (back doors) -------------------------------------------------------

VIRTUAL_TIME = "virtual_time"
JOB_CONTROL = "job_control"
SITE_CONTROL = "site_control"
SITE_REJOIN = "site_rejoin"
USER_ADMIN = "user_admin"
STUDY_ADMIN = "study_admin"
FAULT_INJECTION = "fault_injection"
COMMAND_LOG = "command_log"
WORKSPACE_FILES = "workspace_files"
DESTRUCTIVE_OPS = "destructive_ops"
QUICK_JOBS = "quick_jobs"

REASONS: Mapping[str, str] = {
    ARGUMENT_ERRORS: (
        "local argument errors raise InvalidArgumentError (a ValueError), before anything is "
        "sent, instead of the reference's built-in SyntaxError/TypeError/AssertionError "
        "(DECISIONS §4)"
    ),
    PLAIN_SHELL_OUTPUT: (
        "shell output is data: text containing 'not authorized' is returned, not raised "
        "(DECISIONS §5)"
    ),
    READ_RETRIES: (
        "idempotent reads are retried after a connection failure; the reference retries only "
        "abort_job and shutdown (DECISIONS §7)"
    ),
    EXACTLY_ONCE_SUBMIT: (
        "submit_job without a token is exactly-once under retries via a private session "
        "token; the reference never retries submit_job (DECISIONS §8)"
    ),
    UNBOUNDED_TOKEN_HASH: (
        "submit-token content hashing has no per-file size limit; the reference rejects "
        "members over 10 MiB (DECISIONS §9)"
    ),
    DELETE_LIVE_JOB: (
        "delete_job aborts a DISPATCHED/RUNNING job first, as the seed says; the reference "
        "refuses with JobNotDone (DECISIONS §10)"
    ),
    ABORT_RETURNS_NONE: (
        "abort_job returns None as the seed says; the reference returns the server's "
        "message (DECISIONS §11)"
    ),
    SERVER_JOB_IDS: (
        "job ids are always server-generated UUID4s; the reference may use a job_id from "
        "meta.json (DECISIONS §12)"
    ),
    SERVER_STATUS_STARTED: (
        "ServerInfo.status is 'started' whenever the server is up; the reference reports "
        "'stopped' when no job runs (DECISIONS §13)"
    ),
    STATUS_BY_SITE: (
        "check_status and report_resources return dicts keyed by site with dict values; "
        "the reference returns its raw meta and string values (DECISIONS §14)"
    ),
    CLIENT_STATUS_NONE: (
        "get_client_job_status returns None when no client is connected (seed); the "
        "reference raises NoClientsAvailable (DECISIONS §15)"
    ),
    WORKSPACE_SHELL: (
        "shell commands run in-process, confined to the target site's workspace, so their "
        "output is predictable; the reference runs real commands in the process's working "
        "directory (DECISIONS §17)"
    ),
    RELAXED_LOG_RIGHTS: (
        "job logs and components follow the download_job rule and report_version is a view "
        "right; the reference allows them to project_admin only (DECISIONS §19)"
    ),
    JOB_EVENTS: (
        "a waiting session wakes as soon as its job changes status instead of sleeping out "
        "the poll interval (event-pushing transports)"
    ),
    WATCH_JOBS: (
        "sessions stream typed job status changes (watch_jobs, flare-core's addition); the "
        "reference's Session offers only polling"
    ),
    CONTEXT_MANAGER: (
        "sessions are context managers that close on exit (DECISIONS §1); the reference's "
        "Session is not one"
    ),
    DASH_NAMES: (
        "submit tokens and study names may begin with '-' where their formats allow it; the "
        "reference's command parser reads such a value as an option (InternalError)"
    ),
    NAMED_LOGIN: (
        "a login names its user and an unknown name is refused (AuthenticationError); the "
        "reference knows an admin only by the startup kit it logs in with (a kit logs in "
        "under any name), and a user without a kit fails its Session's own assertion"
    ),
    SITE_REFUSALS_TYPED: (
        "a command the client sites refuse under their authorization policy raises "
        "AuthorizationError; the reference's server reports the sites' refusal as "
        "InternalError ('failed to shut down all clients')"
    ),
    VIRTUAL_TIME: "the harness can advance the system's clock (advance(), now)",
    JOB_CONTROL: "the harness can finish, fail, hold and release jobs",
    SITE_CONTROL: "the harness can connect and disconnect client sites",
    SITE_REJOIN: (
        "tests may remove or disable a connected site: the system gets it back as it was (a "
        "fresh system per test; NVFlare 2.9 loses a rejoined site's org, so later study "
        "commands refuse that site)"
    ),
    USER_ADMIN: "the harness can add users at run time",
    STUDY_ADMIN: "the harness can write studies into the registry directly",
    FAULT_INJECTION: "the harness can make the next transport calls fail",
    COMMAND_LOG: "the harness counts the requests that reached the system",
    WORKSPACE_FILES: "the harness can write files and job logs into a site's workspace",
    QUICK_JOBS: (
        "jobs run to their end within a second or so, so the suite may wait for dozens of "
        "them; a real federation takes about ten seconds a job"
    ),
    DESTRUCTIVE_OPS: (
        "the system may be restarted and shut down by tests (a fresh system per test)"
    ),
}

ALL_CAPABILITIES: frozenset[str] = frozenset(REASONS)
"""Every capability the suite knows; FakeFlare declares them all."""


def missing(declared: Iterable[str], required: Iterable[str]) -> list[str]:
    """List the required capabilities that were not declared, in the order required.

    Args:
        declared: the capabilities the implementation declared.
        required: the capabilities a test needs.

    Returns:
        The undeclared ones (empty when the test can run).

    Raises:
        ValueError: a required name is not a known capability (a typo in a test).
    """
    have = set(declared)
    unknown = [name for name in required if name not in REASONS]
    if unknown:
        raise ValueError(f"unknown capabilities: {unknown}")
    return [name for name in required if name not in have]


def skip_reason(names: Iterable[str]) -> str:
    """The skip message for undeclared capabilities: each name with its reason."""
    return "; ".join(f"capability {name!r} not declared: {REASONS[name]}" for name in names)
