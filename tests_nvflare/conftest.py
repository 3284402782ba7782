"""The shared real NVFlare POC of ``make test-nvflare`` (one for the whole run).

``poc`` prepares and starts a two-site POC bound to 127.0.0.1 in a temporary workspace (with
``HOME`` and ``NVFLARE_POC_WORKSPACE`` inside it) and always stops it at the end: gracefully,
then by PID. ``gateway`` serves ``flare-core serve --backend nvflare`` in front of it.
"""

from __future__ import annotations

import faulthandler
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from flare_adapters.nvflare.connect import close_backends
from flare_adapters.nvflare.kits import KitUser
from flare_adapters.nvflare.pool import open_nvflare_session
from flare_testing.nvflare_poc import Poc, running_poc
from flare_testing.server import ServedGateway, serve_gateway
from tests_nvflare.harness import PocHarness
from tests_nvflare.reference import WarmSessions


@pytest.fixture(scope="session")
def poc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Poc]:
    with running_poc(tmp_path_factory.mktemp("poc")) as running:
        yield running


@pytest.fixture(scope="session")
def poc_harness(poc: Poc) -> Iterator[PocHarness]:
    harness = PocHarness(poc)
    try:
        yield harness
    finally:
        harness.close()


@pytest.fixture(scope="session")
def warm_sessions(poc_harness: PocHarness) -> Iterator[WarmSessions]:
    def open_session(user: str, study: str) -> Any:
        return open_nvflare_session(KitUser(name=user, kit=poc_harness.kit(user)), study, 30.0)

    warm = WarmSessions(open_session)
    try:
        yield warm
    finally:
        warm.close()


@pytest.fixture(scope="session")
def nvflare_backends(poc: Poc) -> Iterator[None]:
    """The process's ``nvflare://`` backends, closed while the POC still answers."""
    try:
        yield
    finally:
        close_backends()


@pytest.fixture(scope="session")
def gateway(poc_harness: PocHarness) -> Iterator[ServedGateway]:
    with serve_gateway(poc_harness.kits) as served:
        yield served


_EXIT_GRACE = 30.0
_EXIT_STATUS = pytest.StashKey[int]()


def pytest_unconfigure(config: pytest.Config) -> None:
    # NVFlare's admin client leaves threads behind (its cells retry a POC that is gone); a
    # finished run must not hang on them. After a grace period, dump what is still running
    # and leave with pytest's own status.
    def leave() -> None:
        faulthandler.dump_traceback(all_threads=True)
        os._exit(config.stash.get(_EXIT_STATUS, 1))

    timer = threading.Timer(_EXIT_GRACE, leave)
    timer.daemon = True
    timer.start()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[_EXIT_STATUS] = int(exitstatus)
