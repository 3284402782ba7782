"""The public session interfaces: ``SessionSpec`` (the seed's, kept signature for signature)
and its coroutine twin ``AsyncSessionSpec`` (DECISIONS §1-§3).

Common obligations and failures, so each method's docstring lists only its own:

- Every method of a closed session raises ``SessionClosed("session closed")`` and sends
  nothing; after the server ended the session, every method raises ``SessionExpired`` (a
  ``SessionClosed``) and sends nothing.
- Argument errors are raised locally, before anything is sent: ``InvalidArgumentError`` (a
  ``ValueError``) unless a method says otherwise; unknown keyword arguments raise ``TypeError``.
- Any method that talks to the server may raise ``NoConnection`` (the server could not be
  reached, after the automatic retries of idempotent commands), ``AuthorizationError`` (the
  caller's role may not do this) and ``InternalError`` (the server failed).
- A session is bound to one study at login; every command acts inside it, and other
  studies' jobs look like missing jobs (``JobNotFound``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, Protocol, Self

from flare_core import ClientInfo, JobChange, MonitorReturnCode, SystemInfo

__all__ = [
    "AsyncJobMonitorCallback",
    "AsyncSessionSpec",
    "JobMonitorCallback",
    "SessionSpec",
]

P = ParamSpec("P")


class JobMonitorCallback(Protocol):
    """The shape of a ``monitor_job`` callback (the seed's ``job_monitor_cb_signature``).

    Called after every poll with the session, the job id, the freshly polled job meta and the
    extra arguments given to ``monitor_job``; return True to keep monitoring, False to stop
    (the monitor then returns ``ENDED_BY_CB``, even when the job just finished).
    """

    def __call__(
        self,
        session: SessionSpec,
        job_id: str,
        job_meta: dict[str, Any],
        /,
        *args: Any,
        **kwargs: Any,
    ) -> bool:
        """Return True to keep monitoring."""
        ...


class AsyncJobMonitorCallback(Protocol):
    """The shape of an ``AsyncSessionSpec.monitor_job`` callback: like
    ``JobMonitorCallback``, receiving the async session; it may also be a coroutine function."""

    def __call__(
        self,
        session: AsyncSessionSpec,
        job_id: str,
        job_meta: dict[str, Any],
        /,
        *args: Any,
        **kwargs: Any,
    ) -> bool | Awaitable[bool]:
        """Return (or resolve to) True to keep monitoring."""
        ...


# gen_async: source SessionSpec (AsyncSessionSpec, below, is generated from it)
class SessionSpec(ABC):
    """A synchronous admin session with an FL system (the seed's interface, plus DECISIONS
    §1: ``get_job_meta``, ``monitor_job_and_return_job_meta``, ``configure_job_log`` and
    ``configure_site_log``).

    Use it as a context manager (``with connect(...) as session:``) or call ``close()``.
    """

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- jobs -------------------------------------------------------------------------------

    @abstractmethod
    def submit_job(self, job_definition_path: str, submit_token: str | None = None) -> str:
        """Submit the job defined by a local folder.

        The folder (its name must match ``^[A-Za-z0-9][A-Za-z0-9._-]*$``) is zipped with its
        name as the single top-level entry and uploaded. A relative path that is not a
        folder is looked up under the session's ``upload_dir``. Submitting is exactly-once
        per call: the session retries a lost upload under a private token, so a retry never
        creates a second job. A user ``submit_token`` makes separate calls idempotent too:
        the same token with the same content returns the same job id.

        Args:
            job_definition_path: the job folder.
            submit_token: optional retry-safe token (``^[A-Za-z0-9._:-]{1,128}$``), scoped by
                study and submitter.

        Returns:
            The job id (a server-generated UUID4).

        Raises:
            InvalidJobDefinition: the path is empty, not a folder, its name is unsupported,
                or the server rejected the definition (including study enrollment).
            InvalidArgumentError: ``submit_token`` is malformed (nothing is sent).
            SubmitTokenConflict: the token was used for different content
                (``existing_job_id`` names the job).
            SubmitTokenJobDeleted: the token's job was deleted; the token is spent.
        """

    @abstractmethod
    def clone_job(self, job_id: str) -> str:
        """Create a new SUBMITTED job from an existing job's definition.

        Args:
            job_id: the job to clone (any status).

        Returns:
            The new job's id.

        Raises:
            JobNotFound: ``job_id`` is empty, not a str (nothing is sent), or unknown.
        """

    @abstractmethod
    def list_jobs(
        self,
        detailed: bool = False,
        limit: int | None = None,
        id_prefix: str | None = None,
        name_prefix: str | None = None,
        reverse: bool = False,
        submit_token: str | None = None,
        **kwargs: Any,
    ) -> list[dict[str, Any]]:
        """List the session study's jobs, oldest first.

        Args:
            detailed: return full job-meta dicts instead of summary rows (``job_id``,
                ``job_name``, ``status``, ``submit_time`` (ISO), ``duration``, ``study``).
            limit: keep only the newest ``limit`` jobs; 0 or None keeps all.
            id_prefix: case-insensitive job-id prefix.
            name_prefix: case-insensitive prefix of the meta ``name``.
            reverse: newest first.
            submit_token: resolve the job submitted with this token (``[]`` if none).
            **kwargs: legacy aliases ``max_num``, ``job_id_prefix``, ``job_name_prefix``,
                ``id``, ``name``; canonical arguments win.

        Returns:
            One dict per job.

        Raises:
            TypeError: an unknown keyword argument.
            InvalidArgumentError: a wrongly typed argument or malformed token.
            SubmitTokenJobDeleted: the token's job was deleted.
        """

    @abstractmethod
    def get_job_meta(self, job_id: str) -> dict[str, Any]:
        """Return a job's stored meta (``study`` normalised, ``duration`` as stored).

        Raises:
            JobNotFound: bad, unknown, or another study's job id.
        """

    @abstractmethod
    def download_job_result(self, job_id: str, destination: str | None = None) -> str:
        """Download a finished job's result (``job/``, ``meta.json``, ``workspace/``).

        Args:
            job_id: a job whose status is ``FINISHED:*``.
            destination: parent directory to download into (created if needed); default the
                session's ``download_dir``.

        Returns:
            The absolute path of ``<parent>/<job_id>``, suffixed ``__1``, ``__2``, ... when
            that already exists.

        Raises:
            JobNotFound: bad or unknown job id.
            JobNotDone: the job has not finished.
        """

    @abstractmethod
    def list_job_components(self, job_id: str) -> list[str]:
        """Return the names of a job's additional components (e.g. ``ERRORLOG_site-1``).

        Raises:
            JobNotFound: bad or unknown job id.
        """

    @abstractmethod
    def download_job_components(self, job_id: str) -> str:
        """Download a job's additional components into the session's ``download_dir``.

        Returns:
            The absolute path of the new directory (``<download_dir>/<job_id>[__N]``).

        Raises:
            JobNotFound: bad or unknown job id.
            InternalError: the job has no additional components.
        """

    @abstractmethod
    def abort_job(self, job_id: str) -> None:
        """Abort a job: a queued job is cancelled, a running one is stopped, a finished one
        is left alone (no error).

        Raises:
            JobNotFound: bad or unknown job id.
        """

    @abstractmethod
    def delete_job(self, job_id: str) -> dict[str, Any]:
        """Delete a job and everything it produced; a live job is aborted first.

        Submit tokens that pointed at the job are marked deleted (and cannot be reused).

        Returns:
            ``{"job_id": ..., "submit_records_marked_deleted": <int>}``.

        Raises:
            JobNotFound: bad or unknown job id.
        """

    @abstractmethod
    def get_job_logs(
        self,
        job_id: str,
        target: str = "server",
        tail_lines: int | None = None,
        grep_pattern: str | None = None,
        log_file_name: str = "log.txt",
    ) -> dict[str, Any]:
        """Return a job's logs (the last 5 MiB of each).

        Args:
            job_id: the job.
            target: ``server``, ``all`` (server plus deploy-map sites) or a client site name.
            tail_lines: keep only the last N lines of each log (applied locally).
            grep_pattern: keep only lines containing this substring (applied locally,
                after ``tail_lines``).
            log_file_name: ``log.txt`` (default) or ``log.json``.

        Returns:
            ``{"logs": {site: text}}``, plus ``"unavailable": {site: reason}`` when some
            site has no log.

        Raises:
            JobNotFound: bad or unknown job id.
            InvalidArgumentError: empty target or a negative/non-integer ``tail_lines``.
        """

    @abstractmethod
    def configure_job_log(self, job_id: str, config: Any, target: str = "all") -> dict[str, Any]:
        """Change a running job's logging configuration.

        Args:
            job_id: a RUNNING job.
            config: a dict (sent as JSON) or a level/mode name.
            target: ``all``, ``server`` or a client site name.

        Returns:
            The server's result dict.

        Raises:
            JobNotFound: bad or unknown job id.
            InternalError: the job is not running.
        """

    @abstractmethod
    def configure_site_log(self, config: Any, target: str = "all") -> dict[str, Any]:
        """Set the log level (name or 0-50) or built-in log mode of sites.

        Returns:
            The server's result dict.

        Raises:
            InvalidArgumentError: ``config`` is not a log level or built-in mode.
        """

    @abstractmethod
    def wait_for_job(
        self, job_id: str, timeout: float = 0.0, poll_interval: float = 2.0
    ) -> dict[str, Any]:
        """Wait until a job reaches a terminal status.

        Polls at least once; sessions whose transport has job events wake as soon as the
        job changes instead of waiting the whole interval.

        Args:
            job_id: the job.
            timeout: maximum seconds to wait; 0 waits forever.
            poll_interval: seconds between polls (> 0).

        Returns:
            The final job meta.

        Raises:
            JobTimeout: the job did not finish within ``timeout``.
            InvalidArgumentError: ``timeout < 0`` or ``poll_interval <= 0``.
            JobNotFound: bad or unknown job id.
        """

    @abstractmethod
    def monitor_job_and_return_job_meta(
        self,
        job_id: str,
        timeout: float = 0,
        poll_interval: float = 2.0,
        cb: Callable[Concatenate[SessionSpec, str, dict[str, Any], P], bool] | None = None,
        *cb_args: P.args,
        **cb_kwargs: P.kwargs,
    ) -> tuple[MonitorReturnCode, dict[str, Any] | None]:
        """Poll a job until it finishes, the timeout passes, or the callback says stop.

        Each round: stop with ``TIMEOUT`` if ``timeout`` passed (never before the first
        poll), poll the meta, call ``cb(session, job_id, meta, *cb_args, **cb_kwargs)`` (a
        falsy result stops with ``ENDED_BY_CB``, even on the final poll), stop with
        ``JOB_FINISHED`` on a terminal status (no sleep after it), else sleep.

        Returns:
            ``(JOB_FINISHED, meta)``, ``(TIMEOUT, None)`` or ``(ENDED_BY_CB, None)``.

        Raises:
            InvalidArgumentError: ``timeout < 0`` or ``poll_interval <= 0``.
            JobNotFound: bad or unknown job id.
            InternalError: a polled meta has no status.
        """

    def monitor_job(
        self,
        job_id: str,
        timeout: float = 0,
        poll_interval: float = 2.0,
        cb: Callable[Concatenate[SessionSpec, str, dict[str, Any], P], bool] | None = None,
        *cb_args: P.args,
        **cb_kwargs: P.kwargs,
    ) -> MonitorReturnCode:
        """Monitor a job like ``monitor_job_and_return_job_meta``, returning only the code.

        Args:
            job_id: the job to monitor.
            timeout: how long to monitor, in seconds; 0 never times out.
            poll_interval: seconds between polls.
            cb: called after each poll (see ``JobMonitorCallback``); monitoring goes on
                while it returns True.
            *cb_args: extra positional arguments for ``cb``.
            **cb_kwargs: extra keyword arguments for ``cb``.

        Returns:
            Why monitoring stopped.
        """
        rc, _ = self.monitor_job_and_return_job_meta(
            job_id, timeout, poll_interval, cb, *cb_args, **cb_kwargs
        )
        return rc

    # --- stats ------------------------------------------------------------------------------

    @abstractmethod
    def show_stats(
        self, job_id: str, target_type: str, targets: list[str] | None = None
    ) -> dict[str, Any]:
        """Return a running job's processing stats keyed by target name.

        Args:
            job_id: a RUNNING job.
            target_type: ``server``, ``client`` or ``all``.
            targets: client names when ``target_type`` is ``client`` (default all).

        Raises:
            InvalidArgumentError: empty/non-str job id, bad target type or names.
            JobNotFound: unknown job id.
            JobNotRunning: the job is not running.
            InvalidTarget: a named client is not connected.
        """

    @abstractmethod
    def show_errors(
        self, job_id: str, target_type: str, targets: list[str] | None = None
    ) -> dict[str, Any]:
        """Return a running job's processing errors keyed by target name (``{}`` if none).

        Raises:
            InvalidArgumentError: empty/non-str job id, bad target type or names.
            JobNotFound: unknown job id.
            JobNotRunning: the job is not running.
            InvalidTarget: a named client is not connected.
        """

    @abstractmethod
    def reset_errors(self, job_id: str) -> None:
        """Clear a running job's error stats on every target.

        Raises:
            InvalidArgumentError: empty/non-str job id.
            JobNotFound: unknown job id.
            JobNotRunning: the job is not running.
        """

    # --- system -----------------------------------------------------------------------------

    @abstractmethod
    def get_system_info(self) -> SystemInfo:
        """Return the server's status and start time, its connected clients and its running
        jobs (``ServerInfo.status`` is ``"started"`` while the server is up)."""

    @abstractmethod
    def check_status(self, target_type: str, targets: list[str] | None = None) -> dict[str, Any]:
        """Return status information keyed by site name (``"server"``, ``"site-1"``, ...).

        Args:
            target_type: ``server``, ``client`` or ``all``.
            targets: client names when ``target_type`` is ``client`` (default all).

        Raises:
            InvalidArgumentError: bad target type or client names.
            InvalidTarget: a named client is unknown, disconnected or not enrolled.
            NoClientsAvailable: ``client`` targeted while no client is connected.
        """

    @abstractmethod
    def report_resources(
        self, target_type: str, targets: list[str] | None = None
    ) -> dict[str, Any]:
        """Return resource information keyed by site name; every value is a dict.

        Raises:
            InvalidArgumentError: bad target type or client names.
            InvalidTarget: a named client is unknown or disconnected.
            NoClientsAvailable: ``client`` targeted while no client is connected.
        """

    @abstractmethod
    def report_version(self, target_type: str, targets: list[str] | None = None) -> dict[str, Any]:
        """Return ``{site: {"version": ...}}`` (or ``{"error": reason}`` for a site).

        Raises:
            InvalidArgumentError: bad target type or client names.
            InvalidTarget: a named client is unknown or disconnected.
            NoClientsAvailable: ``client`` targeted while no client is connected.
        """

    @abstractmethod
    def get_client_job_status(
        self, client_names: list[str] | None = None
    ) -> list[dict[str, Any]] | None:
        """Return the jobs running on clients, one row per client job.

        Rows are ``{"client_name", "app_name", "job_id", "status"}``, or
        ``{"client_name", "status": "no_jobs"}`` for a client without jobs.

        Args:
            client_names: the clients to ask (default every connected client).

        Returns:
            The rows, or None when no client is connected.

        Raises:
            InvalidArgumentError: malformed client names.
            InvalidTarget: a named client is not connected.
        """

    @abstractmethod
    def get_connected_client_list(self) -> list[ClientInfo]:
        """Return the connected clients (``get_system_info().client_info``)."""

    @abstractmethod
    def restart(
        self,
        target_type: str,
        client_names: list[str] | None = None,
        wait: bool = True,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        """Restart the server (``server``), clients (``client``) or both (``all``).

        With ``wait``, a ``server``/``all`` restart waits until the server reports a new start
        time (and, for ``all``, every previously connected client reconnected) and then
        **closes this session**; a ``client`` restart waits for the clients to reconnect and
        keeps the session open.

        Args:
            target_type: ``server``, ``client`` or ``all``.
            client_names: clients to restart when ``target_type`` is ``client``.
            wait: wait for the restart to complete.
            timeout: seconds to wait (> 0 when ``wait``).

        Returns:
            The server's result, e.g. ``{"status": "ok", "server_status": "ok"}``.

        Raises:
            InvalidArgumentError: bad target type, names, or ``timeout`` with ``wait``.
            JobNotDone: jobs are still running.
            NoClientsAvailable: ``client`` targeted while no client is connected.
            TimeoutError: the restart was not observed within ``timeout``.
        """

    @abstractmethod
    def shutdown(
        self,
        target_type: str,
        client_names: list[str] | None = None,
        wait: bool = True,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        """Shut down the server (``server``), clients (``client``) or both (``all``).

        For ``server``/``all`` this session is **closed** once the command succeeded, with or
        without ``wait``. With ``wait`` the call returns once the shutdown was observed.

        Args:
            target_type: ``server``, ``client`` or ``all``.
            client_names: clients to stop when ``target_type`` is ``client``.
            wait: wait for the shutdown to complete.
            timeout: seconds to wait (> 0 when ``wait``).

        Returns:
            The server's result, e.g. ``{"status": "ok"}``.

        Raises:
            InvalidArgumentError: bad target type, names, or ``timeout`` with ``wait``.
            JobNotDone: jobs are still running.
            ClientsStillRunning: ``server`` while clients are connected.
            TimeoutError: the shutdown was not observed within ``timeout``.
        """

    @abstractmethod
    def shutdown_system(self) -> None:
        """Shut down the whole system (server and every client); the session stays open but
        the server will no longer answer.

        Raises:
            JobNotDone: jobs are still running.
        """

    @abstractmethod
    def set_timeout(self, value: float) -> None:
        """Set this session's request timeout in seconds (> 0); nothing is sent.

        Raises:
            InvalidArgumentError: ``value`` is not a positive number.
        """

    @abstractmethod
    def unset_timeout(self) -> None:
        """Go back to the default request timeout; nothing is sent."""

    @abstractmethod
    def get_available_apps_to_upload(self) -> list[str]:
        """Return the names of the sub-directories of the session's ``upload_dir`` (local;
        nothing is sent)."""

    @abstractmethod
    def remove_client(self, client_name: str) -> None:
        """Release a connected client's active token (it may reconnect; see
        ``disable_client``).

        Raises:
            InvalidArgumentError: empty or non-str name.
            InvalidTarget: the client is not connected.
            NoClientsAvailable: no client is connected.
        """

    @abstractmethod
    def disable_client(self, client_name: str) -> dict[str, Any]:
        """Stop a client from reconnecting (idempotent; works for offline clients).

        Returns:
            ``{"clients": [{"client_name", "state": "disabled", "already_disabled",
            "active_session_removed", "credential_revoked", "rejoin_allowed"}]}``.

        Raises:
            InvalidArgumentError: empty or non-str name.
        """

    @abstractmethod
    def enable_client(self, client_name: str) -> dict[str, Any]:
        """Allow a disabled client to reconnect (idempotent).

        Returns:
            ``{"clients": [{"client_name", "state": "enabled", "was_disabled",
            "credential_revoked", "rejoin_allowed"}]}``.

        Raises:
            InvalidArgumentError: empty or non-str name.
        """

    # --- shell ------------------------------------------------------------------------------

    @abstractmethod
    def ls_target(self, target: str, options: str | None = None, path: str | None = None) -> str:
        """Run ``ls`` in a site's workspace and return its output.

        Args:
            target: ``server`` or a connected client name.
            options: ls options (``-a -l -t -S -R -u``), one string.
            path: optional relative path (no ``..`` segment).

        Raises:
            InvalidArgumentError: a malformed target, options or path (nothing is sent).
            InvalidTarget: the target is not the server or a connected client.
        """

    @abstractmethod
    def cat_target(self, target: str, options: str | None = None, file: str | None = None) -> str:
        """Run ``cat`` on a text file in a site's workspace and return its output.

        Args:
            target: ``server`` or a connected client name.
            options: cat options (``-n -b -s -T``).
            file: a relative path with a text extension (``.txt .log .json .csv .sh
                .config .py``, optionally with a numeric rotation suffix).

        Raises:
            InvalidArgumentError: a malformed target, options or file (nothing is sent).
            InvalidTarget: the target is not the server or a connected client.
        """

    @abstractmethod
    def tail_target(self, target: str, options: str | None = None, file: str | None = None) -> str:
        """Run ``tail`` on a text file in a site's workspace (options ``-n N``, ``-c N``).

        Raises:
            InvalidArgumentError: a malformed target, options or file (nothing is sent).
            InvalidTarget: the target is not the server or a connected client.
        """

    @abstractmethod
    def tail_target_log(self, target: str, options: str | None = None) -> str:
        """Run ``tail`` on the site's ``log.txt``.

        Raises:
            InvalidArgumentError: a malformed target or options (nothing is sent).
            InvalidTarget: the target is not the server or a connected client.
        """

    @abstractmethod
    def head_target(self, target: str, options: str | None = None, file: str | None = None) -> str:
        """Run ``head`` on a text file in a site's workspace (options ``-n N``, ``-c N``).

        Raises:
            InvalidArgumentError: a malformed target, options or file (nothing is sent).
            InvalidTarget: the target is not the server or a connected client.
        """

    @abstractmethod
    def head_target_log(self, target: str, options: str | None = None) -> str:
        """Run ``head`` on the site's ``log.txt``.

        Raises:
            InvalidArgumentError: a malformed target or options (nothing is sent).
            InvalidTarget: the target is not the server or a connected client.
        """

    @abstractmethod
    def grep_target(
        self,
        target: str,
        options: str | None = None,
        pattern: str | None = None,
        file: str | None = None,
    ) -> str:
        """Run ``grep`` on a text file in a site's workspace (options ``-n -i -b``).

        Raises:
            InvalidArgumentError: a missing pattern, or a malformed target, options or file
                (nothing is sent).
            InvalidTarget: the target is not the server or a connected client.
        """

    @abstractmethod
    def get_working_directory(self, target: str) -> str:
        """Return the ``pwd`` output of a site's workspace (with its trailing newline).

        Raises:
            InvalidArgumentError: a malformed target (nothing is sent).
            InvalidTarget: the target is not the server or a connected client.
        """

    # --- studies ----------------------------------------------------------------------------

    @abstractmethod
    def register_study(
        self, study: str, sites: list[str] | None = None, site_orgs: list[str] | None = None
    ) -> dict[str, Any]:
        """Create a study, or merge sites into an existing one.

        Exactly one of ``sites`` (org_admin: own-org sites) or ``site_orgs`` (project_admin:
        ``"org:s1,s2"`` groups) must be given.

        Returns:
            ``{"name", "site_orgs", "sites", "users"}``.

        Raises:
            InvalidArgumentError: both or neither of ``sites``/``site_orgs``, or malformed.
            CommandError: the server refused (``error_code`` says why, e.g. ``INVALID_ARGS``,
                ``INVALID_SITE``, ``STUDY_ALREADY_EXISTS``).
        """

    @abstractmethod
    def add_study_site(
        self, study: str, sites: list[str] | None = None, site_orgs: list[str] | None = None
    ) -> dict[str, Any]:
        """Enroll sites in an existing study (same argument rules as ``register_study``).

        Returns:
            ``{"study", "added", "already_enrolled", "site_orgs", "sites"}``.

        Raises:
            InvalidArgumentError: both or neither of ``sites``/``site_orgs``, or malformed.
            CommandError: e.g. ``STUDY_NOT_FOUND``, ``INVALID_SITE``.
        """

    @abstractmethod
    def remove_study_site(
        self, study: str, sites: list[str] | None = None, site_orgs: list[str] | None = None
    ) -> dict[str, Any]:
        """Remove sites from a study (offline sites too).

        Returns:
            ``{"study", "removed", "not_enrolled", "site_orgs", "sites"}``.

        Raises:
            InvalidArgumentError: both or neither of ``sites``/``site_orgs``, or malformed.
            CommandError: e.g. ``STUDY_NOT_FOUND``.
        """

    @abstractmethod
    def remove_study(self, study: str) -> dict[str, Any]:
        """Remove a study that has no jobs (project_admin only).

        Returns:
            ``{"name", "removed": True}``.

        Raises:
            CommandError: ``STUDY_NOT_FOUND`` or ``STUDY_HAS_JOBS``.
        """

    @abstractmethod
    def list_studies(self) -> dict[str, Any]:
        """List the studies visible to the caller.

        Returns:
            ``{"identity", "studies", "study_details"}``.
        """

    @abstractmethod
    def show_study(self, study: str) -> dict[str, Any]:
        """Show a visible study.

        Returns:
            ``{"name", "site_orgs", "sites", "users"}``.

        Raises:
            CommandError: ``STUDY_NOT_FOUND`` (missing or invisible).
        """

    @abstractmethod
    def add_study_user(self, study: str, user: str) -> dict[str, Any]:
        """Add a user to a study's admins (membership) list.

        Returns:
            ``{"study", "user"}``.

        Raises:
            CommandError: ``STUDY_NOT_FOUND`` or ``USER_ALREADY_IN_STUDY``.
        """

    @abstractmethod
    def remove_study_user(self, study: str, user: str) -> dict[str, Any]:
        """Remove a user from a study's admins list.

        Returns:
            ``{"study", "user", "removed": True}``.

        Raises:
            CommandError: ``STUDY_NOT_FOUND`` or ``USER_NOT_IN_STUDY``.
        """

    # --- events (flare-core's addition to the spec) --------------------------------------------

    def watch_jobs(
        self, job_id: str | None = None, *, poll_interval: float = 2.0
    ) -> Generator[JobChange, None, None]:
        """Iterate over job status changes, for one job or (``job_id=None``) the study.

        Not part of NVFlare's spec: an optional capability. flare-core's sessions (every
        ``connect`` URL, ``FakeFlare``) implement it; other implementations may not.

        Each job is first reported as seen (``old_status`` None); watching one job ends after
        its terminal status (or deletion, ``new_status == "DELETED"``); watching the study
        goes on until the caller stops iterating (``break`` or ``close()``).

        Raises:
            NotImplementedError: this implementation does not watch jobs.
            InvalidArgumentError: ``poll_interval <= 0`` or a malformed job id.
            JobNotFound: ``job_id`` names no job of the study.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement watch_jobs")

    # --- session ----------------------------------------------------------------------------

    @abstractmethod
    def close(self) -> None:
        """Log out (best effort) and release the connection. Idempotent; never raises.

        Afterwards every method raises ``SessionClosed`` without sending anything.
        """


