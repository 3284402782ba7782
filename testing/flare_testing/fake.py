"""``FakeFlare``: a whole FL system in memory, with a control plane for tests.

The fake replaces only the bottom layer: an ``AdminService`` over memory stores, the simulated
engine and a ``VirtualClock`` (``build_memory_system``), reached through ``MemoryTransport``.
``fake.session()`` returns the production ``Session`` (``async_session()`` the production
``AsyncSession``), so everything a test exercises above the transport is the real code. Time
is virtual: it moves only when a session waits (``wait_for_job`` returns at once, however long
the job runs) or when the test calls ``advance``.

Besides the sessions, the fake is the contract suite's ``Harness``: it finishes, fails and
holds jobs (named by id, ``JobName``, ``SubmitToken`` or ``NEXT_JOB``, see
``flare_testing.job_refs``), connects sites, adds users and studies, breaks the transport for
the next calls, reads stored job metas directly and records every command the sessions sent
(``commands``).

Example::

    with FakeFlare() as fake:
        session = fake.session()
        job_id = session.submit_job("jobs/hello-numpy-sag")
        assert session.wait_for_job(job_id)["status"] == "FINISHED:COMPLETED"
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal

import msgspec

from flare_adapters.engines.simulated import SimulatedEngine
from flare_adapters.memory.clock import VirtualClock
from flare_adapters.memory.registry import register_memory_system
from flare_adapters.memory.system import DEFAULT_USERS, MemorySystem, build_memory_system
from flare_adapters.memory.transport import MemoryTransport
from flare_adapters.session import AsyncSession, Session
from flare_core.commands import CloneJob, Command, SubmitJob
from flare_core.errors import InvalidArgumentError, NoConnection
from flare_core.events import JobEvent
from flare_core.principal import Grant, Principal
from flare_core.replies import Ok, Reply
from flare_core.service import AdminService
from flare_core.studies import check_session_study
from flare_ports import IdSource
from flare_testing.job_refs import JobName, JobRef, NextJob, SubmitToken

__all__ = ["DEFAULT_ADMIN", "FakeFlare", "SentCommand"]

DEFAULT_ADMIN = "admin@nvidia.com"
"""The built-in ``project_admin`` (``DEFAULT_USERS``; every built-in user's API key is its name)."""

FaultPoint = Literal["before", "after"]


class SentCommand(msgspec.Struct, frozen=True, kw_only=True):
    """One command a session sent to the fake (what ``FakeFlare.commands`` returns).

    Attributes:
        user: the session's user.
        study: the session's study.
        command: the command, as the system received it (``command.op`` names it).
    """

    user: str
    study: str
    command: Command

    @property
    def op(self) -> str:
        """The command's wire name (``"submit_job"``, ``"list_jobs"``, ...)."""
        return str(type(self.command).__struct_config__.tag)


_names = itertools.count(1)


class _Instrumented:
    """The ``Backend`` the fake's transports talk to: the service, plus a request counter and
    injected connection failures shared by every session of the fake.

    A request is one command reaching the system: ``authenticate`` starts it (the memory
    transport authenticates every command) and ``logout`` is one. An injected ``before``
    failure stops a request at ``authenticate``; an ``after`` failure lets ``handle`` run and
    then loses the reply. ``NoConnection`` raised here travels up through the transport as a
    network failure would.
    """

    def __init__(self, service: AdminService) -> None:
        self._service = service
        self._lock = threading.Lock()
        self._faults: deque[FaultPoint] = deque()
        self._requests = 0
        self._lose_reply = threading.local()
        self.closed = False
        self.sent: list[SentCommand] = []
        self.tokens: dict[str, str] = {}
        self._jobs_seen: set[str] = set()
        self.on_new_job: Callable[[str], None] = lambda _: None

    @property
    def requests(self) -> int:
        with self._lock:
            return self._requests

    def inject(self, n: int, when: FaultPoint) -> None:
        with self._lock:
            self._faults = deque([when] * n)

    def login(self, user: str, api_key: str | None, study: str) -> Grant:
        self._check_open()
        return self._service.login(user, api_key, study)

    def _check_open(self) -> None:
        # A closed fake is a server that went away, also for sessions opened through its URL.
        if self.closed:
            raise NoConnection("cannot connect to server: the fake system was closed")

    def authenticate(self, token: str) -> Principal:
        self._check_open()
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
            if fault != "before":
                self._requests += 1
        if fault == "before":
            raise NoConnection("cannot connect to server: injected connection failure")
        self._lose_reply.pending = fault == "after"
        try:
            return self._service.authenticate(token)
        except BaseException:
            self._lose_reply.pending = False
            raise

    def logout(self, token: str) -> None:
        with self._lock:
            self._requests += 1
        self._service.logout(token)

    def handle(
        self, principal: Principal, command: Command, upload: Iterable[bytes] | None = None
    ) -> Reply:
        lose = getattr(self._lose_reply, "pending", False)
        self._lose_reply.pending = False
        with self._lock:
            self.sent.append(
                SentCommand(user=principal.name, study=principal.study, command=command)
            )
        reply = self._service.handle(principal, command, upload)
        if isinstance(command, SubmitJob | CloneJob) and isinstance(reply, Ok):
            job_id = str(reply.value)
            token = getattr(command, "submit_token", None)
            with self._lock:
                if token and getattr(command, "token_scope", "user") != "session":
                    self.tokens[token] = job_id
                new = job_id not in self._jobs_seen  # a replayed submit is no new job
                self._jobs_seen.add(job_id)
            if new:
                self.on_new_job(job_id)  # outside every lock: controls may dispatch it
        if lose:
            raise NoConnection("cannot connect to server: injected loss of the reply")
        return reply

    def open_download(self, principal: Principal, download_id: str) -> Iterator[bytes]:
        return self._service.open_download(principal, download_id)

    def subscribe(self, listener: Callable[[JobEvent], None]) -> Callable[[], None]:
        return self._service.subscribe(listener)


class FakeFlare:
    """An in-memory FL system on a virtual clock (see the module docstring).

    Args:
        users: ``(name, org, role)`` triples (default ``DEFAULT_USERS``: a project_admin,
            lead, member and org_admin of org ``nvidia``, a lead and an org_admin of org
            ``other``); each user's API key is its name.
        sites: the client sites connected at start (org ``nvidia``, the server's org).
        job_duration: how long a job runs, in virtual seconds (plus its configured
            ``num_rounds`` x ``sleep_time``).
        name: the name ``memory://<name>`` URLs reach this system by (default: a fresh
            unique name; see ``url``).
        ids: where job ids and secrets come from (``flare_ports.IdSource``; default random
            UUID4s and ``secrets`` tokens, as a real server has).
        list_page_size: jobs a full ``list_jobs`` reads from the store at a time (a small one
            makes every listing of a few jobs a streamed, multi-page one).

    Use it as a context manager, or call ``close()``.
    """

    def __init__(
        self,
        *,
        users: Sequence[tuple[str, str, str]] | None = None,
        sites: Sequence[str] = ("site-1", "site-2"),
        job_duration: float = 10.0,
        name: str | None = None,
        ids: IdSource | None = None,
        list_page_size: int = 500,
    ) -> None:
        self._sites = tuple(sites)
        self._system: MemorySystem = build_memory_system(
            users=DEFAULT_USERS if users is None else users,
            sites=self._sites,
            duration=job_duration,
            ids=ids,
            list_page_size=list_page_size,
        )
        self._backend = _Instrumented(self._system.service)
        self._next_job: list[Callable[[str], None]] = []
        self._backend.on_new_job = self._new_job
        self._transports: list[MemoryTransport] = []
        self.name = f"fakeflare-{next(_names)}" if name is None else name
        self._unregister = register_memory_system(self.name, self._backend, self._system.clock)

    # --- the parts, for tests that need more than the control plane ----------------------------

    @property
    def url(self) -> str:
        """``memory://<name>``: ``flare_ports.connect(fake.url, user=...)`` reaches this system."""
        return f"memory://{self.name}"

    @property
    def service(self) -> AdminService:
        """The admin service (control plane: ``sites()``, ``start()``, ...)."""
        return self._system.service

    @property
    def engine(self) -> SimulatedEngine:
        """The simulated engine."""
        return self._system.engine

    @property
    def clock(self) -> VirtualClock:
        """The virtual clock every part runs on."""
        return self._system.clock

    # --- sessions ---------------------------------------------------------------------------------

    def session(
        self,
        user: str = DEFAULT_ADMIN,
        study: str = "default",
        *,
        api_key: str | None = None,
        **options: Any,
    ) -> Session:
        """Log in and return a production ``Session`` over the memory transport.

        Args:
            user: the user to log in as.
            study: the study to bind the session to.
            api_key: the user's API key (default: the user name, as the fake's users have).
            **options: ``Session`` options: ``upload_dir``, ``download_dir``, ``retry``,
                ``mint_token``.

        Raises:
            InvalidArgumentError: a malformed study name (nothing is sent).
            AuthenticationError: unknown user, wrong key, or a study the user may not enter.
            NoConnection: the system was shut down or the fake closed.
            TypeError: an unknown option.
        """
        transport = self._transport(user, study, api_key)
        try:
            return Session(transport, **options)
        except BaseException:
            transport.close()
            raise

    def async_session(
        self,
        user: str = DEFAULT_ADMIN,
        study: str = "default",
        *,
        api_key: str | None = None,
        **options: Any,
    ) -> AsyncSession:
        """Like ``session``, returning a production ``AsyncSession``."""
        transport = self._transport(user, study, api_key)
        try:
            return AsyncSession(transport, **options)
        except BaseException:
            transport.close()
            raise

    def _transport(self, user: str, study: str, api_key: str | None) -> MemoryTransport:
        check_session_study(study)
        transport = MemoryTransport(
            self._backend,
            self._system.clock,
            user=user,
            api_key=user if api_key is None else api_key,
            study=study,
        )
        # Forget transports whose sessions closed, so a long-lived fake does not grow.
        self._transports = [t for t in self._transports if not t.closed]
        self._transports.append(transport)
        return transport

    # --- the harness: time ------------------------------------------------------------------------

    @property
    def sites(self) -> tuple[str, ...]:
        """The client sites connected at start."""
        return self._sites

    @property
    def now(self) -> float:
        """The virtual time, epoch seconds."""
        return self._system.clock.time()

    def advance(self, seconds: float) -> None:
        """Move the virtual clock forward, running every timer that falls due (jobs end,
        scheduling passes run, idle sessions expire)."""
        self._system.clock.advance(seconds)

    # --- the harness: jobs ------------------------------------------------------------------------

    def finish_job(self, job: JobRef, status: str = "FINISHED:COMPLETED") -> None:
        """End a job now with a terminal ``status``; a job still waiting for its scheduling
        pass is dispatched first. ``job`` is a job id, ``JobName``, ``SubmitToken`` or
        ``NEXT_JOB`` (then the job ends as soon as it is submitted).

        Raises:
            KeyError: the job is not running and cannot be dispatched now, or no job matches.
            InvalidArgumentError: ``status`` does not start with ``FINISHED:``.
        """

        def finish(job_id: str) -> None:
            self._launched(job_id)
            self._system.engine.finish_job(job_id, status)

        self._control(job, finish)

    def fail_job(
        self,
        job: JobRef,
        status: str = "FINISHED:EXECUTION_EXCEPTION",
        reason: str = "simulated failure",
    ) -> None:
        """End a job now as failed: every site logs ``reason`` and keeps an error log.

        ``job``: as for ``finish_job``.

        Raises:
            KeyError: the job is not running and cannot be dispatched now, or no job matches.
            InvalidArgumentError: ``status`` does not start with ``FINISHED:``.
        """

        def fail(job_id: str) -> None:
            self._launched(job_id)
            self._system.engine.fail_job(job_id, status, reason)

        self._control(job, fail)

    def hold_job(self, job: JobRef) -> None:
        """Keep a job RUNNING (once started) until ``release_job``; may precede the start.
        ``job``: as for ``finish_job``."""
        self._control(job, self._system.engine.hold_job)

    def hold_jobs_named(self, name: str) -> None:
        """Keep every job named ``name`` RUNNING from its launch until ``release_job``."""
        self._system.engine.hold_jobs_named(name)

    def release_job(self, job: JobRef) -> None:
        """Let a held job run on to its planned end (at once if that has passed)."""
        self._control(job, self._system.engine.release_job)

    def job_id(self, job: JobRef) -> str:
        """The id of the job ``job`` names (``NEXT_JOB`` has none yet).

        Raises:
            KeyError: no job matches.
            InvalidArgumentError: ``NEXT_JOB``.
        """
        if isinstance(job, NextJob):
            raise InvalidArgumentError("NEXT_JOB names a job that does not exist yet")
        if isinstance(job, JobName):
            matches = [
                meta
                for meta in self._system.ports.jobs.query(name_prefix=job.name)
                if meta.get("name") == job.name
            ]
            if not matches:
                raise KeyError(f"no job named {job.name!r}")
            return str(matches[-1]["job_id"])
        if isinstance(job, SubmitToken):
            with self._backend._lock:
                found = self._backend.tokens.get(job.token)
            if found is None:
                raise KeyError(f"no job submitted with token {job.token!r}")
            return found
        return job

    def _control(self, job: JobRef, action: Callable[[str], None]) -> None:
        if isinstance(job, NextJob):
            with self._backend._lock:
                self._next_job.append(action)
            return
        action(self.job_id(job))

    def _new_job(self, job_id: str) -> None:
        with self._backend._lock:
            actions, self._next_job = self._next_job, []
        for action in actions:
            action(job_id)

    def commands(self, user: str | None = None, study: str | None = None) -> list[SentCommand]:
        """The commands the fake's sessions sent so far, oldest first (logins and logouts
        are not commands), optionally only those of ``user`` and/or ``study``."""
        with self._backend._lock:
            sent = list(self._backend.sent)
        return [
            item
            for item in sent
            if (user is None or item.user == user) and (study is None or item.study == study)
        ]

    def job_meta(self, job_id: str) -> dict[str, Any]:
        """A copy of a job's stored meta, whatever its study (no authorization).

        Raises:
            KeyError: no such job.
        """
        meta = self._system.service.job_meta(job_id)
        if meta is None:
            raise KeyError(job_id)
        return meta

    def _launched(self, job_id: str) -> None:
        if job_id not in self._system.engine.running_jobs():
            self._system.service.schedule()
        if job_id not in self._system.engine.running_jobs():
            raise KeyError(f"job {job_id} is not running and cannot be dispatched now")

    # --- the harness: sites, users, studies -------------------------------------------------------

    def connect_site(self, name: str, org: str = "nvidia") -> None:
        """Connect (or reconnect) a client site; waiting jobs it unblocks are scheduled.

        Raises:
            AuthenticationError: the site was disabled by an admin.
        """
        self._system.service.connect_site(name, org)

    def disconnect_site(self, name: str) -> None:
        """Disconnect a client site (no error when it was not connected): a crash or a lost
        network, so the jobs it takes part in fail (``SimulatedEngine.site_lost``)."""
        if self._system.service.disconnect_site(name):
            self._system.engine.site_lost(name)

    def add_user(self, name: str, org: str, role: str, api_key: str | None = None) -> None:
        """Add or replace a user; the API key defaults to the user name."""
        self._system.service.add_user(name, org, role, name if api_key is None else api_key)

    def add_study(
        self, name: str, site_orgs: Mapping[str, Sequence[str]], admins: Sequence[str]
    ) -> None:
        """Write a study straight into the registry (no role gates, no connectivity checks).

        Raises:
            ValueError: the study breaks a registry rule (e.g. one site under two orgs).
        """
        self._system.service.add_study(name, site_orgs, admins)

    # --- the harness: faults, counters, files -----------------------------------------------------

    def inject_failures(self, n: int, when: FaultPoint = "before") -> None:
        """Make the next ``n`` requests, from any session of this fake, fail with
        ``NoConnection``: ``before`` the system sees them, or ``after`` it handled them (the
        reply is lost). Replaces any pending failures; ``n == 0`` clears them.

        Raises:
            InvalidArgumentError: ``n < 0`` or an unknown ``when``.
        """
        if not isinstance(n, int) or n < 0:
            raise InvalidArgumentError("n must be an int >= 0")
        if when not in ("before", "after"):
            raise InvalidArgumentError("when must be 'before' or 'after'")
        self._backend.inject(n, when)

    @property
    def requests_received(self) -> int:
        """How many requests (commands, logouts) reached the system so far."""
        return self._backend.requests

    def put_file(self, site: str, path: str, data: bytes) -> None:
        """Write a file into a site's workspace (``site`` may be ``"server"``).

        Raises:
            ValueError: ``path`` is not a relative path inside the workspace.
        """
        self._system.workspaces.tree(site).write(path, data, self.now)

    def append_job_log(self, job_id: str, site: str, data: bytes) -> None:
        """Append to a job's ``log.txt`` on a site (``site`` may be ``"server"``)."""
        self._system.workspaces.tree(site).append(f"{job_id}/log.txt", data, self.now)

    # --- lifetime ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the system: forget ``memory://<name>`` and close the transports of the fake's
        sessions; every session still open (also those opened through ``url``) then fails
        with ``NoConnection``, and so does opening a new one. Idempotent."""
        if self._backend.closed:
            return
        self._backend.closed = True
        self._unregister()
        for transport in self._transports:
            transport.close()
        self._transports.clear()

    def __enter__(self) -> FakeFlare:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FakeFlare(name={self.name!r}, sites={self._sites!r})"
