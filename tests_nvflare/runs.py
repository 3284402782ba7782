"""The three certification runs over one POC: what each declares and how it opens sessions.

* ``reference``: NVFlare's own ``Session`` (``SameNameErrors``), sync only, no behaviour
  capability: the suite must encode the reference.
* ``nvflare``: ``connect("nvflare:///<kit>", user=...)``, sync and async.
* ``gateway``: ``flare-core serve --backend nvflare`` over HTTP and over WebSocket.

Every run declares what the shared POC cannot offer (``POC_ABSENT``): virtual time, job and
site control, run-time users and studies, fault injection, a command log and workspace files
are harness back doors a real federation does not have; restarts and shutdowns would stop
the one POC every test shares.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Iterator, Mapping
from pathlib import Path
from typing import Any, cast

import pytest

from flare_adapters.http.client import http_transport
from flare_adapters.nvflare.connect import nvflare_transport
from flare_adapters.nvflare.errors import same_name
from flare_adapters.ws.client import ws_transport
from flare_core.flows import RetryPolicy
from flare_ports.session_spec import AsyncSessionSpec, SessionSpec
from flare_testing import contract
from flare_testing.contract import capabilities as cap
from flare_testing.contract.base import AsyncSessionFactory, SessionFactory, Users
from flare_testing.contract.harness import Harness
from flare_testing.job_folders import JobFolders
from flare_testing.server import ServedGateway
from tests_nvflare.harness import USERS, FastJobs, PocHarness
from tests_nvflare.reference import SameNameErrors, WarmSessions

POC_ABSENT = frozenset(
    {
        cap.QUICK_JOBS,
        cap.VIRTUAL_TIME,
        cap.JOB_CONTROL,
        cap.SITE_CONTROL,
        cap.USER_ADMIN,
        cap.STUDY_ADMIN,
        cap.FAULT_INJECTION,
        cap.COMMAND_LOG,
        cap.WORKSPACE_FILES,
        cap.DESTRUCTIVE_OPS,
        cap.SITE_REJOIN,
    }
)
"""Harness back doors the shared POC cannot offer."""

BEHAVIOUR = frozenset(name for name in cap.ALL_CAPABILITIES if name not in POC_ABSENT)

NVFLARE_ABSENT = frozenset(
    {
        cap.DASH_NAMES,
        cap.RELAXED_LOG_RIGHTS,  # NVFlare's own policy decides every right
        cap.SITE_REFUSALS_TYPED,
        cap.UNBOUNDED_TOKEN_HASH,  # NVFlare refuses token hashing of members over 10 MiB
        cap.WORKSPACE_SHELL,  # NVFlare runs real ls/cat/grep in the site's working directory
        cap.SERVER_JOB_IDS,
    }
)
"""What flare-core's backend cannot normalise on NVFlare (see docs/nvflare.md)."""

RETRY = RetryPolicy(attempts=3, initial_delay=0.05, max_delay=0.2, deadline=30.0)


class PocRun:
    """Fixtures every run shares: the shared POC, isolation per test, its users and jobs."""

    @pytest.fixture
    def flare_harness(self, poc_harness: PocHarness) -> Iterator[Harness]:
        with poc_harness.isolated():
            yield cast(Harness, poc_harness)

    @pytest.fixture
    def flare_users(self) -> Users:
        return USERS

    @pytest.fixture
    def flare_token_salt(self) -> str:
        # NVFlare keeps token records (and tombstones) from test to test on the shared POC.
        return uuid.uuid4().hex[:12]

    @pytest.fixture
    def flare_jobs(self, tmp_path: Path, flare_harness: Harness) -> JobFolders:
        return FastJobs(tmp_path / "jobs", sites=flare_harness.sites)

    @pytest.fixture(autouse=True)
    def _system_outlives_sessions(self, _flare_requirements: None, flare_harness: Harness) -> None:
        # Clean up only after the test's sessions closed (see the network contract run).
        return None


def _harness(harness: Harness) -> PocHarness:
    assert isinstance(harness, PocHarness)
    return harness


class ReferenceRun(PocRun):
    """Run (a): NVFlare's own ``Session``."""

    @pytest.fixture
    def flare_capabilities(self) -> frozenset[str]:
        return frozenset()

    @pytest.fixture(params=["sync"])
    def flare_flavour(self, request: pytest.FixtureRequest) -> str:
        return str(request.param)

    @pytest.fixture
    def flare_session_factory(
        self, flare_harness: Harness, warm_sessions: WarmSessions, flare_upload_dir: Path
    ) -> SessionFactory:
        def open_session(user: str, study: str = "default") -> SessionSpec:
            try:
                session = warm_sessions.take(user, study)
            except Exception as exc:
                renamed = same_name(exc)
                if renamed is exc:
                    raise
                raise renamed from exc
            session.upload_dir = str(flare_upload_dir)
            return cast(SessionSpec, SameNameErrors(session))

        return open_session


