"""flare-ports: the typed seams of flare-core.

The session interfaces tools program against (``SessionSpec``, ``AsyncSessionSpec``), the
transport ports sessions drive, the ``Backend`` port servers expose, the storage/engine/clock
ports ``AdminService`` consumes (declared in the core, re-exported here), and typed
``connect``/``connect_async``.
"""

from flare_core._service.ports import (
    BlobStore,
    Clock,
    Engine,
    EngineListener,
    IdSource,
    JobLaunch,
    JobStore,
    Lock,
    SessionRecord,
    SessionStore,
    SiteStore,
    StudyStore,
    Timers,
    TokenStore,
    Workspaces,
)
from flare_ports._backend import Backend, Unsubscribe
from flare_ports._connect import connect, connect_async
from flare_ports._session_spec import (
    AsyncJobMonitorCallback,
    AsyncSessionSpec,
    JobMonitorCallback,
    SessionSpec,
)
from flare_ports._transport import AsyncTransport, ChunkSink, Transport

__all__ = [
    "AsyncJobMonitorCallback",
    "AsyncSessionSpec",
    "AsyncTransport",
    "Backend",
    "BlobStore",
    "ChunkSink",
    "Clock",
    "Engine",
    "EngineListener",
    "IdSource",
    "JobLaunch",
    "JobMonitorCallback",
    "JobStore",
    "Lock",
    "SessionRecord",
    "SessionSpec",
    "SessionStore",
    "SiteStore",
    "StudyStore",
    "Timers",
    "TokenStore",
    "Transport",
    "Unsubscribe",
    "Workspaces",
    "connect",
    "connect_async",
]
