"""``ContractBase``: the fixtures every contract test class shares, and the helpers its bodies use.

Fixtures to override when certifying another implementation (see ``README.md``):

* ``flare_harness``: the back door (``Harness``) of a fresh system per test;
* ``flare_session_factory``: ``(user, study) -> SessionSpec`` on that system;
* ``flare_async_session_factory``: ``(user, study) -> AsyncSessionSpec`` (or an awaitable of
  one); only requested by the ``async`` flavour;
* ``flare_capabilities``: the declared capability names (``capabilities.py``);
* ``flare_users``: the user names playing each role;
* ``flare_flavour``: the flavours to run, ``("sync", "async")`` by default;
* ``flare_upload_dir`` / ``flare_download_dir``: directories the factories must configure
  their sessions with;
* ``flare_jobs``: the job-folder builder.

The defaults run everything against ``FakeFlare``. Test bodies use the short fixtures
``harness``, ``caps``, ``users``, ``jobs``, ``sessions`` (open more sessions) and ``session``
(an admin session); in the ``async`` flavour every session is an ``AsyncSessionSpec`` behind a
``SyncFacade``, so each body exercises both drivers.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

import pytest

from flare_core.errors import InvalidArgumentError
from flare_core.info import MonitorReturnCode
from flare_ports.session_spec import AsyncSessionSpec, SessionSpec
from flare_testing.contract import capabilities as cap
from flare_testing.contract.harness import Harness
from flare_testing.contract.sync_facade import SyncFacade, run_awaitable
from flare_testing.fake import FakeFlare
from flare_testing.job_folders import JobFolders

__all__ = [
    "FLAVOURS",
    "PENDING_SITE",
    "AsyncSessionFactory",
    "ContractBase",
    "OpenSession",
    "SessionFactory",
    "Token",
    "Users",
    "arg_error",
    "call",
    "finished_job",
    "nothing_sent",
    "pending_job",
    "running_job",
    "salted",
    "unknown_job_id",
    "wait_status",
]

FLAVOURS = ("sync", "async")
"""The API flavours every contract test runs in by default."""

PENDING_SITE = "site-pending"
"""A client site that never connects: jobs deployed to it stay SUBMITTED."""


class SessionFactory(Protocol):
    """Opens a ``SessionSpec`` for ``user`` bound to ``study`` (raises what login raises)."""

    def __call__(self, user: str, study: str = "default") -> SessionSpec: ...


class AsyncSessionFactory(Protocol):
    """Opens an ``AsyncSessionSpec`` (directly, or as an awaitable) for ``user`` in ``study``."""

    def __call__(
        self, user: str, study: str = "default"
    ) -> AsyncSessionSpec | Awaitable[AsyncSessionSpec]: ...


class OpenSession(Protocol):
    """What the ``sessions`` fixture returns: open a session in the test's flavour."""

    def __call__(self, user: str | None = None, study: str = "default") -> SessionSpec: ...


@dataclass(frozen=True)
class Users:
    """The user names playing each role (all can log in; api keys are the factory's concern).

    Attributes:
        admin: a ``project_admin`` of the server's org.
        lead: a ``lead`` of the server's org.
        member: a ``member`` of the server's org.
        org_admin: an ``org_admin`` of the server's org.
        other_lead: a ``lead`` of another org.
        other_org_admin: an ``org_admin`` of that other org.
        server_org: the server's org (and the org of the harness's sites).
        other_org: the other org.
    """

    admin: str = "admin@nvidia.com"
    lead: str = "lead@nvidia.com"
    member: str = "member@nvidia.com"
    org_admin: str = "orgadmin@nvidia.com"
    other_lead: str = "lead@other.org"
    other_org_admin: str = "orgadmin@other.org"
    server_org: str = "nvidia"
    other_org: str = "other"


