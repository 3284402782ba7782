"""A whole FL system in memory: AdminService + memory stores + simulated engine + virtual clock.

``build_memory_service`` is what FakeFlare and the tests start from. Each default user's API
key is its own name (for tests only), hashed with a deliberately cheap scrypt cost.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from flare_adapters.engines.simulated import SimulatedEngine
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
from flare_adapters.memory.workspaces import MemoryWorkspaces
from flare_adapters.zipsafe import ZipPacker
from flare_core.policy import DEFAULT_POLICY, Policy
from flare_core.service import AdminService, ServiceConfig, ServicePorts, UserConfig, hash_api_key
from flare_ports import IdSource

__all__ = [
    "DEFAULT_SITES",
    "DEFAULT_USERS",
    "TEST_SCRYPT_N",
    "MemorySystem",
    "build_memory_service",
    "build_memory_system",
]

DEFAULT_USERS: tuple[tuple[str, str, str], ...] = (
    ("admin@nvidia.com", "nvidia", "project_admin"),
    ("lead@nvidia.com", "nvidia", "lead"),
    ("member@nvidia.com", "nvidia", "member"),
    ("orgadmin@nvidia.com", "nvidia", "org_admin"),
    ("lead@other.org", "other", "lead"),
    ("orgadmin@other.org", "other", "org_admin"),
)
"""``(name, org, role)`` of the default users; each one's API key is its name."""

DEFAULT_SITES: tuple[str, ...] = ("site-1", "site-2")
"""The client sites connected at start (org ``nvidia``)."""

TEST_SCRYPT_N = 2**4
"""The scrypt cost of the memory system's keys: fast, and fine for throw-away test secrets."""

SiteSpec = str | tuple[str, str]
"""A site name (org ``server_org``), or ``(name, org)``."""


class MemorySystem:
    """Everything ``build_memory_system`` wired together, for hosts that need the parts.

    Attributes:
        service: the admin service.
        engine: the simulated engine (job control).
        clock: the virtual clock (advance time).
        workspaces: the sites' workspaces (inspect or plant files).
        blobs: the blob store.
        ports: every port the service was built with (back doors for tests).
    """

    def __init__(
        self,
        service: AdminService,
        engine: SimulatedEngine,
        clock: VirtualClock,
        workspaces: MemoryWorkspaces,
        blobs: MemoryBlobStore,
        ports: ServicePorts,
    ) -> None:
        self.service = service
        self.engine = engine
        self.clock = clock
        self.workspaces = workspaces
        self.blobs = blobs
        self.ports = ports


def build_memory_system(
    clock: VirtualClock | None = None,
    *,
    users: Sequence[tuple[str, str, str]] | None = None,
    sites: Sequence[SiteSpec] = DEFAULT_SITES,
    duration: float = 10.0,
    start_delay: float = 0.0,
    dispatch_delay: float = 1.0,
    server_org: str = "nvidia",
    policy: Policy = DEFAULT_POLICY,
    idle_timeout: float = 1800.0,
    version: str = "0.1.0",
    seed: int | None = None,
    max_running_jobs: int | None = None,
    ids: IdSource | None = None,
    list_page_size: int = 500,
) -> MemorySystem:
    """Build and start an in-memory FL system.

    Args:
        clock: the clock to drive everything (a new ``VirtualClock`` when None).
        users: ``(name, org, role)`` triples (``DEFAULT_USERS`` when None); API key = name.
        sites: client sites connected at start.
        duration: how long simulated jobs run, in virtual seconds.
        start_delay: virtual seconds between dispatch and start (0: at once).
        dispatch_delay: virtual seconds from a scheduling trigger (e.g. a submit) to the
            scheduling pass - the scheduler's tick; 0 dispatches inside the triggering call.
        server_org: the server's organisation.
        policy: the authorization policy.
        idle_timeout: session idle timeout, seconds.
        version: the version the server (and sites) report.
        seed: when given, job ids and secrets come from a seeded sequence (reproducible).
        max_running_jobs: how many jobs may be dispatched or running at once (None: any).
        ids: the job-id and secret source itself (wins over ``seed``), e.g. ids that sort in
            creation order, so that two systems list id-named things alike.
        list_page_size: jobs a full listing reads at a time (``ServiceConfig``).

    Returns:
        The wired system.
    """
    clock = clock or VirtualClock()
    if ids is None:
        ids = RandomIds() if seed is None else SeededIds(seed)
    accounts = [
        UserConfig(
            name=name,
            org=org,
            role=role,
            api_key_hash=hash_api_key(name, f"salt:{name}".encode(), n=TEST_SCRYPT_N),
        )
        for name, org, role in (DEFAULT_USERS if users is None else users)
    ]
    config = ServiceConfig(
        server_org=server_org,
        users=accounts,
        idle_timeout=idle_timeout,
        policy=policy,
        version=version,
        scrypt_n=TEST_SCRYPT_N,
        dispatch_delay=dispatch_delay,
        max_running_jobs=max_running_jobs,
        list_page_size=list_page_size,
    )
    workspaces = MemoryWorkspaces()
    blobs = MemoryBlobStore()
    engine = SimulatedEngine(clock, workspaces, duration=duration, start_delay=start_delay)
    ports = ServicePorts(
        clock=clock,
        ids=ids,
        jobs=MemoryJobStore(),
        tokens=MemoryTokenStore(),
        studies=MemoryStudyStore(),
        sites=MemorySiteStore(),
        sessions=MemorySessionStore(),
        blobs=blobs,
        packer=ZipPacker(),
        engine=engine,
        workspaces=workspaces,
        lock=threading.RLock(),
        timers=clock,
    )
    service = AdminService(config, ports)
    workspaces.tree("server")
    for spec in sites:
        name, org = (spec, server_org) if isinstance(spec, str) else spec
        service.connect_site(name, org)
    return MemorySystem(service, engine, clock, workspaces, blobs, ports)


def build_memory_service(
    clock: VirtualClock | None = None,
    *,
    users: Sequence[tuple[str, str, str]] | None = None,
    sites: Sequence[SiteSpec] = DEFAULT_SITES,
    duration: float = 10.0,
    dispatch_delay: float = 1.0,
    seed: int | None = None,
) -> tuple[AdminService, SimulatedEngine, VirtualClock]:
    """Build an in-memory FL system; the short form of ``build_memory_system``.

    Returns:
        ``(service, engine, clock)``.
    """
    system = build_memory_system(
        clock,
        users=users,
        sites=sites,
        duration=duration,
        dispatch_delay=dispatch_delay,
        seed=seed,
    )
    return system.service, system.engine, system.clock
