"""``serve()``: the real server (HTTP + WebSocket, SQLite, blob directory) for tests.

It runs exactly what ``flare-core serve`` runs, in a background thread with its own event loop,
on an ephemeral 127.0.0.1 port in a temporary workspace::

    with serve() as server:
        server.http_url, server.ws_url, server.admin_user, server.admin_key
        server.finish_job(job_id)          # steer the simulated engine
        server.disconnect_site("site-2")   # and the sites

Time is real: jobs run for ``job_duration`` seconds (default 0.2) unless held or finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

import msgspec

from flare_adapters.engines.nvflare import NVFlareEngine
from flare_adapters.engines.simulated import SimulatedEngine
from flare_adapters.memory.system import DEFAULT_USERS
from flare_adapters.nvflare.pool import SessionOpener
from flare_adapters.server.config import (
    EngineSection,
    NVFlareSection,
    SiteConfig,
    WorkspaceConfig,
    save_config,
)
from flare_adapters.server.gateway import RunningGateway, run_gateway
from flare_adapters.server.runtime import RunningServer, ServerRuntime, run_server
from flare_adapters.server.settings import ServerSettings
from flare_core.errors import InvalidArgumentError
from flare_core.lifecycle import JobStatus
from flare_core.service import AdminService, UserConfig, hash_api_key

__all__ = ["DEFAULT_SERVE_USERS", "ServedGateway", "ServedSystem", "serve", "serve_gateway"]

DEFAULT_SERVE_USERS: tuple[tuple[str, str, str], ...] = DEFAULT_USERS
"""``(name, org, role)`` of the users ``serve()`` creates (FakeFlare's); the first is the admin."""

_TEST_SCRYPT_N = 2**4  # cheap hashing: throw-away keys on a loopback test server


class ServedSystem:
    """A running test server and its control plane.

    Attributes:
        http_url: e.g. ``http://127.0.0.1:PORT``.
        ws_url: e.g. ``ws://127.0.0.1:PORT/v1/ws``.
        admin_user: the project admin's name.
        admin_key: the project admin's API key.
        api_keys: every user's API key, by user name.
        workspace: the workspace directory.
        runtime: the service, engine, stores and clock.
    """

    def __init__(
        self,
        server: RunningServer,
        loop: asyncio.AbstractEventLoop,
        workspace: str,
        api_keys: dict[str, str],
        admin_user: str,
    ) -> None:
        self.http_url = server.http_url
        self.ws_url = server.ws_url
        self.runtime: ServerRuntime = server.runtime
        self.workspace = workspace
        self.api_keys = api_keys
        self.admin_user = admin_user
        self.admin_key = api_keys[admin_user]
        self._loop = loop

    @property
    def service(self) -> AdminService:
        """The admin service behind the server (back door: no authentication)."""
        return self.runtime.service

    @property
    def engine(self) -> SimulatedEngine:
        """The simulated engine running the jobs (the job controls below need it).

        Raises:
            InvalidArgumentError: the server runs another engine (``serve(engine="nvflare")``).
        """
        engine = self.runtime.engine
        if not isinstance(engine, SimulatedEngine):
            kind = self.runtime.engine_kind
            raise InvalidArgumentError(f"job controls need the simulated engine, not {kind}")
        return engine

    # --- control plane ----------------------------------------------------------------------

    @property
    def sites(self) -> tuple[str, ...]:
        """The client sites configured to connect at start."""
        return tuple(site.name for site in self.runtime.config.sites)

    @property
    def now(self) -> float:
        """The server's clock (real time), epoch seconds."""
        return self.runtime.clock.time()

    def connect_site(self, name: str, org: str = "nvidia") -> None:
        """Connect (or reconnect) a client site."""
        self.service.connect_site(name, org)

    def disconnect_site(self, name: str) -> None:
        """Disconnect a client site (no-op when it is not connected); the jobs it takes part
        in fail (the engine's ``site_lost``)."""
        if self.service.disconnect_site(name):
            engine = self.runtime.engine
            if isinstance(engine, (SimulatedEngine, NVFlareEngine)):
                engine.site_lost(name)

    def add_user(self, name: str, org: str, role: str) -> str:
        """Add (or replace) a user with a fresh API key; returns the key (also in
        ``api_keys``). The user lives until the server stops (not written to the config)."""
        key = secrets.token_urlsafe(24)
        self.service.add_user(name, org, role, key)
        self.api_keys[name] = key
        return key

    def add_study(
        self, name: str, site_orgs: Mapping[str, Sequence[str]], admins: Sequence[str]
    ) -> None:
        """Write a study straight into the registry (no role gates)."""
        self.service.add_study(name, site_orgs, admins)

    def put_file(self, site: str, path: str, data: bytes) -> None:
        """Write a file into a site's workspace (``site`` may be ``"server"``)."""
        self.runtime.workspaces.tree(site).write(path, data, self.now)

    def append_job_log(self, job_id: str, site: str, data: bytes) -> None:
        """Append to a job's ``log.txt`` in a site's workspace."""
        self.runtime.workspaces.tree(site).append(f"{job_id}/log.txt", data, self.now)

    def finish_job(self, job_id: str, status: str = JobStatus.FINISHED_COMPLETED.value) -> None:
        """End a running job now with ``status``."""
        self.engine.finish_job(job_id, status)

    def fail_job(
        self,
        job_id: str,
        status: str = JobStatus.FINISHED_EXECUTION_EXCEPTION.value,
        reason: str = "simulated failure",
    ) -> None:
        """End a running job now with a failure status."""
        self.engine.fail_job(job_id, status, reason)

    def hold_job(self, job_id: str) -> None:
        """Keep a job RUNNING until released (may precede its launch)."""
        self.engine.hold_job(job_id)

    def hold_jobs_named(self, name: str) -> None:
        """Keep every job named ``name`` RUNNING from its launch until released."""
        self.engine.hold_jobs_named(name)

    def release_job(self, job_id: str) -> None:
        """Let a held job run to its planned end."""
        self.engine.release_job(job_id)

    def set_duration(self, seconds: float) -> None:
        """How long jobs launched from now on run, seconds."""
        self.engine.set_duration(seconds)

    def job_meta(self, job_id: str) -> dict[str, Any]:
        """Any job's stored meta (no checks; a copy).

        Raises:
            KeyError: no such job.
        """
        meta = self.service.job_meta(job_id)
        if meta is None:
            raise KeyError(job_id)
        return meta


def _workspace_config(
    users: Sequence[tuple[str, str, str]],
    sites: Sequence[str | tuple[str, str]],
    server_org: str,
    job_duration: float,
    idle_timeout: float,
    settings: ServerSettings,
    engine: EngineSection,
) -> tuple[WorkspaceConfig, dict[str, str]]:
    keys: dict[str, str] = {}
    accounts: list[UserConfig] = []
    for name, org, role in users:
        keys[name] = secrets.token_urlsafe(24)
        digest = hash_api_key(keys[name], secrets.token_bytes(16), n=_TEST_SCRYPT_N)
        accounts.append(UserConfig(name=name, org=org, role=role, api_key_hash=digest))
    site_configs = [
        SiteConfig(name=spec, org=server_org)
        if isinstance(spec, str)
        else SiteConfig(name=spec[0], org=spec[1])
        for spec in sites
    ]
    config = WorkspaceConfig(
        server_org=server_org,
        port=0,
        users=accounts,
        sites=site_configs,
        job_duration=job_duration,
        idle_timeout=idle_timeout,
        scrypt_n=_TEST_SCRYPT_N,
        server=settings,
        engine=engine,
    )
    return config, keys


@contextlib.contextmanager
def serve(
    *,
    users: Sequence[tuple[str, str, str]] = DEFAULT_SERVE_USERS,
    sites: Sequence[str | tuple[str, str]] = ("site-1", "site-2"),
    server_org: str = "nvidia",
    job_duration: float = 0.2,
    idle_timeout: float = 1800.0,
    settings: ServerSettings | None = None,
    workspace: str | None = None,
    engine: EngineSection | None = None,
    list_page_size: int = 500,
) -> Iterator[ServedSystem]:
    """Run the real server on an ephemeral loopback port for the duration of the block.

    Args:
        users: ``(name, org, role)`` of the users to create, the first being the admin; each
            gets a random API key (``ServedSystem.api_keys``).
        sites: client sites connected at start (a name, org ``server_org``, or ``(name, org)``).
        server_org: the server's organisation.
        job_duration: seconds a simulated job runs.
        idle_timeout: session idle timeout, seconds.
        settings: server limits (defaults when None).
        workspace: an existing empty directory to use (a temporary one when None, deleted
            afterwards).
        engine: the engine (default: the simulated one, whatever is installed, so the job
            controls work; ``EngineSection(kind="nvflare")`` runs jobs on NVFlare's simulator).
        list_page_size: jobs a full ``list_jobs`` reads at a time (a small one makes every
            listing of a few jobs a streamed one).

    Yields:
        The running system.

    Raises:
        InvalidArgumentError: no users.
    """
    if not users:
        raise InvalidArgumentError("serve() needs at least one user (the admin)")
    config, keys = _workspace_config(
        users,
        sites,
        server_org,
        job_duration,
        idle_timeout,
        settings or ServerSettings(),
        engine or EngineSection(kind="simulated"),
    )
    config = msgspec.structs.replace(config, list_page_size=list_page_size)
    with contextlib.ExitStack() as stack:
        root = workspace or stack.enter_context(tempfile.TemporaryDirectory(prefix="flare-"))
        save_config(root, config)
        with _in_thread(lambda: run_server(root, host="127.0.0.1", port=0, config=config)) as (
            server,
            loop,
        ):
            yield ServedSystem(server, loop, root, keys, users[0][0])


_Served = TypeVar("_Served")


@contextlib.contextmanager
def _in_thread(
    open_server: Callable[[], AbstractAsyncContextManager[_Served]],
) -> Iterator[tuple[_Served, asyncio.AbstractEventLoop]]:
    """Run an async server context in a background thread with its own event loop."""
    started: Future[tuple[_Served, asyncio.AbstractEventLoop]] = Future()
    stop: asyncio.Event | None = None

    async def main() -> None:
        nonlocal stop
        stop = asyncio.Event()
        async with open_server() as server:
            started.set_result((server, asyncio.get_running_loop()))
            await stop.wait()

    def thread_main() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # reported to the caller through the future
            if not started.done():
                started.set_exception(exc)

    thread = threading.Thread(target=thread_main, name="flare-serve", daemon=True)
    thread.start()
    try:
        yield started.result(timeout=60.0)
    finally:
        if started.done() and started.exception() is None and stop is not None:
            _, loop = started.result()
            loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=60.0)