class ContractBase:
    """Fixtures shared by every contract class; subclass a contract class, not this one."""

    pytestmark = [pytest.mark.flare_contract]

    # --- fixtures an implementation overrides ---------------------------------------------

    @pytest.fixture
    def flare_harness(self) -> Iterator[Harness]:
        """A fresh system per test (default: a ``FakeFlare``, whose listings stream a page
        of two jobs at a time, so the suite's listings cross page boundaries)."""
        with FakeFlare(list_page_size=2) as fake:
            yield fake

    @pytest.fixture
    def flare_capabilities(self) -> frozenset[str]:
        """The capabilities the implementation declares (default: all, as ``FakeFlare``)."""
        return cap.ALL_CAPABILITIES

    @pytest.fixture
    def flare_users(self) -> Users:
        """Who plays each role (default: ``FakeFlare``'s built-in users)."""
        return Users()

    @pytest.fixture
    def flare_token_salt(self) -> str:
        """Made part of every submit token a test uses ("": tokens as written).

        A system shared by many tests keeps NVFlare's token records (and their tombstones)
        from one test to the next; a salt unique per test (``uuid4().hex[:12]``) keeps the
        tests' tokens apart there. A fresh system per test needs none.
        """
        return ""

    @pytest.fixture
    def flare_upload_dir(self, tmp_path: Path) -> Path:
        """The upload directory sessions resolve relative job folders against."""
        path = tmp_path / "upload"
        path.mkdir()
        return path

    @pytest.fixture
    def flare_download_dir(self, tmp_path: Path) -> Path:
        """The directory downloads land in."""
        path = tmp_path / "download"
        path.mkdir()
        return path

    @pytest.fixture
    def flare_session_factory(
        self, flare_harness: Harness, flare_upload_dir: Path, flare_download_dir: Path
    ) -> SessionFactory:
        """Open sync sessions on the harness's system (default: ``FakeFlare.session``)."""
        fake = _fake(flare_harness, "flare_session_factory")

        def factory(user: str, study: str = "default") -> SessionSpec:
            return fake.session(
                user=user,
                study=study,
                upload_dir=str(flare_upload_dir),
                download_dir=str(flare_download_dir),
            )

        return factory

    @pytest.fixture
    def flare_async_session_factory(
        self, flare_harness: Harness, flare_upload_dir: Path, flare_download_dir: Path
    ) -> AsyncSessionFactory:
        """Open async sessions on the harness's system (default: ``FakeFlare.async_session``)."""
        fake = _fake(flare_harness, "flare_async_session_factory")

        def factory(user: str, study: str = "default") -> AsyncSessionSpec:
            return fake.async_session(
                user=user,
                study=study,
                upload_dir=str(flare_upload_dir),
                download_dir=str(flare_download_dir),
            )

        return factory

    @pytest.fixture(params=FLAVOURS)
    def flare_flavour(self, request: pytest.FixtureRequest) -> str:
        """The API flavour of this run: ``sync`` or ``async``."""
        return cast(str, request.param)

    @pytest.fixture
    def flare_jobs(self, tmp_path: Path, flare_harness: Harness) -> JobFolders:
        """Builds job folders for the harness's sites."""
        return JobFolders(tmp_path / "jobs", sites=flare_harness.sites)

    # --- machinery ---------------------------------------------------------------------------

    @pytest.fixture(autouse=True)
    def _flare_requirements(
        self, request: pytest.FixtureRequest, flare_capabilities: frozenset[str], flare_flavour: str
    ) -> None:
        # Runs first (autouse, no system needed): skip before building anything when a
        # required capability is not declared. Depending on flare_flavour makes every
        # contract test run once per flavour.
        required = [
            name for marker in request.node.iter_markers("flare_requires") for name in marker.args
        ]
        absent = cap.missing(flare_capabilities, required)
        if absent:
            pytest.skip(cap.skip_reason(absent))

    # --- short names for test bodies -----------------------------------------------------------

    @pytest.fixture
    def harness(self, flare_harness: Harness) -> Harness:
        """The system's back door."""
        return flare_harness

    @pytest.fixture
    def caps(self, flare_capabilities: frozenset[str]) -> frozenset[str]:
        """The declared capabilities."""
        return flare_capabilities

    @pytest.fixture
    def users(self, flare_users: Users) -> Users:
        """Who plays each role."""
        return flare_users

    @pytest.fixture
    def token(self, flare_token_salt: str) -> Token:
        """Turn a submit token as written into the one this test uses (see ``salted``)."""
        return lambda written: salted(written, flare_token_salt)

    @pytest.fixture
    def jobs(self, flare_jobs: JobFolders) -> JobFolders:
        """The job-folder builder."""
        return flare_jobs

    @pytest.fixture
    def sessions(
        self, request: pytest.FixtureRequest, flare_flavour: str, flare_users: Users
    ) -> Iterator[OpenSession]:
        """Open sessions in this run's flavour; all are closed after the test."""
        opened: list[SessionSpec] = []
        runner: asyncio.Runner | None = None

        def open_session(user: str | None = None, study: str = "default") -> SessionSpec:
            nonlocal runner
            name = flare_users.admin if user is None else user
            if flare_flavour == "sync":
                sync_factory: SessionFactory = request.getfixturevalue("flare_session_factory")
                session = sync_factory(name, study)
            else:
                async_factory: AsyncSessionFactory = request.getfixturevalue(
                    "flare_async_session_factory"
                )
                if runner is None:
                    runner = asyncio.Runner()
                async_session = run_awaitable(runner, async_factory(name, study))
                session = cast(SessionSpec, SyncFacade(async_session, runner))
            opened.append(session)
            return session

        try:
            yield open_session
        finally:
            try:
                for session in reversed(opened):
                    session.close()
            finally:
                if runner is not None:
                    runner.close()

    @pytest.fixture
    def session(self, sessions: OpenSession) -> SessionSpec:
        """A ``project_admin`` session in the default study."""
        return sessions()


def _fake(harness: Harness, fixture: str) -> FakeFlare:
    if not isinstance(harness, FakeFlare):
        raise TypeError(f"override the {fixture} fixture for {type(harness).__name__}")
    return harness


