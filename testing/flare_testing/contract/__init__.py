"""The flare-core contract suite: abstract test classes any ``SessionSpec`` implementation
can run (see ``README.md`` next to this file).

Subclass the contract classes in a test module (name the subclasses ``Test...``), override the
``ContractBase`` fixtures for your system, declare your capabilities, and run pytest. Every
test runs in the ``sync`` and the ``async`` flavour unless you narrow ``flare_flavour``.
"""

# _rewrite goes first: it asks pytest to rewrite the asserts of the modules imported below.
from flare_testing.contract import _rewrite, base  # noqa: F401
from flare_testing.contract.authz import AuthorizationContract
from flare_testing.contract.base import (
    FLAVOURS,
    AsyncSessionFactory,
    ContractBase,
    OpenSession,
    SessionFactory,
    Users,
)
from flare_testing.contract.capabilities import ALL_CAPABILITIES, REASONS
from flare_testing.contract.harness import Harness
from flare_testing.contract.jobs import (
    JobIdContract,
    JobLifecycleContract,
    JobResultsContract,
    SubmitContract,
)
from flare_testing.contract.listing import ListJobsContract
from flare_testing.contract.monitor import JobLogsContract, MonitorContract
from flare_testing.contract.sessions import (
    ClosedSessionContract,
    RetryContract,
    SessionExpiryContract,
)
from flare_testing.contract.shell import ShellBehaviourContract, ShellValidationContract
from flare_testing.contract.stats import JobStatsContract
from flare_testing.contract.studies import (
    StudyArgumentsContract,
    StudyCommandsContract,
    StudyScopeContract,
)
from flare_testing.contract.system import (
    ClientManagementContract,
    LifecycleOpsContract,
    SessionSettingsContract,
    SystemInfoContract,
    TargetValidationContract,
)
from flare_testing.contract.tokens import SubmitTokenContract

CONTRACTS: tuple[type[ContractBase], ...] = (
    SubmitContract,
    JobLifecycleContract,
    JobResultsContract,
    JobIdContract,
    SubmitTokenContract,
    ListJobsContract,
    MonitorContract,
    JobLogsContract,
    SystemInfoContract,
    TargetValidationContract,
    LifecycleOpsContract,
    ClientManagementContract,
    SessionSettingsContract,
    ShellValidationContract,
    ShellBehaviourContract,
    JobStatsContract,
    StudyArgumentsContract,
    StudyCommandsContract,
    StudyScopeContract,
    ClosedSessionContract,
    SessionExpiryContract,
    RetryContract,
    AuthorizationContract,
)
"""Every contract class, grouped by area in the order above."""

__all__ = [
    "ALL_CAPABILITIES",
    "CONTRACTS",
    "FLAVOURS",
    "REASONS",
    "AsyncSessionFactory",
    "AuthorizationContract",
    "ClientManagementContract",
    "ClosedSessionContract",
    "ContractBase",
    "Harness",
    "JobIdContract",
    "JobLifecycleContract",
    "JobLogsContract",
    "JobResultsContract",
    "JobStatsContract",
    "LifecycleOpsContract",
    "ListJobsContract",
    "MonitorContract",
    "OpenSession",
    "RetryContract",
    "SessionExpiryContract",
    "SessionFactory",
    "SessionSettingsContract",
    "ShellBehaviourContract",
    "ShellValidationContract",
    "StudyArgumentsContract",
    "StudyCommandsContract",
    "StudyScopeContract",
    "SubmitContract",
    "SubmitTokenContract",
    "SystemInfoContract",
    "TargetValidationContract",
    "Users",
]
