"""The whole contract suite over the network: ``http://`` and ``ws://``, sync and async,
against the real server (``flare_testing.serve()``).

Each test gets a fresh served system (SQLite workspace, real clock, jobs lasting 0.2 s) with
a loopback proxy in front of it; sessions connect through the proxy, so the harness can break
connections the way a network does (``inject_failures``) and count the commands that reached
the server (``requests_received``). The capabilities declared are what a real server can do:
everything but virtual time, and pushed job events only over WebSocket.

Every contract test runs four times here (http and ws, each sync and async), and the same
number of tests as in the memory run per flavour.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Awaitable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import pytest

from flare_adapters.http.client import http_transport
from flare_adapters.server.config import EngineSection
from flare_adapters.session import AsyncSession, Session
from flare_adapters.ws.client import ws_transport
from flare_core.flows import RetryPolicy
from flare_testing import contract
from flare_testing.contract import capabilities as cap
from flare_testing.contract.base import AsyncSessionFactory, SessionFactory
from flare_testing.contract.harness import Harness
from flare_testing.server import ServedSystem, serve
from tests.transports.proxy import LoopbackProxy

SCHEMES = ("http", "ws")

NETWORK_CAPABILITIES: Mapping[str, frozenset[str]] = {
    # A real clock cannot jump; HTTP has no event source to wake a waiting session.
    "http": cap.ALL_CAPABILITIES - {cap.VIRTUAL_TIME, cap.JOB_EVENTS},
    "ws": cap.ALL_CAPABILITIES - {cap.VIRTUAL_TIME},
}

RETRY = RetryPolicy(attempts=3, initial_delay=0.01, max_delay=0.05, deadline=10.0)
"""The reference's three attempts, with short waits so the suite stays fast."""

_FAST_DISK = "/dev/shm" if os.path.isdir("/dev/shm") else None
"""A memory file system where there is one: the server fsyncs every commit, which costs
milliseconds per test on a disk and buys nothing for a throw-away workspace."""

LIST_PAGE_SIZE = 2
"""Jobs a full listing reads at a time: small, so the suite's listings of a few jobs are
streamed replies (a chunked HTTP body, a WebSocket value encoded row by row)."""

POLL_CAP = 0.05
"""Sessions poll at least this often while waiting, whatever poll interval a test asks for:
time is real here, and HTTP has no events to wake a waiting session."""

JOB_DURATION = 0.05
"""Seconds a served job runs (jobs that must stay live are held or never schedulable)."""


class ServedHarness:
    """The contract ``Harness`` over a served system and the proxy in front of it."""

    def __init__(self, served: ServedSystem, proxy: LoopbackProxy) -> None:
        self.served = served
        self.proxy = proxy
        self.api_keys = dict(served.api_keys)

    @property
    def sites(self) -> tuple[str, ...]:
        return ("site-1", "site-2")

    @property
    def now(self) -> float:
        return time.time()

    def advance(self, seconds: float) -> None:
        raise AssertionError("a served system runs on a real clock (virtual_time not declared)")

    def finish_job(self, job_id: str, status: str = "FINISHED:COMPLETED") -> None:
        self.served.finish_job(job_id, status)

    def fail_job(self, job_id: str, status: str = "FINISHED:EXECUTION_EXCEPTION") -> None:
        self.served.fail_job(job_id, status)

    def hold_job(self, job_id: str) -> None:
        self.served.hold_job(job_id)

    def hold_jobs_named(self, name: str) -> None:
        self.served.hold_jobs_named(name)

    def release_job(self, job_id: str) -> None:
        self.served.release_job(job_id)

    def connect_site(self, name: str, org: str = "nvidia") -> None:
        self.served.connect_site(name, org)

    def disconnect_site(self, name: str) -> None:
        self.served.disconnect_site(name)

    def add_user(self, name: str, org: str, role: str) -> None:
        self.api_keys[name] = f"key-of-{name}"
        self.served.service.add_user(name, org, role, self.api_keys[name])

    def add_study(
        self, name: str, site_orgs: Mapping[str, Sequence[str]], admins: Sequence[str]
    ) -> None:
        self.served.service.add_study(name, site_orgs, admins)

    def inject_failures(self, n: int, when: Literal["before", "after"] = "before") -> None:
        self.proxy.drop_requests = n if when == "before" else 0
        self.proxy.lose_replies = n if when == "after" else 0

    @property
    def requests_received(self) -> int:
        return self.proxy.requests

    def put_file(self, site: str, path: str, data: bytes) -> None:
        self.served.runtime.workspaces.tree(site).write(path, data, time.time())

    def append_job_log(self, job_id: str, site: str, data: bytes) -> None:
        self.served.runtime.workspaces.tree(site).append(f"{job_id}/log.txt", data, time.time())

    def job_meta(self, job_id: str) -> dict[str, Any]:
        meta = self.served.job_meta(job_id)
        if meta is None:
            raise KeyError(job_id)
        return meta


def _served(harness: Harness) -> ServedHarness:
    assert isinstance(harness, ServedHarness)
    return harness