# --- helpers for test bodies -------------------------------------------------------------------


Token = Callable[[str], str]
"""A test's token maker: the token as written in the test -> the token it submits."""

_TOKEN_MAX = 128


def salted(token: str, salt: str) -> str:
    """``token`` made unique with ``salt``, still a well-formed submit token.

    Returns ``token`` itself for an empty salt; else ``token.salt``, its head cut so that the
    result keeps within the 128-character limit.
    """
    if not salt:
        return token
    return f"{token[: _TOKEN_MAX - len(salt) - 1]}.{salt}"


def arg_error(caps: frozenset[str], reference: type[Exception]) -> type[Exception]:
    """The exception a local argument error is expected to raise.

    Args:
        caps: the declared capabilities.
        reference: the built-in the reference raises for this argument.

    Returns:
        ``InvalidArgumentError`` when ``argument_errors`` is declared (DECISIONS §4), else
        ``reference``.
    """
    return InvalidArgumentError if cap.ARGUMENT_ERRORS in caps else reference


def call(session: SessionSpec, method: str, *args: Any, **kwargs: Any) -> Any:
    """Call a session method by name (parametrized tests; the result is untyped)."""
    return getattr(session, method)(*args, **kwargs)


@contextmanager
def nothing_sent(harness: Harness, caps: frozenset[str]) -> Iterator[None]:
    """Assert that the block sends no request (checked when ``command_log`` is declared)."""
    before = harness.requests_received if cap.COMMAND_LOG in caps else None
    yield
    if before is not None:
        assert harness.requests_received == before, "a request reached the system"


def unknown_job_id() -> str:
    """A well-formed UUID4 that names no job."""
    return str(uuid.uuid4())


def wait_status(
    session: SessionSpec, job_id: str, *wanted: str, timeout: float = 600.0
) -> dict[str, Any]:
    """Poll until the job's status is one of ``wanted``.

    Args:
        session: the session to poll with.
        job_id: the job.
        *wanted: the statuses to wait for.
        timeout: the most seconds to wait.

    Returns:
        The first polled meta whose status is wanted.

    Raises:
        AssertionError: the job ended in another status, or the timeout passed.
    """
    seen: dict[str, Any] = {}

    def keep_polling(_session: object, _job_id: str, meta: dict[str, Any]) -> bool:
        seen.clear()
        seen.update(meta)
        return meta.get("status") not in wanted

    rc = session.monitor_job(job_id, timeout, 0.5, keep_polling)
    assert rc is MonitorReturnCode.ENDED_BY_CB, (
        f"job {job_id} ended as {seen.get('status')!r} while waiting for {wanted}"
    )
    return seen


def finished_job(session: SessionSpec, jobs: JobFolders, **variant: Any) -> str:
    """Submit a ``hello`` variant (``JobFolders.hello`` arguments) and wait until it is
    terminal.

    Returns:
        The job id.
    """
    job_id = session.submit_job(str(jobs.hello(**variant)))
    session.wait_for_job(job_id, timeout=3600)
    return job_id


def running_job(harness: Harness, session: SessionSpec, jobs: JobFolders, **variant: Any) -> str:
    """Submit a ``hello`` variant held from its launch (``job_control``) and wait until it is
    RUNNING.

    The job gets a unique name that the harness holds before the submit is sent: on a real
    clock a job may end between its submit's reply and any hold by id.

    The job is asked to run for hours (``sleep_time``) unless the variant says otherwise: on a
    real clock the hold comes after the submit's reply, and a job that may end within
    milliseconds can be over by then on a loaded machine.

    Returns:
        The job id.
    """
    name = str(variant.pop("name", None) or f"held-{uuid.uuid4().hex[:12]}")
    harness.hold_jobs_named(name)
    job_id = session.submit_job(str(jobs.hello(name=name, **variant)))
    wait_status(session, job_id, "RUNNING")
    return job_id


def pending_job(
    session: SessionSpec,
    jobs: JobFolders,
    *,
    submit_token: str | None = None,
    meta_extra: dict[str, Any] | None = None,
    **variant: Any,
) -> str:
    """Submit a ``hello`` variant that can never be scheduled: it stays SUBMITTED.

    The job deploys to the harness's sites and ``PENDING_SITE``, a mandatory site that never
    connects.

    Args:
        session: the submitting session.
        jobs: the job-folder builder.
        submit_token: passed to ``submit_job``.
        meta_extra: further meta keys.
        **variant: further ``JobFolders.hello`` arguments.

    Returns:
        The job id.
    """
    sites = [*jobs.sites, PENDING_SITE]
    folder = jobs.hello(
        deploy_map={"app": ["server", *sites]},
        min_clients=len(sites),
        meta={"mandatory_clients": [PENDING_SITE], **(meta_extra or {})},
        **variant,
    )
    return session.submit_job(str(folder), submit_token)
