"""flare-core: the pure domain core of an FL admin session system.

Errors, value objects, commands and replies, the domain rules, the client flows and the
server-side ``AdminService``. No sockets, event loops, threads, clocks or files: those come in
through ports (``flare_ports``) implemented by adapters (``flare_adapters``).
"""

from flare_core import commands
from flare_core.commands import *  # noqa: F403
from flare_core.errors import (
    AuthenticationError,
    AuthorizationError,
    ClientsStillRunning,
    CommandError,
    InternalError,
    InvalidArgumentError,
    InvalidJobDefinition,
    InvalidTarget,
    JobNotDone,
    JobNotFound,
    JobNotRunning,
    JobTimeout,
    NoClientsAvailable,
    NoConnection,
    NoReply,
    SessionClosed,
    SessionExpired,
    SubmitTokenConflict,
    SubmitTokenJobDeleted,
)
from flare_core.events import JobEvent
from flare_core.flows import RetryPolicy
from flare_core.flows.watch import JobChange
from flare_core.gauges import Gauges
from flare_core.info import (
    ClientInfo,
    JobInfo,
    MonitorReturnCode,
    ServerInfo,
    SystemInfo,
    TargetType,
)
from flare_core.lifecycle import JobStatus
from flare_core.principal import Grant, Principal
from flare_core.replies import PROBLEM_CODES, Ok, Problem, Reply, Rows
from flare_core.service import AdminService, ServiceConfig, ServicePorts, UserConfig
from flare_core.transports import (
    register_transport,
    registered_schemes,
    unregister_transport,
)

__all__ = [
    "PROBLEM_CODES",
    "AdminService",
    "AuthenticationError",
    "AuthorizationError",
    "ClientInfo",
    "ClientsStillRunning",
    "CommandError",
    "Gauges",
    "Grant",
    "InternalError",
    "InvalidArgumentError",
    "InvalidJobDefinition",
    "InvalidTarget",
    "JobChange",
    "JobEvent",
    "JobInfo",
    "JobNotDone",
    "JobNotFound",
    "JobNotRunning",
    "JobStatus",
    "JobTimeout",
    "MonitorReturnCode",
    "NoClientsAvailable",
    "NoConnection",
    "NoReply",
    "Ok",
    "Principal",
    "Problem",
    "Reply",
    "RetryPolicy",
    "Rows",
    "ServerInfo",
    "ServiceConfig",
    "ServicePorts",
    "SessionClosed",
    "SessionExpired",
    "SubmitTokenConflict",
    "SubmitTokenJobDeleted",
    "SystemInfo",
    "TargetType",
    "UserConfig",
    "register_transport",
    "registered_schemes",
    "unregister_transport",
]
# The commands are listed once, in ``commands.__all__``.
__all__ += commands.__all__