class NVFlareRun(PocRun):
    """Run (b): ``connect("nvflare:///<kit>")``."""

    @pytest.fixture
    def flare_capabilities(self) -> frozenset[str]:
        return BEHAVIOUR - NVFLARE_ABSENT

    def _options(self, upload_dir: Path, download_dir: Path) -> dict[str, Any]:
        return {"upload_dir": str(upload_dir), "download_dir": str(download_dir), "retry": RETRY}

    @pytest.fixture
    def flare_session_factory(
        self,
        flare_harness: Harness,
        nvflare_backends: None,
        flare_upload_dir: Path,
        flare_download_dir: Path,
    ) -> SessionFactory:
        harness = _harness(flare_harness)
        options = self._options(flare_upload_dir, flare_download_dir)

        def open_session(user: str, study: str = "default") -> SessionSpec:
            url = "nvflare://" + harness.kit(user)
            return nvflare_transport.connect(url, user=user, api_key=None, study=study, **options)

        return open_session

    @pytest.fixture
    def flare_async_session_factory(
        self,
        flare_harness: Harness,
        nvflare_backends: None,
        flare_upload_dir: Path,
        flare_download_dir: Path,
    ) -> AsyncSessionFactory:
        harness = _harness(flare_harness)
        options = self._options(flare_upload_dir, flare_download_dir)

        def open_session(user: str, study: str = "default") -> Awaitable[AsyncSessionSpec]:
            url = "nvflare://" + harness.kit(user)
            return nvflare_transport.connect_async(
                url, user=user, api_key=None, study=study, **options
            )

        return open_session


class NVFlareContractRun(NVFlareRun):
    """Run (b) for the contract suite: sync sessions only. Both drivers run over the in-process
    transport in ``make test`` (memory), and the async ``nvflare://`` path still calls every
    method on a real job in the walkthrough; a second full pass would cost the POC about four
    minutes of the 20-minute budget."""

    @pytest.fixture(params=["sync"])
    def flare_flavour(self, request: pytest.FixtureRequest) -> str:
        return str(request.param)


GATEWAY_CAPABILITIES: Mapping[str, frozenset[str]] = {
    "http": BEHAVIOUR - NVFLARE_ABSENT - {cap.JOB_EVENTS},  # HTTP has no event source
    "ws": BEHAVIOUR - NVFLARE_ABSENT,
}


GATEWAY_CASES = (("http", "sync"), ("ws", "async"))
"""One flavour per scheme: both drivers run over both transports in ``make test``, and the
POC's time goes to the gateway itself."""


class GatewayRun(PocRun):
    """Run (c): the gateway, over HTTP (sync sessions) and over WebSocket (async)."""

    @pytest.fixture(params=GATEWAY_CASES, ids=["-".join(case) for case in GATEWAY_CASES])
    def gateway_case(self, request: pytest.FixtureRequest) -> tuple[str, str]:
        return cast(tuple[str, str], request.param)

    @pytest.fixture
    def flare_scheme(self, gateway_case: tuple[str, str]) -> str:
        return gateway_case[0]

    @pytest.fixture
    def flare_flavour(self, gateway_case: tuple[str, str]) -> str:
        return gateway_case[1]

    @pytest.fixture
    def flare_capabilities(self, flare_scheme: str) -> frozenset[str]:
        return GATEWAY_CAPABILITIES[flare_scheme]

    def _options(self, upload_dir: Path, download_dir: Path) -> dict[str, Any]:
        return {
            "upload_dir": str(upload_dir),
            "download_dir": str(download_dir),
            "retry": RETRY,
            "timeout": 120.0,
        }

    @pytest.fixture
    def flare_session_factory(
        self,
        gateway: ServedGateway,
        flare_scheme: str,
        flare_upload_dir: Path,
        flare_download_dir: Path,
    ) -> SessionFactory:
        options = self._options(flare_upload_dir, flare_download_dir)
        factory = http_transport if flare_scheme == "http" else ws_transport
        url = gateway.http_url if flare_scheme == "http" else gateway.ws_url

        def open_session(user: str, study: str = "default") -> SessionSpec:
            key = gateway.api_keys.get(user, "no-such-key")
            return factory.connect(url, user=user, api_key=key, study=study, **options)

        return open_session

    @pytest.fixture
    def flare_async_session_factory(
        self,
        gateway: ServedGateway,
        flare_scheme: str,
        flare_upload_dir: Path,
        flare_download_dir: Path,
    ) -> AsyncSessionFactory:
        options = self._options(flare_upload_dir, flare_download_dir)
        factory = http_transport if flare_scheme == "http" else ws_transport
        url = gateway.http_url if flare_scheme == "http" else gateway.ws_url

        def open_session(user: str, study: str = "default") -> Awaitable[AsyncSessionSpec]:
            key = gateway.api_keys.get(user, "no-such-key")
            return factory.connect_async(url, user=user, api_key=key, study=study, **options)

        return open_session


def contract_tests(run: type, prefix: str) -> dict[str, type]:
    """One ``Test<prefix><Contract>`` class per contract class, with ``run``'s fixtures."""
    classes: dict[str, type] = {}
    for base in contract.CONTRACTS:
        name = f"Test{prefix}{base.__name__.removesuffix('Contract')}"
        classes[name] = type(name, (run, base), {"__module__": run.__module__})
    return classes
