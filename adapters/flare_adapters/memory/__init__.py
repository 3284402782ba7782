"""The in-memory adapters: virtual clock, stores, blobs, workspaces, and the wired system.

``build_memory_service`` / ``build_memory_system`` (``flare_adapters.memory.system``) assemble a
complete FL system - ``AdminService`` over these adapters and the simulated engine - driven by a
``VirtualClock``. The memory transport lives in ``flare_adapters.memory.transport``.
"""

from flare_adapters.memory.blobs import MemoryBlobStore
from flare_adapters.memory.clock import VirtualClock
from flare_adapters.memory.ids import RandomIds, SeededIds
from flare_adapters.memory.stores import (
    MemoryJobStore,
    MemorySessionStore,
    MemorySiteStore,
    MemoryStudyStore,
    MemoryTokenStore,
)
from flare_adapters.memory.system import MemorySystem, build_memory_service, build_memory_system
from flare_adapters.memory.workspaces import MemoryFileTree, MemoryWorkspaces

__all__ = [
    "MemoryBlobStore",
    "MemoryFileTree",
    "MemoryJobStore",
    "MemorySessionStore",
    "MemorySiteStore",
    "MemoryStudyStore",
    "MemorySystem",
    "MemoryTokenStore",
    "MemoryWorkspaces",
    "RandomIds",
    "SeededIds",
    "VirtualClock",
    "build_memory_service",
    "build_memory_system",
]
