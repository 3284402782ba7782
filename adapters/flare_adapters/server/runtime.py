"""The real server's system: ``AdminService`` over SQLite + a blob directory + an engine.

``ServerRuntime`` opens a workspace's state (recovering it after a crash, see
``flare_adapters.sqlite.recovery``), builds the service on a real clock whose timers live on the
event loop, connects the configured simulated sites and closes it all again.
``run_server`` adds the aiohttp application on a listening socket; the CLI's ``serve`` and
``flare_testing.serve`` both use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import time
from collections.abc import AsyncIterator
from importlib import metadata

import msgspec
from aiohttp import web

from flare_adapters.disk_workspaces import DiskWorkspaces
from flare_adapters.engines.simulated import SimulatedEngine
from flare_adapters.memory.ids import RandomIds
from flare_adapters.server.app import build_app
from flare_adapters.server.clock import LoopClock
from flare_adapters.server.config import (
    CONFIG_FILE,
    ConfigError,
    WorkspaceConfig,
    WorkspacePaths,
    load_config,
)
from flare_adapters.server.offload import ProcessOffload
from flare_adapters.server.tls import server_ssl_context
from flare_adapters.server.unparsed import ProblemAppRunner
from flare_adapters.sqlite.blobs import BlobDirectory
from flare_adapters.sqlite.db import Database
from flare_adapters.sqlite.recovery import collect_orphans, recover_jobs
from flare_adapters.sqlite.service_lock import CommittingLock
from flare_adapters.sqlite.stores import (
    SqliteJobStore,
    SqliteSessionStore,
    SqliteSiteStore,
    SqliteStudyStore,
    SqliteTokenStore,
)
from flare_adapters.zipsafe import ZipPacker
from flare_core.errors import InvalidArgumentError
from flare_core.lifecycle import is_terminal
from flare_core.service import AdminService, ServicePorts
from flare_core.service.ports import Engine
from flare_ports.backend import Backend

__all__ = [
    "RunningServer",
    "ServerRuntime",
    "listen",
    "package_version",
    "run_server",
    "urls",
]

logger = logging.getLogger("flare_adapters.server")

STOP_REASON = "the server was stopped while the job was live"
"""The ``finish_reason`` of the jobs a stopping server aborts (``ServerRuntime.stop_jobs``)."""
_STOP_MARGIN = 5.0  # seconds beyond the engine's abort grace a stopping server waits


def package_version() -> str:
    """The installed flare-core version (``0.0.0`` when not installed)."""
    try:
        return metadata.version("flare-core")
    except metadata.PackageNotFoundError:
        return "0.0.0"


class ServerRuntime:
    """A workspace's service, stores, engine and clock, opened and recovered.

    Args:
        root: the workspace directory.
        config: its config.
        loop: the event loop the clock's timers run on.

    Attributes:
        service: the admin service (the ``Backend`` the app serves).
        engine: the engine (the simulated one has a control plane: finish/fail/hold jobs).
        engine_kind: ``"simulated"`` or ``"nvflare"``.
        clock: the real clock.
        blobs: the blob directory.
        jobs: the job store.
        recovered: ids of the jobs recovery marked ``FINISHED:ABNORMAL`` at startup.
        orphans_collected: how many orphan blobs recovery deleted.
    """

    def __init__(self, root: str, config: WorkspaceConfig, loop: asyncio.AbstractEventLoop) -> None:
        self.paths = WorkspacePaths(root)
        self.config = config
        os.makedirs(self.paths.state, exist_ok=True)
        self.clock = LoopClock(loop)
        self.offload = ProcessOffload()  # its worker starts on the first shell command
        try:
            self.db = Database(self.paths.database)
        except BaseException:
            self.clock.close()
            raise
        try:
            self.blobs = BlobDirectory(self.paths.blobs, config.server.zip_limits())
            self.jobs = SqliteJobStore(self.db)
            sessions = SqliteSessionStore(self.db)
            self.blobs.clear_incomplete()
            # Monotonic time restarts at boot: sessions from "the future" predate a reboot.
            sessions.purge_after(self.clock.monotonic())
            self.workspaces = DiskWorkspaces(self.paths.workspaces)
            self.recovered = recover_jobs(self.jobs, self.blobs, self.clock.time(), self.workspaces)
            self.orphans_collected = collect_orphans(
                self.jobs.job_ids(), self.blobs, self.workspaces
            )
            self.engine_kind = config.engine.resolved()
            self.engine: Engine = self._engine(config)
            ports = ServicePorts(
                clock=self.clock,
                ids=RandomIds(),
                jobs=self.jobs,
                tokens=SqliteTokenStore(self.db),
                studies=SqliteStudyStore(self.db),
                sites=SqliteSiteStore(self.db),
                sessions=sessions,
                blobs=self.blobs,
                packer=ZipPacker(),
                engine=self.engine,
                workspaces=self.workspaces,
                lock=CommittingLock(self.db, self.blobs),  # one commit per locked section
                # Shell file work in a worker process, off the event loop's GIL (issue 10).
                offload=self.offload,
                timers=self.clock,
            )
            service_config = config.service_config(package_version())
            if self.engine_kind == "nvflare":
                service_config = msgspec.structs.replace(
                    service_config, max_running_jobs=config.engine.running_jobs_limit()
                )
            self.service = AdminService(service_config, ports)
            self.workspaces.tree("server")
            disabled = ports.sites.disabled()
            for site in config.sites:
                if site.name not in disabled:
                    try:
                        self.service.connect_site(site.name, site.org)
                    except InvalidArgumentError as exc:
                        raise ConfigError(f"{CONFIG_FILE}: sites: {exc}") from None
        except BaseException:
            self._close_engine()
            self.clock.close()
            self.db.close()
            raise
        if self.recovered:
            logger.warning("recovered %d job(s) left live by a crash", len(self.recovered))

    def _engine(self, config: WorkspaceConfig) -> Engine:
        if self.engine_kind == "simulated":
            return SimulatedEngine(self.clock, self.workspaces, duration=config.job_duration)
        from flare_adapters.engines.nvflare import NVFlareEngine, RunSettings

        return NVFlareEngine(
            os.path.join(self.paths.state, "engine"),
            self.workspaces,
            self.clock.time,
            allow_custom_code=config.engine.allow_custom_code,
            settings=RunSettings(abort_grace=config.engine.abort_grace),
        )

    def engine_summary(self) -> str:
        """One line saying which engine runs the jobs (``serve`` prints it at start)."""
        if self.engine_kind == "nvflare":
            limit = self.config.engine.running_jobs_limit()
            return f"engine: nvflare (each job runs on NVIDIA FLARE's simulator, {limit} at a time)"
        return (
            f"engine: simulated (jobs are not computed: each one pretends for"
            f" {self.config.job_duration:g} s; install flare-core[nvflare] for real runs)"
        )

    def _close_engine(self) -> None:
        close = getattr(getattr(self, "engine", None), "close", None)
        if callable(close):
            close()

    async def stop_jobs(self, reason: str = STOP_REASON) -> list[str]:
        """Abort the live jobs of a server that is being stopped, and wait (bounded) for their
        engine to end them, so they end ``FINISHED:ABORTED`` with ``reason`` rather than
        being recovered as a crash at the next start. Returns the ids of those jobs."""
        aborted = self.service.abort_live_jobs(reason)
        if not aborted:
            return []
        logger.warning("stopping: aborting %d live job(s): %s", len(aborted), ", ".join(aborted))
        deadline = time.monotonic() + self.config.engine.abort_grace + _STOP_MARGIN
        while (left := self._live(aborted)) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        if left:
            logger.warning(
                "%d job(s) did not stop in time; the next start ends them ABNORMAL: %s",
                len(left),
                ", ".join(left),
            )
        return aborted

    def _live(self, job_ids: list[str]) -> list[str]:
        live = []
        for job_id in job_ids:
            meta = self.service.job_meta(job_id)
            if meta is not None and not is_terminal(str(meta.get("status", ""))):
                live.append(job_id)
        return live

    def close(self) -> None:
        """Stop the engine's jobs, the offload worker, the timers (waiting for a running one)
        and the database."""
        self._close_engine()
        self.offload.close()
        self.clock.close()
        self.db.close()


class RunningServer:
    """A server listening on a socket.

    Attributes:
        runtime: the service and its parts.
        http_url: the base URL, e.g. ``http://127.0.0.1:8003``.
        ws_url: the WebSocket endpoint, e.g. ``ws://127.0.0.1:8003/v1/ws``.
        port: the bound port.
    """

    def __init__(self, runtime: ServerRuntime, host: str, port: int, tls: bool) -> None:
        self.runtime = runtime
        self.port = port
        self.http_url, self.ws_url = urls(host, port, tls)


def urls(host: str, port: int, tls: bool) -> tuple[str, str]:
    """The HTTP base URL and the WebSocket endpoint of a server bound to ``host:port``."""
    shown = f"[{host}]" if ":" in host else host
    return f"{'https' if tls else 'http'}://{shown}:{port}", (
        f"{'wss' if tls else 'ws'}://{shown}:{port}/v1/ws"
    )


@contextlib.asynccontextmanager
async def listen(
    backend: Backend,
    config: WorkspaceConfig,
    paths: WorkspacePaths,
    *,
    host: str | None,
    port: int | None,
    spool_dir: str,
) -> AsyncIterator[tuple[str, int, bool]]:
    """Serve ``backend`` with the aiohttp app on a socket until the block exits.

    Yields:
        ``(bound host, bound port, tls?)``.

    Raises:
        ConfigError: the TLS files are invalid.
        OSError: the address cannot be bound.
    """
    context: ssl.SSLContext | None = None
    if config.tls is not None:
        context = server_ssl_context(config.tls, paths)
    app = build_app(backend, config.server, spool_dir=spool_dir)
    runner = ProblemAppRunner(app, access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    try:
        bind_host = host or config.host
        site = web.TCPSite(
            runner, bind_host, config.port if port is None else port, ssl_context=context
        )
        await site.start()
        bound = runner.addresses[0]
        yield bind_host, int(bound[1]), context is not None
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def run_server(
    root: str,
    *,
    host: str | None = None,
    port: int | None = None,
    config: WorkspaceConfig | None = None,
) -> AsyncIterator[RunningServer]:
    """Open a workspace and serve it until the block exits.

    Args:
        root: the workspace directory.
        host: the address to listen on (default: the config's).
        port: the port (default: the config's; 0 picks a free one).
        config: the workspace config (read from ``root`` when None).

    Yields:
        The running server (with its bound URLs).

    Raises:
        ConfigError: the workspace config is missing or invalid (e.g. a bad site name).
        OSError: the address cannot be bound.
    """
    config = config or load_config(root)
    runtime = ServerRuntime(root, config, asyncio.get_running_loop())
    try:
        async with listen(
            runtime.service,
            config,
            runtime.paths,
            host=host,
            port=port,
            spool_dir=runtime.blobs.spool_dir(),
        ) as (bound_host, bound_port, tls):
            yield RunningServer(runtime, bound_host, bound_port, tls)
        # The socket is closed and the replies in flight are sent: now the jobs, as a
        # shutdown (an exception from the block skips this: the next start recovers them).
        await runtime.stop_jobs()
    finally:
        runtime.close()
