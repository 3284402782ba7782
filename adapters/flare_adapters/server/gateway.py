"""The gateway: flare-core's HTTP/WebSocket server in front of a real NVIDIA FLARE federation.

``flare-core serve DIR --backend nvflare`` serves an ``NVFlareBackend`` with the same aiohttp
app as the embedded server: flare-core's API keys, sessions, limits and pushed job events on
the outside, and on the inside each user's own NVFlare admin kit, so NVFlare still
authenticates and authorizes every user. The workspace config's ``nvflare`` section names the
kits; ``users`` holds the API-key hashes. The gateway stores nothing but scratch files.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

from flare_adapters.nvflare.backend import NVFlareBackend, NVFlareConfig
from flare_adapters.nvflare.kits import KitUser
from flare_adapters.nvflare.pool import SessionOpener
from flare_adapters.server.config import (
    CONFIG_FILE,
    ConfigError,
    WorkspaceConfig,
    WorkspacePaths,
    load_config,
)
from flare_adapters.server.runtime import listen, urls
from flare_core.errors import InvalidArgumentError

__all__ = ["RunningGateway", "gateway_backend", "run_gateway"]


class RunningGateway:
    """A gateway listening on a socket.

    Attributes:
        backend: the NVFlare backend it serves.
        http_url: the base URL.
        ws_url: the WebSocket endpoint.
        port: the bound port.
    """

    def __init__(self, backend: NVFlareBackend, host: str, port: int, tls: bool) -> None:
        self.backend = backend
        self.port = port
        self.http_url, self.ws_url = urls(host, port, tls)


def gateway_backend(
    root: str, config: WorkspaceConfig, *, opener: SessionOpener | None = None
) -> NVFlareBackend:
    """The ``NVFlareBackend`` a workspace config describes (``opener``: tests only).

    Raises:
        ConfigError: no ``nvflare`` section, or a kit that is not an admin startup kit.
    """
    section = config.nvflare
    if section is None:
        raise ConfigError(
            f"{CONFIG_FILE} has no 'nvflare' section: run "
            f"'flare-core init {root} --backend nvflare --kit USER=KIT' first"
        )
    paths = WorkspacePaths(root)
    hashes = {user.name: user.api_key_hash for user in config.users}
    try:
        users = []
        for name, kit in section.kits.items():
            account = KitUser(
                name=name, kit=os.path.normpath(paths.resolve(kit)), api_key_hash=hashes[name]
            )
            account.check()
            users.append(account)
        settings = NVFlareConfig(
            users=users,
            watch_interval=section.watch_interval,
            command_timeout=section.command_timeout,
            idle_timeout=config.idle_timeout,
            max_upload_bytes=config.server.max_upload_bytes,
            scratch_dir=paths.state,
        )
    except InvalidArgumentError as exc:
        raise ConfigError(f"{CONFIG_FILE}: nvflare: {exc}") from None
    return NVFlareBackend(settings, opener=opener)


@contextlib.asynccontextmanager
async def run_gateway(
    root: str,
    *,
    host: str | None = None,
    port: int | None = None,
    config: WorkspaceConfig | None = None,
    opener: SessionOpener | None = None,
) -> AsyncIterator[RunningGateway]:
    """Serve a workspace's NVFlare federation until the block exits.

    ``opener`` replaces NVFlare's session factory (tests without a federation).

    Raises:
        ConfigError: the config is missing, invalid or has no ``nvflare`` section.
        OSError: the address cannot be bound.
    """
    config = config or load_config(root)
    paths = WorkspacePaths(root)
    os.makedirs(paths.state, exist_ok=True)
    backend = gateway_backend(root, config, opener=opener)
    try:
        async with listen(backend, config, paths, host=host, port=port, spool_dir=paths.state) as (
            bound_host,
            bound_port,
            tls,
        ):
            yield RunningGateway(backend, bound_host, bound_port, tls)
    finally:
        backend.close()
