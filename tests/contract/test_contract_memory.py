"""The whole contract suite over FakeFlare, in both flavours (``sync`` and ``async``).

Each ``Test...`` class below inherits one contract class unchanged: the ``ContractBase``
defaults already target ``FakeFlare`` and declare every capability, so nothing is skipped and
each test runs once through ``Session`` and once through ``AsyncSession``.
"""

from __future__ import annotations

import inspect

import pytest

from flare_ports.session_spec import AsyncSessionSpec, SessionSpec
from flare_testing import contract
from flare_testing.contract import capabilities as cap


class TestSubmit(contract.SubmitContract):
    pass


class TestJobLifecycle(contract.JobLifecycleContract):
    pass


class TestJobResults(contract.JobResultsContract):
    pass


class TestJobIds(contract.JobIdContract):
    pass


class TestSubmitTokens(contract.SubmitTokenContract):
    pass


class TestListJobs(contract.ListJobsContract):
    pass


class TestMonitor(contract.MonitorContract):
    pass


class TestJobLogs(contract.JobLogsContract):
    pass


class TestSystemInfo(contract.SystemInfoContract):
    pass


class TestTargetValidation(contract.TargetValidationContract):
    pass


class TestLifecycleOps(contract.LifecycleOpsContract):
    pass


class TestClientManagement(contract.ClientManagementContract):
    pass


class TestSessionSettings(contract.SessionSettingsContract):
    pass


class TestShellValidation(contract.ShellValidationContract):
    pass


class TestShellBehaviour(contract.ShellBehaviourContract):
    pass


class TestJobStats(contract.JobStatsContract):
    pass


class TestStudyArguments(contract.StudyArgumentsContract):
    pass


class TestStudyCommands(contract.StudyCommandsContract):
    pass


class TestStudyScope(contract.StudyScopeContract):
    pass


class TestClosedSession(contract.ClosedSessionContract):
    pass


class TestSessionExpiry(contract.SessionExpiryContract):
    pass


class TestRetries(contract.RetryContract):
    pass


class TestAuthorization(contract.AuthorizationContract):
    pass


# --- the suite's own invariants (not part of the flavoured runs) -------------------------------


def _contract_sources() -> str:
    modules = {inspect.getmodule(cls) for cls in contract.CONTRACTS} | {contract.base}
    return "\n".join(inspect.getsource(module) for module in modules if module is not None)


def _public_methods(spec: type) -> set[str]:
    return {
        name
        for name, member in inspect.getmembers(spec, inspect.isfunction)
        if not name.startswith("_")
    }


def test_every_contract_class_runs_here() -> None:
    covered = {
        base for cls in globals().values() if isinstance(cls, type) for base in cls.__bases__
    }
    assert set(contract.CONTRACTS) <= covered


@pytest.mark.parametrize("method", sorted(_public_methods(SessionSpec)))
def test_every_session_method_is_exercised(method: str) -> None:
    sources = _contract_sources()
    assert f".{method}(" in sources or f'"{method}"' in sources, method


def test_async_spec_mirrors_the_sync_spec() -> None:
    renamed = {"close": "aclose"}
    expected = {renamed.get(name, name) for name in _public_methods(SessionSpec)}
    assert expected <= _public_methods(AsyncSessionSpec)


def test_every_capability_is_used() -> None:
    sources = _contract_sources()
    for name in cap.ALL_CAPABILITIES:
        constant = next(k for k, v in vars(cap).items() if v == name and k.isupper())
        assert f"cap.{constant}" in sources, f"capability {name!r} is declared but never used"
