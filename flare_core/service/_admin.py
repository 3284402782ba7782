"""``AdminService``: the server half of the core, behind the ``flare_ports.Backend`` port.

It holds the server's rules (lifecycle table, submit tokens, job-definition validation, studies,
policy, listing) and reaches storage, the engine and time only through ``ServicePorts``. The
in-memory fake, the HTTP/WebSocket server and the tests all run this same code.

Thread safety: every call takes the ``Lock`` port (re-entrant) around state mutation; job
events are delivered to subscribers after the lock is released. Slow work that touches no
shared state - reading an upload, hashing API keys and job content, streaming a download, a
shell command's file work (a handler's ``OutsideLock`` reply) - runs outside the lock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import suppress
from typing import Any

from flare_core.commands import Command, SubmitJob
from flare_core.errors import AuthenticationError, InternalError, InvalidArgumentError
from flare_core.events import JobEvent
from flare_core.gauges import Gauges
from flare_core.lifecycle import JobStatus, is_terminal
from flare_core.principal import Grant, Principal
from flare_core.replies import Ok, Problem, Reply
from flare_core.service import _at_once, _downloads, _sessions
from flare_core.service._config import ServiceConfig, UserConfig
from flare_core.service._core import OutsideLock, ServiceCore, SiteInfo
from flare_core.service._credentials import hash_api_key
from flare_core.service._dispatch import HANDLERS
from flare_core.service._jobs import stop_job
from flare_core.service._scheduler import EngineCallbacks, schedule, schedule_now
from flare_core.service._submit import submit_job
from flare_core.service.ports import ServicePorts
from flare_core.studies import Study, StudyRegistry, dump_registry, parse_registry
from flare_core.validation import check_site_name

__all__ = ["AdminService"]


class AdminService:
    """An FL system's admin endpoint: sessions, commands, downloads and job events.

    Args:
        config: users, the server's org, idle timeout, policy, version and limits.
        ports: storage, blobs, engine, workspaces, clock, ids and the lock.

    The constructor attaches the service to ``ports.engine`` (``Engine.attach``).
    """

    def __init__(self, config: ServiceConfig, ports: ServicePorts) -> None:
        self._core = ServiceCore(config, ports)
        ports.engine.attach(EngineCallbacks(self._core))

    # --- the Backend port ------------------------------------------------------------------

    def login(self, user: str, api_key: str | None, study: str = "default") -> Grant:
        """Authenticate ``user`` and bind a new session to ``study``.

        Raises:
            NoConnection: the server was shut down.
            AuthenticationError: bad credentials, or a study the user may not log in to
                (``auth_code`` says which, reference §9.1).
        """
        return _sessions.login(self._core, user, api_key, study)

    def authenticate(self, token: str) -> Principal:
        """Resolve a bearer token and refresh its session's idle timer.

        Raises:
            NoConnection: the server was shut down.
            SessionExpired: the session idled out (``"Your session is closed due to inactivity
                or cert expiry."``).
            AuthenticationError: the token is unknown or was logged out.
        """
        return _sessions.authenticate(self._core, token)

    def logout(self, token: str) -> None:
        """End the session a token names (idempotent)."""
        _sessions.logout(self._core, token)

    def handle(
        self, principal: Principal, command: Command, upload: Iterable[bytes] | None = None
    ) -> Reply:
        """Run one command for ``principal``; never raises for failures.

        Args:
            principal: the authenticated caller (from ``authenticate``).
            command: any command of ``flare_core.commands``.
            upload: the zip byte stream of a ``SubmitJob``.

        Returns:
            ``Ok(value)``, or ``Problem.from_exception(exc)`` for a domain exception; any other
            exception becomes an opaque ``InternalError`` problem (no traceback, no paths).
        """
        core = self._core
        try:
            if isinstance(command, SubmitJob):
                value: Any = submit_job(core, principal, command, upload)
            else:
                handler = HANDLERS.get(type(command))
                if handler is None:
                    raise InternalError(f"syntax error: unknown command {type(command).__name__}")
                with core.guard():
                    core.require_running()
                    value = handler(core, principal, command)
                if isinstance(value, OutsideLock):
                    value = core.ports.offload.run(value.work) if value.serial else value.work()
        except Exception as exc:  # the reply carries the failure; the caller re-raises it
            return Problem.from_exception(exc)
        return Ok(value=value)

    def serve_at_once(self, token: str, command: Command) -> tuple[Principal, Reply] | None:
        """Authenticate and serve a quick read on the calling thread, or decline at once.

        For a host whose thread must never wait (the server's event loop): it answers only
        a bounded read (a job's meta, a status, a short listing) whose session needs no
        write, and only when the service lock is free now; it never blocks.

        Returns:
            ``(principal, reply)`` as ``authenticate`` and ``handle`` would give them, or
            None: serve the command with those (the same outcome).

        Raises:
            NoConnection: the server was shut down.
            AuthenticationError: the token is unknown or was logged out.
        """
        return _at_once.serve_at_once(self._core, token, command)

    def open_download(self, principal: Principal, download_id: str) -> Iterator[bytes]:
        """Stream the zip archive a download command prepared (single use, same session).

        Raises:
            JobNotFound: unknown, consumed or foreign download id, or the job was deleted.
            NoConnection: the server was shut down.
        """
        return _downloads.open_download(self._core, principal, download_id)

    def subscribe(self, listener: Callable[[JobEvent], None]) -> Callable[[], None]:
        """Call ``listener`` on every job status change (and ``"DELETED"``), outside the lock.

        Returns:
            A function that unsubscribes (idempotent).
        """
        return self._core.subscribe(listener)

    def gauges(self) -> Gauges:
        """What an operator's metrics show: sessions not idled out and jobs by status.

        Read from the stores, which are thread-safe on their own, without the service lock:
        a scrape must not queue behind commands (the counts are a moment's, not a snapshot
        consistent with one command).
        """
        core = self._core
        active_since = core.ports.clock.monotonic() - core.config.idle_timeout
        return Gauges(
            open_sessions=core.ports.sessions.count_seen_since(active_since),
            jobs_by_status=core.ports.jobs.count_by_status(),
        )

    # --- control plane (hosts, FakeFlare, tests) -------------------------------------------

    @property
    def running(self) -> bool:
        """False after a ``shutdown`` of the server, until ``start()``."""
        return self._core.running

    @property
    def start_time(self) -> float:
        """When the server (last) started, epoch seconds."""
        return self._core.start_time

    def abort_live_jobs(self, reason: str) -> list[str]:
        """Stop for good: dispatch nothing more and abort every DISPATCHED or RUNNING job.

        For a host that is being stopped (``flare-core serve`` on SIGTERM or SIGINT): each
        live job ends ``FINISHED:ABORTED`` with ``reason`` as its ``finish_reason`` once its
        engine has stopped it (at once for a dispatched one); SUBMITTED jobs stay queued for
        the next start. The service stops as after a ``shutdown`` of the server.

        Returns:
            The ids of the jobs it aborted.
        """
        core = self._core
        with core.guard():
            core.running = False  # no scheduling pass dispatches anything from now on
            live = core.ports.jobs.unfinished((JobStatus.DISPATCHED, JobStatus.RUNNING))
            for meta in live:
                job_id = str(meta["job_id"])
                core.stop_reasons[job_id] = reason
                with suppress(InternalError):  # the engine no longer runs it: it ends anyway
                    stop_job(core, meta)
                current = core.ports.jobs.get(job_id)
                if current is not None and is_terminal(str(current.get("status", ""))):
                    core.stop_reasons.pop(job_id, None)
                    if current.get("finish_reason") is None:
                        core.ports.jobs.update(job_id, {"finish_reason": reason})
        return [str(meta["job_id"]) for meta in live]

    def start(self) -> None:
        """Bring a shut-down server back (a new ``start_time``); no-op while running."""
        with self._core.guard():
            if not self._core.running:
                self._core.restart_server()
                schedule(self._core)

    def add_user(self, name: str, org: str, role: str, api_key: str) -> None:
        """Add or replace an admin user whose API key is ``api_key``.

        Raises:
            InvalidArgumentError: an empty name or key.
        """
        if not name or not api_key:
            raise InvalidArgumentError("user name and api_key must be non-empty")
        salt = self._core.ports.ids.secret().encode("ascii")
        digest = hash_api_key(api_key, salt, n=self._core.config.scrypt_n)
        with self._core.guard():
            self._core.users[name] = UserConfig(name=name, org=org, role=role, api_key_hash=digest)

    def remove_user(self, name: str) -> bool:
        """Remove an admin user; their open sessions end at their next request.

        Returns:
            False when there was no such user.
        """
        with self._core.guard():
            return self._core.users.pop(name, None) is not None

    def connect_site(self, name: str, org: str, version: str | None = None) -> None:
        """A client site (re)connects; SUBMITTED jobs that can now run are dispatched.

        Args:
            name: the site name (``^[A-Za-z0-9._-]+$``, not ``server``).
            org: the org of the site's certificate.
            version: the version it reports (default: the server's).

        Raises:
            InvalidArgumentError: a bad name.
            AuthenticationError: the site is disabled.
        """
        check_site_name(name)
        core = self._core
        with core.guard():
            if name in core.ports.sites.disabled():
                raise AuthenticationError(f"site '{name}' is disabled")
            core.connect(name, org, version or core.config.version)
            schedule(core)

    def disconnect_site(self, name: str) -> bool:
        """A client site disconnects; False when it was not connected."""
        with self._core.guard():
            return self._core.disconnect(name)

    def sites(self) -> list[SiteInfo]:
        """Every client site the service has seen, by name."""
        with self._core.guard():
            return self._core.sites()

    def add_study(
        self, name: str, site_orgs: Mapping[str, Sequence[str]], admins: Sequence[str]
    ) -> None:
        """Create or replace a study in the registry directly (no role gates, no checks on
        connectivity) - the back door tests and FakeFlare use.

        Raises:
            ValueError: the study breaks a registry rule (e.g. a site under two orgs).
        """
        with self._core.guard():
            current = self._core.registry() or StudyRegistry()
            study = Study(
                site_orgs={org: list(sites) for org, sites in site_orgs.items()},
                admins=list(dict.fromkeys(admins)),
            )
            candidate = StudyRegistry(
                format_version=current.format_version,
                studies={**current.studies, name: study},
            )
            # Round-trip through the loading rules so the back door cannot store garbage.
            self._core.save_registry(parse_registry(dump_registry(candidate)))
            schedule(self._core)

    def job_meta(self, job_id: str) -> dict[str, Any] | None:
        """A copy of any job's stored meta (no study or policy checks), or None."""
        with self._core.guard():
            return self._core.ports.jobs.get(job_id)

    def schedule(self) -> None:
        """Run a scheduling pass now (normally triggered by events, after the dispatch
        delay)."""
        with self._core.guard():
            schedule_now(self._core)
