"""The service's shared state and the checks every handler uses.

``ServiceCore`` holds the config, the ports and the little runtime state that is not persisted
(connected sites, prepared downloads, subscribers). Handlers (one module per area) are plain
functions of ``(core, principal, command)``.

Locking: ``guard()`` wraps every state mutation in the ``Lock`` port (re-entrant, so engine
callbacks arriving on the same thread nest safely). Job events raised while the lock is held
are queued and delivered to subscribers only after the outermost ``guard`` has released it, so
a listener can never deadlock the service or observe half-applied state.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from types import TracebackType
from typing import Any, Literal

import msgspec

from flare_core.deploy_plan import DeployPlan, decode_plan, encode_plan
from flare_core.errors import (
    InvalidJobDefinition,
    InvalidTarget,
    JobNotFound,
    NoClientsAvailable,
    NoConnection,
)
from flare_core.events import JobEvent
from flare_core.info import TargetType
from flare_core.jobdef import plan_from_meta
from flare_core.listing import normalize_study
from flare_core.policy import Submitter, require_right
from flare_core.principal import Principal
from flare_core.service._config import ServiceConfig, UserConfig
from flare_core.service._credentials import hash_api_key, hash_generated_key
from flare_core.service.ports import ServicePorts
from flare_core.site_names import SERVER_SITE
from flare_core.studies import StudyRegistry, narrow_client_targets

__all__ = [
    "OutsideLock",
    "PendingDownload",
    "ServiceCore",
    "SiteInfo",
    "job_blob_prefix",
]

JOB_ARCHIVE = "job.zip"

# The unknown-user dummy in the fast form (see ServiceCore.dummy_hash); no key matches it.
_FAST_DUMMY_HASH = hash_generated_key("flare-core-unknown-user" * 2, b"flare-core-dummy-salt")

DEPLOY_PLAN = "deploy_plan.json"
"""The blob (under ``job_blob_prefix``) holding a job's validated ``DeployPlan``. It lives
beside the archive, not in the meta, so the meta users read stays what NVFlare stores."""

_PLAN_CACHE_LIMIT = 4096


class OutsideLock:
    """A handler's reply still to be computed, after the service lock is released.

    A handler returns one when the rest of its work only reads thread-safe ports but may take
    long (a shell command reading a site's files, a long listing): run under the lock, it
    would stall every other user (issue 10). ``AdminService.handle`` calls ``work()`` once the
    lock is free; ``serial`` work (CPU-heavy) goes through the ``offload`` port, which the
    server runs in a process of its own, so ``work`` must then be picklable (a module
    function and picklable arguments: ``functools.partial``, never a lambda).
    """

    __slots__ = ("serial", "work")

    def __init__(self, work: Callable[[], Any], *, serial: bool = True) -> None:
        self.work = work
        self.serial = serial


def job_blob_prefix(job_id: str) -> str:
    """The blob-key prefix under which everything of a job is stored."""
    return f"jobs/{job_id}/"


class SiteInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A client site as the service knows it (control plane, ``AdminService.sites()``).

    Attributes:
        name: the site name.
        org: the org of the site's certificate.
        connected: whether the site is connected now.
        disabled: whether an admin disabled it (it cannot reconnect until enabled).
        last_connect_time: epoch of its last (re)connection, None if it never connected.
        version: the software version it reports.
    """

    name: str
    org: str
    connected: bool
    disabled: bool
    last_connect_time: float | None
    version: str


class _Site(msgspec.Struct, kw_only=True):
    name: str
    org: str
    connected: bool
    last_connect_time: float | None
    version: str


class PendingDownload(msgspec.Struct, frozen=True, kw_only=True):
    """A download prepared by a command and not yet streamed by ``open_download``.

    Attributes:
        owner: the session that prepared it (only that session may open it).
        job_id: the job.
        kind: ``"result"`` (``job/``, ``meta.json``, ``workspace/``) or ``"components"``.
        meta_json: the job meta at preparation time (``meta.json`` of a result download).
    """

    owner: str
    job_id: str
    kind: Literal["result", "components"]
    meta_json: bytes = b""


def _later(previous: float | None, now: float) -> float:
    # A restart must be observable as a changed time even when the clock has not moved.
    if previous is None or now > previous:
        return now
    return previous + 0.001


def _site_info(site: _Site, disabled: frozenset[str]) -> SiteInfo:
    return SiteInfo(
        name=site.name,
        org=site.org,
        connected=site.connected,
        disabled=site.name in disabled,
        last_connect_time=site.last_connect_time,
        version=site.version,
    )


class _Guard:
    """``ServiceCore.guard``: every command, every authentication and every engine callback
    takes it, so it is a plain context manager (a ``contextmanager`` generator costs ~2 us a
    use here, several times a request). ``ServiceCore._end_section`` ends it."""

    __slots__ = ("_core",)

    def __init__(self, core: ServiceCore) -> None:
        self._core = core

    def __enter__(self) -> None:
        core = self._core
        core.ports.lock.__enter__()
        core._depth += 1

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        lock = self._core.ports.lock
        self._core._end_section(kind is None, lambda: lock.__exit__(kind, error, trace))


class _TryGuard:
    """``ServiceCore.try_guard`` (a plain context manager for the reason ``_Guard`` is)."""

    __slots__ = ("_core", "_held")

    def __init__(self, core: ServiceCore) -> None:
        self._core = core
        self._held = False

    def __enter__(self) -> bool:
        core = self._core
        self._held = core.ports.lock.acquire(False)
        if self._held:
            core._depth += 1
        return self._held

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._held:
            self._held = False
            self._core._end_section(kind is None, self._core.ports.lock.release)


class ServiceCore:
    """State and shared checks of one ``AdminService``.

    Args:
        config: the service configuration.
        ports: the ports.
    """

    def __init__(self, config: ServiceConfig, ports: ServicePorts) -> None:
        self.config = config
        self.ports = ports
        self.users: dict[str, UserConfig] = {u.name: u for u in config.users}
        self.running = True
        self.start_time = ports.clock.time()
        self.downloads: OrderedDict[str, PendingDownload] = OrderedDict()
        self.pending_deletes: set[str] = set()  # live jobs to delete once they end
        self.stop_reasons: dict[str, str] = {}  # live jobs a stopping server aborted: why
        # Sessions seen since their stored ``last_seen`` (monotonic seconds): see _sessions.
        self.seen: dict[str, float] = {}
        self._sites: dict[str, _Site] = {}
        self._listeners: dict[int, Callable[[JobEvent], None]] = {}
        self._next_listener = 0
        self._outbox: list[JobEvent] = []
        self._depth = 0
        self._guard = _Guard(self)  # holds no state of its own: nested sections share it
        self._registry: StudyRegistry | None = None
        self._registry_loaded = False
        self._registry_saved = False  # by the outermost section running now
        self.scheduling = False
        self.reschedule = False
        self.schedule_pending = False
        self._dummy_hash: str | None = None
        # Plans never change once stored, and the scheduler asks for them on every pass.
        self._plans: dict[str, DeployPlan] = {}

    # --- locking and events ------------------------------------------------------------------

    def guard(self) -> _Guard:
        """Hold the service lock; deliver the events raised inside once it is released."""
        return self._guard

    def try_guard(self) -> _TryGuard:
        """Hold the service lock for a section that only reads, if nobody else has it now:
        gives True inside it, or False at once, holding nothing (``Lock.acquire``)."""
        return _TryGuard(self)

    def _end_section(self, ok: bool, release: Callable[[], object]) -> None:
        """End a locked section (``guard``, ``try_guard``): ``release`` the lock, then, when
        the section ended without an exception (``ok``), deliver its events. A section that
        saved the study registry and then failed, or whose release (the commit) failed,
        forgets the registry: the save may not have lasted."""
        try:
            pending = self._leave()
        finally:
            outermost = not self._depth
            try:
                release()
            except BaseException:
                self._settle_registry(outermost, lasted=False)
                raise
        self._settle_registry(outermost, lasted=ok)
        if ok:
            self._deliver(pending)

    def _settle_registry(self, outermost: bool, *, lasted: bool) -> None:
        if not lasted and self._registry_saved:
            self.forget_registry()
        if outermost:
            self._registry_saved = False

    def _leave(self) -> tuple[list[JobEvent], list[Callable[[JobEvent], None]]]:
        # Under the lock: the events (and their listeners) to deliver once the outermost
        # section has released it.
        self._depth -= 1
        if self._depth or not self._outbox:
            return [], []
        events, self._outbox = self._outbox, []
        return events, list(self._listeners.values())

    @staticmethod
    def _deliver(pending: tuple[list[JobEvent], list[Callable[[JobEvent], None]]]) -> None:
        events, listeners = pending
        for event in events:
            for listener in listeners:
                # A failing subscriber must not break the service or starve the others.
                with suppress(Exception):
                    listener(event)

    def publish(self, meta: Mapping[str, Any], status: str | None = None) -> None:
        """Queue a ``JobEvent`` for the job (delivered when the lock is released)."""
        self._outbox.append(
            JobEvent(
                job_id=str(meta.get("job_id", "")),
                study=normalize_study(meta.get("study")),
                status=status if status is not None else str(meta.get("status", "")),
            )
        )

    def subscribe(self, listener: Callable[[JobEvent], None]) -> Callable[[], None]:
        """Add a listener; returns the function that removes it (idempotent)."""
        with self.guard():
            key = self._next_listener
            self._next_listener += 1
            self._listeners[key] = listener

        def unsubscribe() -> None:
            with self.guard():
                self._listeners.pop(key, None)

        return unsubscribe

    # --- small helpers -------------------------------------------------------------------------

    def now(self) -> float:
        """The wall-clock time, epoch seconds."""
        return self.ports.clock.time()

    def require_running(self) -> None:
        """Raise ``NoConnection`` once the server was shut down."""
        if not self.running:
            raise NoConnection("cannot connect to server: the server is shut down")

    def dummy_hash(self) -> str:
        """A hash to verify against when the user is unknown, so a wrong user name costs as
        much time as a wrong key.

        While any user's key is stored as scrypt, the dummy is scrypt at the configured cost
        (an unknown name must not answer faster than that user's wrong key). When every key is
        the fast server-generated form, the dummy is that form too: a scrypt dummy would make
        unknown names tens of milliseconds slower than known ones, a user-name oracle.
        """
        # A C-level copy of the values (atomic under the GIL): this runs outside the lock.
        if any(user.api_key_hash.startswith("scrypt$") for user in tuple(self.users.values())):
            if self._dummy_hash is None:
                self._dummy_hash = hash_api_key(
                    "flare-core-unknown-user", b"flare-core-dummy-salt", n=self.config.scrypt_n
                )
            return self._dummy_hash
        return _FAST_DUMMY_HASH

    def registry(self) -> StudyRegistry | None:
        """The study registry (None: there is none); call under the service lock.

        Loaded once and kept: every request of a study's user checks its membership, and
        decoding the registry grows with it (~20 us for 10 studies of 20 users, ~0.4 ms for
        100 of 50). The service is its only writer (``save_registry``). A section that saved
        it and then raised, or whose commit failed, forgets it (``_end_section``), so what
        is kept was never read from a save that did not last; a failed request that saved
        nothing keeps it. Callers never change it: the study rules edit copies
        (``study_commands._Draft``).
        """
        if not self._registry_loaded:
            self._registry = self.ports.studies.load()
            self._registry_loaded = True
        return self._registry

    def save_registry(self, registry: StudyRegistry) -> None:
        """Store a new registry (under the service lock)."""
        self.forget_registry()
        self._registry_saved = True
        self.ports.studies.save(registry)

    def forget_registry(self) -> None:
        """Load the registry from the store again on its next use."""
        self._registry = None
        self._registry_loaded = False

    @staticmethod
    def session_id(token: str) -> str:
        """The session id a bearer token names (a digest: tokens are never stored)."""
        return hashlib.sha256(token.encode("utf-8")).hexdigest()

    def authorize(
        self, principal: Principal, right: str, meta: Mapping[str, Any] | None = None
    ) -> None:
        """Apply the policy; ``meta`` (a job's) supplies the submitter for job rights.

        Raises:
            AuthorizationError: denied.
        """
        submitter = None if meta is None else Submitter.from_meta(meta)
        require_right(
            self.config.policy,
            principal,
            right,
            submitter=submitter,
            site_org=self.config.server_org,
        )

    def load_job(self, principal: Principal, job_id: str) -> dict[str, Any]:
        """The meta of a job the caller may address (reference §1.3 ``authorize_job_id``).

        The id is lower-cased and must be a version-4 UUID; the job must exist and belong to
        the caller's study. Every failure looks the same, so other studies' jobs stay hidden.

        Raises:
            JobNotFound: ``"no such job: <id>"``.
        """
        canonical = job_id.lower() if isinstance(job_id, str) else ""
        meta = self.ports.jobs.get(canonical) if _is_uuid4(canonical) else None
        if meta is None or normalize_study(meta.get("study")) != principal.study:
            raise JobNotFound(f"no such job: {job_id}")
        return meta

    # --- deploy plans --------------------------------------------------------------------------

    def store_plan(self, job_id: str, plan: DeployPlan) -> None:
        """Store a job's validated deploy plan beside its archive (at submit and clone)."""
        self.ports.blobs.write(job_blob_prefix(job_id) + DEPLOY_PLAN, [encode_plan(plan)])
        self._remember_plan(job_id, plan)

    def clone_plan(self, source: Mapping[str, Any], job_id: str) -> None:
        """Give a clone its source's deploy plan: the source's plan blob shared
        (``BlobStore.copy``), or, for a source stored before plans were kept, stored anew."""
        plan = self.deploy_plan(source)
        source_key = job_blob_prefix(str(source.get("job_id", ""))) + DEPLOY_PLAN
        try:
            self.ports.blobs.copy(source_key, job_blob_prefix(job_id) + DEPLOY_PLAN)
        except KeyError:
            self.store_plan(job_id, plan)
        else:
            self._remember_plan(job_id, plan)

    def deploy_plan(self, meta: Mapping[str, Any]) -> DeployPlan:
        """The deploy plan of a stored job: the one stored at submit.

        A job stored before plans were kept (an older server's SQLite store, say) has none:
        its plan is derived once from its meta's ``deploy_map`` with the submit-time rules,
        which it passed when it was accepted. A map that no longer passes them (never an
        accepted job's) reads as deploying nowhere.
        """
        job_id = str(meta.get("job_id", ""))
        plan = self._plans.get(job_id)
        if plan is None:
            plan = self._load_plan(job_id, meta)
            self._remember_plan(job_id, plan)
        return plan

    def forget_plan(self, job_id: str) -> None:
        """Drop a deleted job's plan from the cache (its blob goes with the job's prefix)."""
        self._plans.pop(job_id, None)

    def _load_plan(self, job_id: str, meta: Mapping[str, Any]) -> DeployPlan:
        try:
            return decode_plan(
                b"".join(self.ports.blobs.read(job_blob_prefix(job_id) + DEPLOY_PLAN))
            )
        except (KeyError, msgspec.DecodeError):
            pass  # stored before plans were kept, or its plan blob was lost
        try:
            return plan_from_meta(meta)
        except InvalidJobDefinition:
            return DeployPlan()

    def _remember_plan(self, job_id: str, plan: DeployPlan) -> None:
        if len(self._plans) >= _PLAN_CACHE_LIMIT:
            self._plans.clear()  # only a cache: re-reading a plan is one small blob read
        self._plans[job_id] = plan

    # --- sites ---------------------------------------------------------------------------------

    def connected_clients(self) -> list[str]:
        """The names of the connected client sites, sorted."""
        return sorted(s.name for s in self._sites.values() if s.connected)

    def site_orgs(self) -> dict[str, str]:
        """Connected site -> its certificate org (study registration checks)."""
        return {s.name: s.org for s in self._sites.values() if s.connected}

    def sites(self) -> list[SiteInfo]:
        """Snapshots of every known site, by name."""
        return list(self.sites_by_name().values())

    def sites_by_name(self) -> dict[str, SiteInfo]:
        """Name -> snapshot of every known site, in name order: one read of the store's
        disabled set for all of them (a status command reports every site)."""
        disabled = self.ports.sites.disabled()
        return {name: _site_info(self._sites[name], disabled) for name in sorted(self._sites)}

    def connect(self, name: str, org: str, version: str) -> None:
        """Mark a site connected (now), remembering its org and version."""
        site = self._sites.get(name)
        now = self.now()
        if site is None:
            self._sites[name] = _Site(
                name=name, org=org, connected=True, last_connect_time=now, version=version
            )
        else:
            site.org, site.version, site.connected = org, version, True
            site.last_connect_time = _later(site.last_connect_time, now)

    def disconnect(self, name: str) -> bool:
        """Mark a site disconnected; False when it was not connected."""
        site = self._sites.get(name)
        if site is None or not site.connected:
            return False
        site.connected = False
        return True

    def reconnect(self, name: str) -> None:
        """A connected site restarted: it reconnects with a new ``last_connect_time``."""
        site = self._sites.get(name)
        if site is not None and site.connected:
            site.last_connect_time = _later(site.last_connect_time, self.now())

    def restart_server(self) -> None:
        """The server restarted: a new ``start_time``; it is running again."""
        self.running = True
        self.start_time = _later(self.start_time, self.now())

    def resolve_targets(
        self, principal: Principal, target_type: str, targets: Sequence[str] | None
    ) -> tuple[bool, list[str]]:
        """Validate a command's targets (reference §6.1, server side).

        Returns:
            ``(server addressed, client names)``: ``server`` gives ``(True, [])``; ``client``
            the named (or all connected) clients; ``all`` the server and every connected
            client. Client lists are narrowed to the study's enrolled sites.

        Raises:
            InvalidTarget: unknown target type (``"unknown target type <t>"``), a named client
                that is not connected (``"invalid client(s): <names>"``), or a ``client``
                request left empty by the study filter.
            NoClientsAvailable: ``client`` while no client is connected.
        """
        if target_type == TargetType.SERVER:
            return True, []
        if target_type not in (TargetType.CLIENT, TargetType.ALL):
            raise InvalidTarget(f"unknown target type {target_type}")
        connected = self.connected_clients()
        requested: list[str] = []
        if target_type == TargetType.CLIENT:
            if not connected:
                raise NoClientsAvailable("no clients available")
            for name in targets or []:
                if name not in requested:
                    requested.append(name)
            invalid = [name for name in requested if name not in connected]
            if invalid:
                raise InvalidTarget(f"invalid client(s): {', '.join(invalid)}")
        clients = narrow_client_targets(
            self.registry(), principal.study, target_type, requested, connected
        )
        return target_type == TargetType.ALL, clients

    def resolve_site(self, principal: Principal, target: str) -> str:
        """Resolve a single-site target: ``server`` or one connected, enrolled client.

        Raises:
            InvalidTarget: ``"invalid target: <name>"``, or the study's enrolment message.
        """
        if target == SERVER_SITE:
            return SERVER_SITE
        connected = self.connected_clients()
        if target not in connected:
            raise InvalidTarget(f"invalid target: {target}")
        narrow_client_targets(
            self.registry(), principal.study, TargetType.CLIENT, [target], connected
        )
        return target

    # --- downloads -----------------------------------------------------------------------------

    def add_download(self, download: PendingDownload) -> str:
        """Remember a prepared download; returns its id (the oldest are dropped past the cap)."""
        download_id = self.ports.ids.secret()
        self.downloads[download_id] = download
        while len(self.downloads) > max(1, self.config.max_pending_downloads):
            self.downloads.popitem(last=False)
        return download_id


# The canonical spelling of a version-4 UUID (RFC 4122 variant), the only one ids are stored
# in: matched in ~0.3 us where parsing with ``uuid.UUID`` takes ~3 us on every job command.
_CANONICAL_UUID4 = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
)


def _is_uuid4(value: str) -> bool:
    if _CANONICAL_UUID4.fullmatch(value):
        return True
    try:  # other spellings uuid.UUID accepts (braces, no hyphens, a urn: prefix)
        return uuid.UUID(value).version == 4
    except ValueError:
        return False
