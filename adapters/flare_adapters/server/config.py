"""The server workspace: its config file (users, sites, policy, port, limits) and layout.

A workspace is a directory::

    flare-core.json     the config (this module; validated with msgspec, unknown keys refused)
    state/flare.db      the SQLite database (jobs, submit tokens, studies, sites, sessions)
    state/blobs/        the blob directory (job folders, results, workspaces, logs)

Users carry only a salted hash of their API key; the key itself is printed once by
``flare-core init`` and never stored. Keys ``init`` generates (256 random bits) are stored in
the fast keyed form (``hash_generated_key``); ``scrypt$`` hashes of older workspaces and of
keys a person chose (``hash_api_key``) keep verifying.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import secrets
import tempfile
from collections.abc import Iterable, Sequence
from typing import Annotated, Any, Final, Literal

import msgspec

from flare_adapters.server.settings import ServerSettings
from flare_adapters.sqlite.blobs import fsync_dir
from flare_core.errors import InvalidArgumentError
from flare_core.policy import DEFAULT_POLICY, PolicyError, parse_policy
from flare_core.service import (
    DEFAULT_SCRYPT_N,
    ServiceConfig,
    UserConfig,
    hash_generated_key,
)
from flare_core.validation import check_site_name

__all__ = [
    "CONFIG_FILE",
    "DEFAULT_PORT",
    "ConfigError",
    "EngineSection",
    "NVFlareSection",
    "SiteConfig",
    "TlsConfig",
    "WorkspaceConfig",
    "WorkspacePaths",
    "init_gateway",
    "init_workspace",
    "load_config",
    "new_user",
    "save_config",
]

CONFIG_FILE: Final = "flare-core.json"
DEFAULT_PORT: Final = 8003


class ConfigError(ValueError):
    """The workspace config is missing or invalid; the message says where and why."""


class SiteConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A simulated client site that connects when the server starts.

    Attributes:
        name: the site name.
        org: the org of the site's certificate.
    """

    name: str
    org: str


class TlsConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """TLS for the listening socket (paths relative to the workspace).

    Attributes:
        cert_file: the server's certificate chain (PEM).
        key_file: the server's private key (PEM).
        client_ca_file: CA bundle to verify client certificates with (None: no client certs).
        require_client_cert: refuse clients without a valid certificate.
    """

    cert_file: str
    key_file: str
    client_ca_file: str | None = None
    require_client_cert: bool = False


class NVFlareSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The gateway's NVIDIA FLARE federation (``flare-core serve --backend nvflare``).

    Attributes:
        kits: each user's NVFlare admin startup kit folder (relative paths are relative to
            the workspace); every user listed here must also be in ``users`` (API key).
        watch_interval: seconds between the job-status watcher's rounds.
        command_timeout: the most seconds one command may take, NVFlare's part included.
    """

    kits: dict[str, str]
    watch_interval: float = 0.5
    command_timeout: float = 120.0


EngineKind = Literal["auto", "simulated", "nvflare"]


class EngineSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Which engine runs the embedded server's jobs, and how.

    Attributes:
        kind: ``nvflare`` runs each job for real on NVIDIA FLARE's simulator (the
            ``flare-core[nvflare]`` extra); ``simulated`` pretends (``job_duration``);
            ``auto`` picks ``nvflare`` when the extra is installed.
        max_running_jobs: jobs the nvflare engine runs at once (each simulator uses about
            100 MB per site and keeps a core busy); the rest wait SUBMITTED, oldest first.
            None: one per two cores, at least one (``running_jobs_limit``).
        allow_custom_code: let the nvflare engine run jobs whose apps carry ``custom/`` code
            (NVFlare's component allow-list applies either way).
        abort_grace: seconds an aborted job's processes get after SIGTERM before SIGKILL.
    """

    kind: EngineKind = "auto"
    max_running_jobs: int | None = None
    allow_custom_code: bool = False
    abort_grace: float = 10.0

    def __post_init__(self) -> None:
        if self.max_running_jobs is not None and self.max_running_jobs < 1:
            raise ValueError("engine.max_running_jobs must be at least 1")
        if self.abort_grace < 0:
            raise ValueError("engine.abort_grace must be >= 0")

    def running_jobs_limit(self) -> int:
        """``max_running_jobs``, or one job per two cores (at least one) when unset."""
        if self.max_running_jobs is not None:
            return self.max_running_jobs
        return max(1, (os.cpu_count() or 2) // 2)

    def resolved(self) -> Literal["simulated", "nvflare"]:
        """The engine ``kind`` names on this machine.

        Raises:
            ConfigError: ``nvflare`` is asked for and the extra is not installed.
        """
        available = importlib.util.find_spec("nvflare") is not None
        if self.kind == "auto":
            return "nvflare" if available else "simulated"
        if self.kind == "nvflare" and not available:
            raise ConfigError(
                "the nvflare engine needs NVIDIA FLARE: pip install 'flare-core[nvflare]'"
            )
        return self.kind


class WorkspaceConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The content of ``flare-core.json``.

    Attributes:
        format_version: the config format (1).
        server_org: the server's organisation (``o:site`` in policy conditions).
        host: the address to listen on.
        port: the port to listen on (0: any free port).
        idle_timeout: seconds after which an idle session expires.
        users: the admin users (API keys stored as scrypt hashes).
        sites: the simulated client sites connected at startup.
        policy: the authorization policy as the reference's ``authorization.json`` document
            (``{"format_version": "1.0", "permissions": {role: rules}}``); None means the
            default policy (DECISIONS §19).
        job_duration: how long a simulated job runs, seconds.
        engine: which engine runs the jobs (``auto``: nvflare when installed).
        scrypt_n: the scrypt cost for API keys added later.
        tls: TLS settings; None serves plain HTTP (loopback use).
        server: limits and timings of the HTTP/WebSocket server.
        nvflare: the NVIDIA FLARE federation the gateway fronts (None: none configured).
        list_page_size: how many jobs a full ``list_jobs`` reads from the database at a time
            (the server streams a longer listing, a page at a time).
    """

    format_version: int = 1
    server_org: str
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    idle_timeout: float = 1800.0
    users: list[UserConfig] = msgspec.field(default_factory=list)
    sites: list[SiteConfig] = msgspec.field(default_factory=list)
    policy: dict[str, Any] | None = None
    job_duration: float = 5.0
    engine: EngineSection = msgspec.field(default_factory=EngineSection)
    scrypt_n: int = DEFAULT_SCRYPT_N
    tls: TlsConfig | None = None
    server: ServerSettings = msgspec.field(default_factory=ServerSettings)
    nvflare: NVFlareSection | None = None
    list_page_size: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 500

    def service_config(self, version: str) -> ServiceConfig:
        """The ``AdminService`` configuration this workspace describes.

        Raises:
            ConfigError: the policy is invalid.
        """
        try:
            policy = DEFAULT_POLICY if self.policy is None else parse_policy(self.policy)
        except PolicyError as exc:
            raise ConfigError(f"{CONFIG_FILE}: policy: {exc}") from None
        return ServiceConfig(
            server_org=self.server_org,
            users=list(self.users),
            idle_timeout=self.idle_timeout,
            policy=policy,
            version=version,
            scrypt_n=self.scrypt_n,
            list_page_size=self.list_page_size,
        )


class WorkspacePaths:
    """Where a workspace keeps its files.

    Args:
        root: the workspace directory.
    """

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self.config = os.path.join(self.root, CONFIG_FILE)
        self.state = os.path.join(self.root, "state")
        self.database = os.path.join(self.state, "flare.db")
        self.blobs = os.path.join(self.state, "blobs")
        self.workspaces = os.path.join(self.state, "workspaces")

    def resolve(self, path: str) -> str:
        """A config path made absolute (relative paths are relative to the workspace)."""
        return path if os.path.isabs(path) else os.path.join(self.root, path)


def new_user(
    name: str, org: str, role: str, *, scrypt_n: int = DEFAULT_SCRYPT_N
) -> tuple[UserConfig, str]:
    """Create a user with a fresh random API key.

    The key is 256 random bits, so its hash is the fast keyed form (``hash_generated_key``):
    a login costs microseconds, not a scrypt. ``scrypt_n`` is kept for callers' signatures and
    for the scrypt hashes of keys a person supplies (``AdminService.add_user``).

    Returns:
        ``(user with the key's hash, the API key)``: show the key once; it is not stored.
    """
    api_key = secrets.token_urlsafe(32)
    user = UserConfig(
        name=name,
        org=org,
        role=role,
        api_key_hash=hash_generated_key(api_key, secrets.token_bytes(16)),
    )
    return user, api_key


def load_config(root: str) -> WorkspaceConfig:
    """Read and validate a workspace's config.

    Raises:
        ConfigError: the file is missing, unreadable or invalid (the message names the field).
    """
    path = WorkspacePaths(root).config
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise ConfigError(
            f"no {CONFIG_FILE} in {root}: run 'flare-core init {root}' first"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    try:
        config = msgspec.json.decode(data, type=WorkspaceConfig)
    except RecursionError:
        raise ConfigError(f"{CONFIG_FILE}: nested too deep") from None
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ConfigError(f"{CONFIG_FILE}: {exc}") from None
    if config.format_version != 1:
        raise ConfigError(f"{CONFIG_FILE}: unsupported format_version {config.format_version}")
    names = [user.name for user in config.users]
    if len(set(names)) != len(names):
        raise ConfigError(f"{CONFIG_FILE}: duplicate user names")
    config.service_config("check")  # validates the policy
    _check_sites(site.name for site in config.sites)
    if config.nvflare is not None:
        unknown = sorted(set(config.nvflare.kits) - set(names))
        if unknown:
            raise ConfigError(f"{CONFIG_FILE}: nvflare.kits: users without an API key: {unknown}")
    return config


def _check_sites(names: Iterable[str]) -> None:
    # The service's own rule, so that init refuses exactly what serve would.
    for name in names:
        try:
            check_site_name(name)
        except InvalidArgumentError as exc:
            raise ConfigError(f"{CONFIG_FILE}: sites: {exc}") from None


def save_config(root: str, config: WorkspaceConfig) -> None:
    """Write a workspace's config atomically (owner-readable only: it holds key hashes)."""
    paths = WorkspacePaths(root)
    os.makedirs(paths.root, exist_ok=True)
    data = msgspec.json.format(msgspec.json.encode(config), indent=2) + b"\n"
    fd, temp = tempfile.mkstemp(dir=paths.root, prefix=".flare-core.", suffix=".json")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o600)
        os.replace(temp, paths.config)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    fsync_dir(paths.root)


def init_workspace(
    root: str,
    *,
    admin_user: str = "admin@nvidia.com",
    org: str = "nvidia",
    sites: Sequence[str] = ("site-1", "site-2"),
    port: int = DEFAULT_PORT,
    scrypt_n: int = DEFAULT_SCRYPT_N,
    job_duration: float = 5.0,
    engine: EngineKind = "simulated",
) -> tuple[WorkspaceConfig, str]:
    """Create a workspace: a config with one project admin and a few simulated sites.

    Args:
        root: the workspace directory (created; it must not hold a config yet).
        admin_user: the admin's user name.
        org: the server's and the admin's organisation (also the sites' org).
        sites: the simulated client sites.
        port: the port ``serve`` listens on.
        scrypt_n: the scrypt cost of keys added later (the generated admin key is stored in
            the fast keyed form).
        job_duration: how long simulated jobs run, seconds.
        engine: the engine ``serve`` runs jobs with (the CLI's ``init`` passes ``auto``).

    Returns:
        ``(config, admin API key)``: print the key once; only its hash is stored.

    Raises:
        FileExistsError: the directory already holds a workspace config.
        ConfigError: a site name the server would refuse.
    """
    paths = WorkspacePaths(root)
    if os.path.exists(paths.config):
        raise FileExistsError(f"{paths.config} already exists")
    _check_sites(sites)
    admin, api_key = new_user(admin_user, org, "project_admin", scrypt_n=scrypt_n)
    config = WorkspaceConfig(
        server_org=org,
        port=port,
        users=[admin],
        sites=[SiteConfig(name=name, org=org) for name in sites],
        scrypt_n=scrypt_n,
        job_duration=job_duration,
        engine=EngineSection(kind=engine),
    )
    save_config(root, config)
    os.makedirs(paths.state, exist_ok=True)
    return config, api_key


def init_gateway(
    root: str,
    kits: Sequence[tuple[str, str]],
    *,
    port: int = DEFAULT_PORT,
    scrypt_n: int = DEFAULT_SCRYPT_N,
) -> tuple[WorkspaceConfig, dict[str, str]]:
    """Create a gateway workspace: one user with an API key per NVFlare admin kit.

    Each user's org and role are read from the kit's certificate (NVFlare still decides what
    the user may do); the server's org is the first kit's.

    Args:
        root: the workspace directory (it must not hold a config yet).
        kits: ``(user name, absolute kit folder)`` pairs.
        port: the port ``serve --backend nvflare`` listens on.
        scrypt_n: the scrypt cost of keys added later (the generated keys are stored in the
            fast keyed form).

    Returns:
        ``(config, {user: API key})``: print the keys once; only their hashes are stored.

    Raises:
        FileExistsError: the directory already holds a workspace config.
        ConfigError: no kits, a duplicate user, or a folder that is not an admin kit.
    """
    from flare_adapters.nvflare.kits import KitUser, kit_identity

    paths = WorkspacePaths(root)
    if os.path.exists(paths.config):
        raise FileExistsError(f"{paths.config} already exists")
    if not kits:
        raise ConfigError("a gateway needs at least one --kit USER=KIT")
    if len({user for user, _ in kits}) != len(kits):
        raise ConfigError("each user may have one kit only")
    users: list[UserConfig] = []
    keys: dict[str, str] = {}
    for name, kit in kits:
        try:
            KitUser(name=name, kit=kit).check()
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        identity = kit_identity(kit)
        user, keys[name] = new_user(
            name, identity.org or "unknown", identity.role or "unknown", scrypt_n=scrypt_n
        )
        users.append(user)
    config = WorkspaceConfig(
        server_org=users[0].org,
        port=port,
        users=users,
        scrypt_n=scrypt_n,
        nvflare=NVFlareSection(kits=dict(kits)),
    )
    save_config(root, config)
    os.makedirs(paths.state, exist_ok=True)
    return config, keys