class NetworkContract:
    """Fixture overrides running a contract class over ``flare_testing.serve()``."""

    @pytest.fixture(params=SCHEMES)
    def flare_scheme(self, request: pytest.FixtureRequest) -> str:
        return str(request.param)

    @pytest.fixture
    def flare_capabilities(self, flare_scheme: str) -> frozenset[str]:
        return NETWORK_CAPABILITIES[flare_scheme]

    ENGINE: EngineSection | None = None
    """The engine behind the served system (None: ``serve()``'s simulated one)."""

    @pytest.fixture
    def flare_harness(self) -> Iterator[Harness]:
        with (
            tempfile.TemporaryDirectory(prefix="flare-", dir=_FAST_DISK) as workspace,
            serve(
                job_duration=JOB_DURATION,
                workspace=workspace,
                engine=self.ENGINE,
                list_page_size=LIST_PAGE_SIZE,
            ) as served,
        ):
            port = urlsplit(served.http_url).port
            assert port is not None
            proxy = LoopbackProxy(port)
            try:
                yield ServedHarness(served, proxy)
            finally:
                proxy.close()

    @pytest.fixture(autouse=True)
    def _server_outlives_sessions(self, _flare_requirements: None, flare_harness: Harness) -> None:
        # ``sessions`` asks for the factories (and so the harness) lazily, which would stop
        # the server before the test's sessions log out; requesting the harness up front
        # (after the capability check, so skipped tests start nothing) keeps it running
        # until they are closed.
        return None

    def _options(self, scheme: str, upload_dir: Path, download_dir: Path) -> dict[str, Any]:
        options: dict[str, Any] = {
            "upload_dir": str(upload_dir),
            "download_dir": str(download_dir),
            "retry": RETRY,
            "timeout": 10.0,
            "max_poll_interval": POLL_CAP,
        }
        return options

    @pytest.fixture
    def flare_session_factory(
        self,
        flare_harness: Harness,
        flare_scheme: str,
        flare_upload_dir: Path,
        flare_download_dir: Path,
    ) -> SessionFactory:
        harness = _served(flare_harness)
        options = self._options(flare_scheme, flare_upload_dir, flare_download_dir)
        factory = http_transport if flare_scheme == "http" else ws_transport

        def open_session(user: str, study: str = "default") -> Session:
            return factory.connect(
                harness.proxy.url(flare_scheme),
                user=user,
                api_key=harness.api_keys.get(user, "no-such-key"),
                study=study,
                **options,
            )

        return open_session

    @pytest.fixture
    def flare_async_session_factory(
        self,
        flare_harness: Harness,
        flare_scheme: str,
        flare_upload_dir: Path,
        flare_download_dir: Path,
    ) -> AsyncSessionFactory:
        harness = _served(flare_harness)
        options = self._options(flare_scheme, flare_upload_dir, flare_download_dir)
        factory = http_transport if flare_scheme == "http" else ws_transport

        def open_session(user: str, study: str = "default") -> Awaitable[AsyncSession]:
            return factory.connect_async(
                harness.proxy.url(flare_scheme),
                user=user,
                api_key=harness.api_keys.get(user, "no-such-key"),
                study=study,
                **options,
            )

        return open_session


class TestSubmit(NetworkContract, contract.SubmitContract):
    pass


class TestJobLifecycle(NetworkContract, contract.JobLifecycleContract):
    pass


class TestJobResults(NetworkContract, contract.JobResultsContract):
    pass


class TestJobIds(NetworkContract, contract.JobIdContract):
    pass


class TestSubmitTokens(NetworkContract, contract.SubmitTokenContract):
    pass


class TestListJobs(NetworkContract, contract.ListJobsContract):
    pass


class TestMonitor(NetworkContract, contract.MonitorContract):
    pass


class TestJobLogs(NetworkContract, contract.JobLogsContract):
    pass


class TestSystemInfo(NetworkContract, contract.SystemInfoContract):
    pass


class TestTargetValidation(NetworkContract, contract.TargetValidationContract):
    pass


class TestLifecycleOps(NetworkContract, contract.LifecycleOpsContract):
    pass


class TestClientManagement(NetworkContract, contract.ClientManagementContract):
    pass


class TestSessionSettings(NetworkContract, contract.SessionSettingsContract):
    pass


class TestShellValidation(NetworkContract, contract.ShellValidationContract):
    pass


class TestShellBehaviour(NetworkContract, contract.ShellBehaviourContract):
    pass


class TestJobStats(NetworkContract, contract.JobStatsContract):
    pass


class TestStudyArguments(NetworkContract, contract.StudyArgumentsContract):
    pass


class TestStudyCommands(NetworkContract, contract.StudyCommandsContract):
    pass


class TestStudyScope(NetworkContract, contract.StudyScopeContract):
    pass


class TestClosedSession(NetworkContract, contract.ClosedSessionContract):
    pass


class TestSessionExpiry(NetworkContract, contract.SessionExpiryContract):
    pass


class TestRetries(NetworkContract, contract.RetryContract):
    pass


class TestAuthorization(NetworkContract, contract.AuthorizationContract):
    pass


def test_every_contract_class_runs_here() -> None:
    covered = {
        base for cls in globals().values() if isinstance(cls, type) for base in cls.__bases__
    }
    assert set(contract.CONTRACTS) <= covered