class ServedGateway:
    """A running gateway (``flare-core serve --backend nvflare``) for tests.

    Attributes:
        http_url: e.g. ``http://127.0.0.1:PORT``.
        ws_url: e.g. ``ws://127.0.0.1:PORT/v1/ws``.
        api_keys: every user's API key, by user name.
        backend: the NVFlare backend it serves.
        workspace: the gateway's workspace directory.
    """

    def __init__(self, gateway: RunningGateway, workspace: str, api_keys: dict[str, str]) -> None:
        self.http_url = gateway.http_url
        self.ws_url = gateway.ws_url
        self.backend = gateway.backend
        self.api_keys = api_keys
        self.workspace = workspace


@contextlib.contextmanager
def serve_gateway(
    kits: Mapping[str, str],
    *,
    workspace: str | None = None,
    watch_interval: float = 0.5,
    settings: ServerSettings | None = None,
    opener: SessionOpener | None = None,
) -> Iterator[ServedGateway]:
    """Run the gateway to an NVFlare federation on an ephemeral loopback port.

    Args:
        kits: each user's NVFlare admin startup kit (absolute folders); every user gets a
            random API key (``ServedGateway.api_keys``).
        workspace: an existing empty directory to use (a temporary one when None).
        watch_interval: seconds between the job watcher's rounds.
        settings: server limits (defaults when None).
        opener: replaces NVFlare's session factory (tests without a federation).

    Yields:
        The running gateway.
    """
    keys: dict[str, str] = {}
    accounts: list[UserConfig] = []
    for name in kits:
        keys[name] = secrets.token_urlsafe(24)
        digest = hash_api_key(keys[name], secrets.token_bytes(16), n=_TEST_SCRYPT_N)
        accounts.append(UserConfig(name=name, org="-", role="-", api_key_hash=digest))
    config = WorkspaceConfig(
        server_org="-",
        port=0,
        users=accounts,
        scrypt_n=_TEST_SCRYPT_N,
        server=settings or ServerSettings(),
        nvflare=NVFlareSection(kits=dict(kits), watch_interval=watch_interval),
    )
    with contextlib.ExitStack() as stack:
        root = workspace or stack.enter_context(tempfile.TemporaryDirectory(prefix="flare-gw-"))
        save_config(root, config)
        with _in_thread(
            lambda: run_gateway(root, host="127.0.0.1", port=0, config=config, opener=opener)
        ) as (
            gateway,
            _loop,
        ):
            yield ServedGateway(gateway, root, keys)
