"""The whole contract suite over the embedded server running the nvflare engine (issue 9).

The same served system as ``tests/contract/test_contract_network.py`` (a fresh SQLite
workspace per test, behind the loopback proxy), but its jobs run on NVIDIA FLARE's simulator.
The transports are certified with the simulated engine in ``make test``; what this run
certifies is the engine behind them, so it runs once: over WebSocket (whose pushed events
carry the engine's progress), sync. Declared off: virtual time (a real clock) and job control
(a real simulator cannot be told to finish), and so ``quick_jobs`` (a real job takes 15-20 s;
the engine tests in ``test_engine.py`` wait for real ends). Jobs the suite does not mean to run
ask for one client more than the system has (``FastJobs``), so no test starts a simulator it
would only kill again.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from flare_adapters.server.config import EngineSection
from flare_testing import contract
from flare_testing.contract import capabilities as cap
from flare_testing.contract.harness import Harness
from flare_testing.job_folders import JobFolders
from tests.contract.test_contract_network import (
    NETWORK_CAPABILITIES,
    NetworkContract,
    ServedHarness,
)
from tests_nvflare.harness import FastJobs

ENGINE_ABSENT = frozenset({cap.JOB_CONTROL, cap.QUICK_JOBS})
"""What a real simulator cannot offer the harness (virtual time is off on every network run)."""


class EngineRun(NetworkContract):
    """``NetworkContract`` with the nvflare engine behind the served system."""

    ENGINE = EngineSection(kind="nvflare")

    @pytest.fixture(params=("ws",))
    def flare_scheme(self, request: pytest.FixtureRequest) -> str:
        return str(request.param)

    @pytest.fixture(params=("sync",))
    def flare_flavour(self, request: pytest.FixtureRequest) -> str:
        return str(request.param)

    @pytest.fixture
    def flare_capabilities(self, flare_scheme: str) -> frozenset[str]:
        return NETWORK_CAPABILITIES[flare_scheme] - ENGINE_ABSENT

    @pytest.fixture(autouse=True)
    def _runs_the_nvflare_engine(self, _flare_requirements: None, flare_harness: Harness) -> None:
        assert isinstance(flare_harness, ServedHarness)
        assert flare_harness.served.runtime.engine_kind == "nvflare"

    @pytest.fixture
    def flare_jobs(self, tmp_path: Path, flare_harness: Harness) -> JobFolders:
        return FastJobs(tmp_path / "jobs", sites=flare_harness.sites)


for _base in contract.CONTRACTS:
    _name = f"TestEngine{_base.__name__.removesuffix('Contract')}"
    globals()[_name] = type(_name, (EngineRun, _base), {"__module__": __name__})