# gen_async: end SessionSpec
# gen_async: generated from SessionSpec by scripts/gen_async.py (edit SessionSpec, then run it)
class AsyncSessionSpec(ABC):
    """The asynchronous twin of ``SessionSpec``: every method is a coroutine with the same
    arguments, defaults, results and exceptions; ``close`` is ``aclose``.

    Use it as an async context manager (``async with connect_async(...) as session:``) or
    await ``aclose()``. A monitor callback may be a plain function or a coroutine function.
    """

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # --- jobs -------------------------------------------------------------------------------

    @abstractmethod
    async def submit_job(self, job_definition_path: str, submit_token: str | None = None) -> str:
        """Submit the job defined by a local folder.

        The folder (its name must match ``^[A-Za-z0-9][A-Za-z0-9._-]*$``) is zipped with its
        name as the single top-level entry and uploaded. A relative path that is not a
        folder is looked up under the session's ``upload_dir``. Submitting is exactly-once
        per call: the session retries a lost upload under a private token, so a retry never
        creates a second job. A user ``submit_token`` makes separate calls idempotent too:
        the same token with the same content returns the same job id.

        Args:
            job_definition_path: the job folder.
            submit_token: optional retry-safe token (``^[A-Za-z0-9._:-]{1,128}$``), scoped by
                study and submitter.

        Returns:
            The job id (a server-generated UUID4).

        Raises:
            InvalidJobDefinition: the path is empty, not a folder, its name is unsupported,
                or the server rejected the definition (including study enrollment).
            InvalidArgumentError: ``submit_token`` is malformed (nothing is sent).
            SubmitTokenConflict: the token was used for different content
                (``existing_job_id`` names the job).
            SubmitTokenJobDeleted: the token's job was deleted; the token is spent.
        """

    @abstractmethod
    async def clone_job(self, job_id: str) -> str:
        """Create a new SUBMITTED job from an existing job's definition.

        Args:
            job_id: the job to clone (any status).

        Returns:
            The new job's id.

        Raises:
            JobNotFound: ``job_id`` is empty, not a str (nothing is sent), or unknown.
        """

    @abstractmethod
    async def list_jobs(
        self,
        detailed: bool = False,
        limit: int | None = None,
        id_prefix: str | None = None,
        name_prefix: str | None = None,
        reverse: bool = False,
        submit_token: str | None = None,
        **kwargs: Any,
    ) -> list[dict[str, Any]]:
        """List the session study's jobs, oldest first.

        Args:
            detailed: return full job-meta dicts instead of summary rows (``job_id``,
                ``job_name``, ``status``, ``submit_time`` (ISO), ``duration``, ``study``).
            limit: keep only the newest ``limit`` jobs; 0 or None keeps all.
            id_prefix: case-insensitive job-id prefix.
            name_prefix: case-insensitive prefix of the meta ``name``.
            reverse: newest first.
            submit_token: resolve the job submitted with this token (``[]`` if none).
            **kwargs: legacy aliases ``max_num``, ``job_id_prefix``, ``job_name_prefix``,
                ``id``, ``name``; canonical arguments win.

        Returns:
            One dict per job.

        Raises:
            TypeError: an unknown keyword argument.
            InvalidArgumentError: a wrongly typed argument or malformed token.
            SubmitTokenJobDeleted: the token's job was deleted.
        """

    @abstractmethod
    async def get_job_meta(self, job_id: str) -> dict[str, Any]:
        """Return a job's stored meta (``study`` normalised, ``duration`` as stored).

        Raises:
            JobNotFound: bad, unknown, or another study's job id.
        """

    @abstractmethod
    async def download_job_result(self, job_id: str, destination: str | None = None) -> str:
        """Download a finished job's result (``job/``, ``meta.json``, ``workspace/``).

        Args:
            job_id: a job whose status is ``FINISHED:*``.
            destination: parent directory to download into (created if needed); default the
                session's ``download_dir``.

        Returns:
            The absolute path of ``<parent>/<job_id>``, suffixed ``__1``, ``__2``, ... when
            that already exists.

        Raises:
            JobNotFound: bad or unknown job id.
            JobNotDone: the job has not finished.
        """

    @abstractmethod
    async def list_job_components(self, job_id: str) -> list[str]:
        """Return the names of a job's additional components (e.g. ``ERRORLOG_site-1``).

        Raises:
            JobNotFound: bad or unknown job id.
        """

    @abstractmethod
    async def download_job_components(self, job_id: str) -> str:
        """Download a job's additional components into the session's ``download_dir``.

        Returns:
            The absolute path of the new directory (``<download_dir>/<job_id>[__N]``).

        Raises:
            JobNotFound: bad or unknown job id.
            InternalError: the job has no additional components.
        """

    @abstractmethod
    async def abort_job(self, job_id: str) -> None:
        """Abort a job: a queued job is cancelled, a running one is stopped, a finished one
        is left alone (no error).

        Raises:
            JobNotFound: bad or unknown job id.
        """

    @abstractmethod
    async def delete_job(self, job_id: str) -> dict[str, Any]:
        """Delete a job and everything it produced; a live job is aborted first.

        Submit tokens that pointed at the job are marked deleted (and cannot be reused).

        Returns:
            ``{"job_id": ..., "submit_records_marked_deleted": <int>}``.

        Raises:
            JobNotFound: bad or unknown job id.
        """

    @abstractmethod
    async def get_job_logs(
        self,
        job_id: str,
        target: str = "server",
        tail_lines: int | None = None,
        grep_pattern: str | None = None,
        log_file_name: str = "log.txt",
    ) -> dict[str, Any]:
        """Return a job's logs (the last 5 MiB of each).

        Args:
            job_id: the job.
            target: ``server``, ``all`` (server plus deploy-map sites) or a client site name.
            tail_lines: keep only the last N lines of each log (applied locally).
            grep_pattern: keep only lines containing this substring (applied locally,
                after ``tail_lines``).
            log_file_name: ``log.txt`` (default) or ``log.json``.

        Returns:
            ``{"logs": {site: text}}``, plus ``"unavailable": {site: reason}`` when some
            site has no log.

        Raises:
            JobNotFound: bad or unknown job id.
            InvalidArgumentError: empty target or a negative/non-integer ``tail_lines``.
        """

    @abstractmethod
    async def configure_job_log(
        self, job_id: str, config: Any, target: str = "all"
    ) -> dict[str, Any]:
        """Change a running job's logging configuration.

        Args:
            job_id: a RUNNING job.
            config: a dict (sent as JSON) or a level/mode name.
            target: ``all``, ``server`` or a client site name.

        Returns:
            The server's result dict.

        Raises:
            JobNotFound: bad or unknown job id.
            InternalError: the job is not running.
        """

    @abstractmethod
    async def configure_site_log(self, config: Any, target: str = "all") -> dict[str, Any]:
        """Set the log level (name or 0-50) or built-in log mode of sites.

        Returns:
            The server's result dict.

        Raises:
            InvalidArgumentError: ``config`` is not a log level or built-in mode.
        """

    @abstractmethod
    async def wait_for_job(
        self, job_id: str, timeout: float = 0.0, poll_interval: float = 2.0
    ) -> dict[str, Any]:
        """Wait until a job reaches a terminal status.

        Polls at least once; sessions whose transport has job events wake as soon as the
        job changes instead of waiting the whole interval.

        Args:
            job_id: the job.
            timeout: maximum seconds to wait; 0 waits forever.
            poll_interval: seconds between polls (> 0).

        Returns:
            The final job meta.

        Raises:
            JobTimeout: the job did not finish within ``timeout``.
            InvalidArgumentError: ``timeout < 0`` or ``poll_interval <= 0``.
            JobNotFound: bad or unknown job id.
        """

    @abstractmethod
    async def monitor_job_and_return_job_meta(
        self,
        job_id: str,
        timeout: float = 0,
        poll_interval: float = 2.0,
        cb: Callable[Concatenate[AsyncSessionSpec, str, dict[str, Any], P], bool | Awaitable[bool]]
        | None = None,
        *cb_args: P.args,
        **cb_kwargs: P.kwargs,
    ) -> tuple[MonitorReturnCode, dict[str, Any] | None]:
        """Poll a job until it finishes, the timeout passes, or the callback says stop.

        Each round: stop with ``TIMEOUT`` if ``timeout`` passed (never before the first
        poll), poll the meta, call ``cb(session, job_id, meta, *cb_args, **cb_kwargs)`` (a
        falsy result stops with ``ENDED_BY_CB``, even on the final poll), stop with
        ``JOB_FINISHED`` on a terminal status (no sleep after it), else sleep.

        Returns:
            ``(JOB_FINISHED, meta)``, ``(TIMEOUT, None)`` or ``(ENDED_BY_CB, None)``.

        Raises:
            InvalidArgumentError: ``timeout < 0`` or ``poll_interval <= 0``.
            JobNotFound: bad or unknown job id.
            InternalError: a polled meta has no status.
        """

    async def monitor_job(
        self,
        job_id: str,
        timeout: float = 0,
        poll_interval: float = 2.0,
        cb: Callable[Concatenate[AsyncSessionSpec, str, dict[str, Any], P], bool | Awaitable[bool]]
        | None = None,
        *cb_args: P.args,
        **cb_kwargs: P.kwargs,
    ) -> MonitorReturnCode:
        """Monitor a job like ``monitor_job_and_return_job_meta``, returning only the code.

        Args:
            job_id: the job to monitor.
            timeout: how long to monitor, in seconds; 0 never times out.
            poll_interval: seconds between polls.
            cb: called after each poll (see ``AsyncJobMonitorCallback``); monitoring goes on
                while it returns True.
            *cb_args: extra positional arguments for ``cb``.
            **cb_kwargs: extra keyword arguments for ``cb``.

        Returns:
            Why monitoring stopped.
        """
        rc, _ = await self.monitor_job_and_return_job_meta(
            job_id, timeout, poll_interval, cb, *cb_args, **cb_kwargs
        )
        return rc

    # --- stats ------------------------------------------------------------------------------

    @abstractmethod
    async def show_stats(
        self, job_id: str, target_type: str, targets: list[str] | None = None
    ) -> dict[str, Any]:
        """Return a running job's processing stats keyed by target name.

        Args:
            job_id: a RUNNING job.
            target_type: ``server``, ``client`` or ``all``.
            targets: client names when ``target_type`` is ``client`` (default all).

        Raises:
            InvalidArgumentError: empty/non-str job id, bad target type or names.
            JobNotFound: unknown job id.
            JobNotRunning: the job is not running.
            InvalidTarget: a named client is not connected.
        """

    @abstractmethod
    async def show_errors(
        self, job_id: str, target_type: str, targets: list[str] | None = None
    ) -> dict[str, Any]:
        """Return a running job's processing errors keyed by target name (``{}`` if none).

        Raises:
            InvalidArgumentError: empty/non-str job id, bad target type or names.
            JobNotFound: unknown job id.
            JobNotRunning: the job is not running.
            InvalidTarget: a named client is not connected.
        """

    @abstractmethod
    async def reset_errors(self, job_id: str) -> None:
        """Clear a running job's error stats on every target.

        Raises:
            InvalidArgumentError: empty/non-str job id.
            JobNotFound: unknown job id.
            JobNotRunning: the job is not running.
        """

    # --- system -----------------------------------------------------------------------------

    @abstractmethod
    async def get_system_info(self) -> SystemInfo:
        """Return the server's status and start time, its connected clients and its running
        jobs (``ServerInfo.status`` is ``"started"`` while the server is up)."""

    @abstractmethod
    async def check_status(
        self, target_type: str, targets: list[str] | None = None
    ) -> dict[str, Any]:
        """Return status information keyed by site name (``"server"``, ``"site-1"``, ...).

        Args:
            target_type: ``server``, ``client`` or ``all``.
            targets: client names when ``target_type`` is ``client`` (default all).

        Raises:
            InvalidArgumentError: bad target type or client names.
            InvalidTarget: a named client is unknown, disconnected or not enrolled.
            NoClientsAvailable: ``client`` targeted while no client is connected.
        """

    @abstractmethod
    async def report_resources(
        self, target_type: str, targets: list[str] | None = None
    ) -> dict[str, Any]:
        """Return resource information keyed by site name; every value is a dict.

        Raises:
            InvalidArgumentError: bad target type or client names.
            InvalidTarget: a named client is unknown or disconnected.
            NoClientsAvailable: ``client`` targeted while no client is connected.
        """

    @abstractmethod
    async def report_version(
        self, target_type: str, targets: list[str] | None = None
    ) -> dict[str, Any]:
        """Return ``{site: {"version": ...}}`` (or ``{"error": reason}`` for a site).

        Raises:
            InvalidArgumentError: bad target type or client names.
            InvalidTarget: a named client is unknown or disconnected.
            NoClientsAvailable: ``client`` targeted while no client is connected.
        """

    @abstractmethod
    async def get_client_job_status(
        self, client_names: list[str] | None = None
    ) -> list[dict[str, Any]] | None:
        """Return the jobs running on clients, one row per client job.

        Rows are ``{"client_name", "app_name", "job_id", "status"}``, or
        ``{"client_name", "status": "no_jobs"}`` for a client without jobs.

        Args:
            client_names: the clients to ask (default every connected client).

        Returns:
            The rows, or None when no client is connected.

        Raises:
            InvalidArgumentError: malformed client names.
            InvalidTarget: a named client is not connected.
        """

    @abstractmethod
    async def get_connected_client_list(self) -> list[ClientInfo]:
        """Return the connected clients (``get_system_info().client_info``)."""

    @abstractmethod
    async def restart(
        self,
        target_type: str,
        client_names: list[str] | None = None,
        wait: bool = True,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        """Restart the server (``server``), clients (``client``) or both (``all``).

        With ``wait``, a ``server``/``all`` restart waits until the server reports a new start
        time (and, for ``all``, every previously connected client reconnected) and then
        **closes this session**; a ``client`` restart waits for the clients to reconnect and
        keeps the session open.

        Args:
            target_type: ``server``, ``client`` or ``all``.
            client_names: clients to restart when ``target_type`` is ``client``.
            wait: wait for the restart to complete.
            timeout: seconds to wait (> 0 when ``wait``).

        Returns:
            The server's result, e.g. ``{"status": "ok", "server_status": "ok"}``.

        Raises:
            InvalidArgumentError: bad target type, names, or ``timeout`` with ``wait``.
            JobNotDone: jobs are still running.
            NoClientsAvailable: ``client`` targeted while no client is connected.
            TimeoutError: the restart was not observed within ``timeout``.
        """

    @abstractmethod
    async def shutdown(
        self,
        target_type: str,
        client_names: list[str] | None = None,
        wait: bool = True,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        """Shut down the server (``server``), clients (``client``) or both (``all``).

        For ``server``/``all`` this session is **closed** once the command succeeded, with or
        without ``wait``. With ``wait`` the call returns once the shutdown was observed.

        Args:
            target_type: ``server``, ``client`` or ``all``.
            client_names: clients to stop when ``target_type`` is ``client``.
            wait: wait for the shutdown to complete.
            timeout: seconds to wait (> 0 when ``wait``).

        Returns:
            The server's result, e.g. ``{"status": "ok"}``.

        Raises:
            InvalidArgumentError: bad target type, names, or ``timeout`` with ``wait``.
            JobNotDone: jobs are still running.
            ClientsStillRunning: ``server`` while clients are connected.
            TimeoutError: the shutdown was not observed within ``timeout``.
        """

    @abstractmethod
    async def shutdown_system(self) -> None:
        """Shut down the whole system (server and every client); the session stays open but
        the server will no longer answer.

        Raises:
            JobNotDone: jobs are still running.
        """

    @abstractmethod
    async def set_timeout(self, value: float) -> None:
        """Set this session's request timeout in seconds (> 0); nothing is sent.

        Raises:
            InvalidArgumentError: ``value`` is not a positive number.
        """

    @abstractmethod
    async def unset_timeout(self) -> None:
        """Go back to the default request timeout; nothing is sent."""

    @abstractmethod
    async def get_available_apps_to_upload(self) -> list[str]:
        """Return the names of the sub-directories of the session's ``upload_dir`` (local;
        nothing is sent)."""

    @abstractmethod
    async def remove_client(self, client_name: str) -> None:
        """Release a connected client's active token (it may reconnect; see
        ``disable_client``).

        Raises:
            InvalidArgumentError: empty or non-str name.
            InvalidTarget: the client is not connected.
            NoClientsAvailable: no client is connected.
        """

    @abstractmethod
    async def disable_client(self, client_name: str) -> dict[str, Any]:
        """Stop a client from reconnecting (idempotent; works for offline clients).

        Returns:
            ``{"clients": [{"client_name", "state": "disabled", "already_disabled",
            "active_session_removed", "credential_revoked", "rejoin_allowed"}]}``.

        Raises:
            InvalidArgumentError: empty or non-str name.
        """

    @abstractmethod
    async def enable_client(self, client_name: str) -> dict[str, Any]:
        """Allow a disabled client to reconnect (idempotent).

        Returns:
            ``{"clients": [{"client_name", "state": "enabled", "was_disabled",
            "credential_revoked", "rejoin_allowed"}]}``.

        Raises:
            InvalidArgumentError: empty or non-str name.
        """

    # --- shell ------------------------------------------------------------------------------

    @abstractmethod
    async def ls_target(
        self, target: str, options: str | None = None, path: str | None = None
    ) -> str:
        """Run ``ls`` in a site's workspace and return its output.

        Args:
            target: ``server`` or a connected client name.
            options: ls options (``-a -l -t -S -R -u``), one string.
            path: optional relative path (no ``..`` segment).

        Raises:
            InvalidArgumentError: a malformed target, options or path (nothing is sent).
            InvalidTarget: the target is not the server or a connected client.
        """

    @abstractmethod
    async def cat_target(
        self, target: str, options: str | None = None, file: str | None = None
    ) -> str:
        """Run ``cat`` on a text file in a site's workspace and return its output.

        Args:
            target: ``server`` or a connected client name.
            options: cat options (``-n -b -s -T``).
            file: a relative path with a text extension (``.txt .log .json .csv .sh
                .config .py``, optionally with a numeric rotation suffix).

        Raises:
            InvalidArgumentError: a malformed target, options or file (nothing is sent).
            InvalidTarget: the target is not the server or a connected client.
        """

    @abstractmethod
    async def tail_target(
        self, target: str, options: str | None = None, file: str | None = None
    ) -> str:
        """Run ``tail`` on a text file in a site's workspace (options ``-n N``, ``-c N``).

        Raises:
            InvalidArgumentError: a malformed target, options or file (nothing is sent).
            InvalidTarget: the target is not the server or a connected client.
        """

    @abstractmethod
    async def tail_target_log(self, target: str, options: str | None = None) -> str:
        """Run ``tail`` on the site's ``log.txt``.

        Raises:
            InvalidArgumentError: a malformed target or options (nothing is sent).
            InvalidTarget: the target is not the server or a connected client.
        """

    @abstractmethod
    async def head_target(
        self, target: str, options: str | None = None, file: str | None = None
    ) -> str:
        """Run ``head`` on a text file in a site's workspace (options ``-n N``, ``-c N``).

        Raises:
            InvalidArgumentError: a malformed target, options or file (nothing is sent).
            InvalidTarget: the target is not the server or a connected client.
        """

    @abstractmethod
    async def head_target_log(self, target: str, options: str | None = None) -> str:
        """Run ``head`` on the site's ``log.txt``.

        Raises:
            InvalidArgumentError: a malformed target or options (nothing is sent).
            InvalidTarget: the target is not the server or a connected client.
        """

    @abstractmethod
    async def grep_target(
        self,
        target: str,
        options: str | None = None,
        pattern: str | None = None,
        file: str | None = None,
    ) -> str:
        """Run ``grep`` on a text file in a site's workspace (options ``-n -i -b``).

        Raises:
            InvalidArgumentError: a missing pattern, or a malformed target, options or file
                (nothing is sent).
            InvalidTarget: the target is not the server or a connected client.
        """

    @abstractmethod
    async def get_working_directory(self, target: str) -> str:
        """Return the ``pwd`` output of a site's workspace (with its trailing newline).

        Raises:
            InvalidArgumentError: a malformed target (nothing is sent).
            InvalidTarget: the target is not the server or a connected client.
        """

    # --- studies ----------------------------------------------------------------------------

    @abstractmethod
    async def register_study(
        self, study: str, sites: list[str] | None = None, site_orgs: list[str] | None = None
    ) -> dict[str, Any]:
        """Create a study, or merge sites into an existing one.

        Exactly one of ``sites`` (org_admin: own-org sites) or ``site_orgs`` (project_admin:
        ``"org:s1,s2"`` groups) must be given.

        Returns:
            ``{"name", "site_orgs", "sites", "users"}``.

        Raises:
            InvalidArgumentError: both or neither of ``sites``/``site_orgs``, or malformed.
            CommandError: the server refused (``error_code`` says why, e.g. ``INVALID_ARGS``,
                ``INVALID_SITE``, ``STUDY_ALREADY_EXISTS``).
        """

    @abstractmethod
    async def add_study_site(
        self, study: str, sites: list[str] | None = None, site_orgs: list[str] | None = None
    ) -> dict[str, Any]:
        """Enroll sites in an existing study (same argument rules as ``register_study``).

        Returns:
            ``{"study", "added", "already_enrolled", "site_orgs", "sites"}``.

        Raises:
            InvalidArgumentError: both or neither of ``sites``/``site_orgs``, or malformed.
            CommandError: e.g. ``STUDY_NOT_FOUND``, ``INVALID_SITE``.
        """

    @abstractmethod
    async def remove_study_site(
        self, study: str, sites: list[str] | None = None, site_orgs: list[str] | None = None
    ) -> dict[str, Any]:
        """Remove sites from a study (offline sites too).

        Returns:
            ``{"study", "removed", "not_enrolled", "site_orgs", "sites"}``.

        Raises:
            InvalidArgumentError: both or neither of ``sites``/``site_orgs``, or malformed.
            CommandError: e.g. ``STUDY_NOT_FOUND``.
        """

    @abstractmethod
    async def remove_study(self, study: str) -> dict[str, Any]:
        """Remove a study that has no jobs (project_admin only).

        Returns:
            ``{"name", "removed": True}``.

        Raises:
            CommandError: ``STUDY_NOT_FOUND`` or ``STUDY_HAS_JOBS``.
        """

    @abstractmethod
    async def list_studies(self) -> dict[str, Any]:
        """List the studies visible to the caller.

        Returns:
            ``{"identity", "studies", "study_details"}``.
        """

    @abstractmethod
    async def show_study(self, study: str) -> dict[str, Any]:
        """Show a visible study.

        Returns:
            ``{"name", "site_orgs", "sites", "users"}``.

        Raises:
            CommandError: ``STUDY_NOT_FOUND`` (missing or invisible).
        """

    @abstractmethod
    async def add_study_user(self, study: str, user: str) -> dict[str, Any]:
        """Add a user to a study's admins (membership) list.

        Returns:
            ``{"study", "user"}``.

        Raises:
            CommandError: ``STUDY_NOT_FOUND`` or ``USER_ALREADY_IN_STUDY``.
        """

    @abstractmethod
    async def remove_study_user(self, study: str, user: str) -> dict[str, Any]:
        """Remove a user from a study's admins list.

        Returns:
            ``{"study", "user", "removed": True}``.

        Raises:
            CommandError: ``STUDY_NOT_FOUND`` or ``USER_NOT_IN_STUDY``.
        """

    # --- events (flare-core's addition to the spec) --------------------------------------------

    def watch_jobs(
        self, job_id: str | None = None, *, poll_interval: float = 2.0
    ) -> AsyncGenerator[JobChange, None]:
        """Async-iterate over job status changes, for one job or (``job_id=None``) the study.

        Not part of NVFlare's spec: an optional capability. flare-core's sessions (every
        ``connect`` URL, ``FakeFlare``) implement it; other implementations may not.

        Each job is first reported as seen (``old_status`` None); watching one job ends after
        its terminal status (or deletion, ``new_status == "DELETED"``); watching the study
        goes on until the caller stops iterating (``break`` or ``aclose()``).

        Raises:
            NotImplementedError: this implementation does not watch jobs.
            InvalidArgumentError: ``poll_interval <= 0`` or a malformed job id.
            JobNotFound: ``job_id`` names no job of the study.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement watch_jobs")

    # --- session ----------------------------------------------------------------------------

    @abstractmethod
    async def aclose(self) -> None:
        """Log out (best effort) and release the connection. Idempotent; never raises.

        Afterwards every method raises ``SessionClosed`` without sending anything.
        """
