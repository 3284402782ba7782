"""``NVFlareBackend``: the ``Backend`` port on a real NVIDIA FLARE federation.

Every command goes to NVFlare through NVFlare's own admin API (``nvflare.fuel.flare_api``),
on the NVFlare session of the caller's user and study, so NVFlare's own authentication (the
user's admin kit) and authorization still apply. The backend adds what the port promises and
NVFlare lacks: bearer-token sessions (API keys for the gateway), replies normalised to
flare-core's contract (``commands``/``replies``), typed exceptions (``errors``), streamed
uploads and downloads (``transfers``) and job events (``watcher``). Apart from those sessions
and caches it keeps no state of its own (DECISIONS §21), so restarting it loses nothing.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from flare_adapters.nvflare.commands import HANDLERS, CallContext, submit_job
from flare_adapters.nvflare.errors import translate
from flare_adapters.nvflare.kits import KitUser, kit_identity
from flare_adapters.nvflare.pool import Pool, SessionOpener, Slot, monotonic, open_nvflare_session
from flare_adapters.nvflare.transfers import TransferArea
from flare_adapters.nvflare.watcher import JobWatcher
from flare_core import Gauges
from flare_core.commands import Command, Logout, SubmitJob
from flare_core.errors import AuthenticationError, InvalidArgumentError, SessionExpired
from flare_core.events import JobEvent
from flare_core.principal import Grant, Principal
from flare_core.replies import Ok, Problem, Reply
from flare_core.service import BAD_CREDENTIALS, require_api_key, verify_api_key
from flare_core.studies import check_session_study

__all__ = ["NVFlareBackend", "NVFlareConfig"]

_EXPIRED = "Your session is closed due to inactivity or cert expiry."


@dataclass(frozen=True, kw_only=True)
class NVFlareConfig:
    """How the backend reaches NVFlare.

    Attributes:
        users: each flare-core user and the admin kit it acts through.
        watch_interval: seconds between the status watcher's rounds (0.5 by default).
        command_timeout: the most seconds one command may take, NVFlare's part included.
        connect_timeout: the most seconds an NVFlare login may take.
        idle_timeout: seconds after which an unused flare-core session expires.
        max_sessions: the most live flare-core sessions; the oldest idle ones go first.
        max_nvflare_sessions: the most NVFlare sessions kept open (least recently used go).
        max_upload_bytes: the largest job archive accepted.
        scratch_dir: where uploads and downloads are staged (None: the system temp dir).
    """

    users: Sequence[KitUser]
    watch_interval: float = 0.5
    command_timeout: float = 120.0
    connect_timeout: float = 10.0
    idle_timeout: float = 1800.0
    max_sessions: int = 10_000
    max_nvflare_sessions: int = 64
    max_upload_bytes: int = 1024**3
    scratch_dir: str | None = None

    def __post_init__(self) -> None:
        names = [user.name for user in self.users]
        if not names:
            raise InvalidArgumentError("the nvflare backend needs at least one kit user")
        if len(set(names)) != len(names):
            raise InvalidArgumentError("kit user names must be unique")
        for value, what in (
            (self.watch_interval, "watch_interval"),
            (self.command_timeout, "command_timeout"),
            (self.connect_timeout, "connect_timeout"),
            (self.idle_timeout, "idle_timeout"),
        ):
            if not value > 0:
                raise InvalidArgumentError(f"{what} must be > 0")


@dataclass
class _Session:
    principal: Principal
    user: KitUser
    last_seen: float = field(default_factory=monotonic)


class NVFlareBackend:
    """A ``flare_ports.Backend`` forwarding every command to NVFlare (thread-safe).

    Args:
        config: the kit users and limits.
        opener: builds NVFlare sessions (tests pass a fake; the default needs the extra).
    """

    def __init__(self, config: NVFlareConfig, *, opener: SessionOpener | None = None) -> None:
        self.config = config
        self._users = {user.name: user for user in config.users}
        self._pool = Pool(
            opener or open_nvflare_session,
            connect_timeout=config.connect_timeout,
            max_slots=config.max_nvflare_sessions,
        )
        self._transfers = TransferArea(config.scratch_dir, max_upload_bytes=config.max_upload_bytes)
        self._lock = threading.Lock()
        self._sessions: dict[str, _Session] = {}
        self._listeners: list[Callable[[JobEvent], None]] = []
        self._watcher = JobWatcher(self._watch_targets, self._publish, config.watch_interval)

    # --- the Backend port ------------------------------------------------------------------

    def login(self, user: str, api_key: str | None, study: str = "default") -> Grant:
        """Log ``user`` in through the user's kit and bind a new session to ``study``.

        The NVFlare session of (user, study) is opened now (or reused), so NVFlare's own
        login decides about the study.

        Raises:
            AuthenticationError: unknown user, wrong API key, or NVFlare refused the login.
            InvalidArgumentError: a malformed study name.
            NoConnection: NVFlare could not be reached.
        """
        check_session_study(study)
        account = self._users.get(user) if isinstance(user, str) else None
        if account is None or account.api_key_hash is not None:
            require_api_key(user, api_key)  # in-process kit users need none
        if account is None or not self._key_ok(account, api_key):
            raise AuthenticationError(BAD_CREDENTIALS)
        slot = self._pool.slot(account, study)
        try:
            slot.ensure(self.config.connect_timeout)
        except Exception as exc:
            self._pool.discard(slot)
            raise translate(exc) from exc
        token = secrets.token_urlsafe(32)
        identity = kit_identity(account.kit)
        principal = Principal(
            name=account.name,
            org=identity.org,
            role=identity.role,
            study=study,
            session_id=_digest(token),
        )
        with self._lock:
            self._purge()
            self._sessions[principal.session_id] = _Session(principal, account)
        return Grant(token=token, principal=principal, idle_timeout=self.config.idle_timeout)

    def authenticate(self, token: str) -> Principal:
        """Resolve a bearer token and refresh its session's idle timer.

        Raises:
            SessionExpired: the session idled out.
            AuthenticationError: unknown or logged-out token.
        """
        with self._lock:
            key = _digest(token) if isinstance(token, str) else ""
            entry = self._sessions.get(key)
            if entry is None:
                raise AuthenticationError("user not authenticated: unknown or closed session")
            now = monotonic()
            if now - entry.last_seen > self.config.idle_timeout:
                del self._sessions[key]
                raise SessionExpired(_EXPIRED)
            entry.last_seen = now
            return entry.principal

    def gauges(self) -> Gauges:
        """The gateway's sessions that have not idled out; no job counts (counting them would
        list every study of the federation on each scrape)."""
        active_since = monotonic() - self.config.idle_timeout
        with self._lock:
            return Gauges(
                open_sessions=sum(1 for s in self._sessions.values() if s.last_seen >= active_since)
            )

    def logout(self, token: str) -> None:
        """End the session a token names (idempotent)."""
        if isinstance(token, str):
            with self._lock:
                self._sessions.pop(_digest(token), None)

    def handle(
        self, principal: Principal, command: Command, upload: Iterable[bytes] | None = None
    ) -> Reply:
        """Run one command on NVFlare for ``principal``; failures come back as ``Problem``."""
        try:
            if isinstance(command, Logout):
                with self._lock:
                    self._sessions.pop(principal.session_id, None)
                return Ok()
            ctx = self._context(principal)
            if isinstance(command, SubmitJob):
                return Ok(value=submit_job(ctx, command, upload or ()))
            return Ok(value=HANDLERS[type(command)](ctx, command))
        except Exception as exc:  # the port answers every failure as a Problem
            return Problem.from_exception(translate(exc))

    def open_download(self, principal: Principal, download_id: str) -> Iterator[bytes]:
        """Stream a prepared download's zip (single use).

        Raises:
            JobNotFound: unknown, consumed or foreign download id.
        """
        return self._transfers.open_download(principal.session_id, download_id)

    def subscribe(self, listener: Callable[[JobEvent], None]) -> Callable[[], None]:
        """Call ``listener`` on every job status change the watcher sees (from its thread)."""
        with self._lock:
            self._listeners.append(listener)
        self._watcher.start()

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def close(self) -> None:
        """Stop the watcher, close every NVFlare session and remove the scratch area."""
        self._watcher.stop()
        self._pool.close()
        self._transfers.close()

    # --- internals --------------------------------------------------------------------------

    @staticmethod
    def _key_ok(account: KitUser, api_key: str | None) -> bool:
        if account.api_key_hash is None:
            return True  # in-process: whoever can read the kit acts as its user
        return isinstance(api_key, str) and verify_api_key(api_key, account.api_key_hash)

    def _context(self, principal: Principal) -> CallContext:
        account = self._users[principal.name]
        study = principal.study
        return CallContext(
            principal=principal,
            slot=self._pool.slot(account, study),
            deadline=monotonic() + self.config.command_timeout,
            transfers=self._transfers,
            publish=lambda job_id, status: self._publish(
                JobEvent(job_id=job_id, study=study, status=status)
            ),
            server_changed=self._pool.invalidate_all,
        )

    def _publish(self, event: JobEvent) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(event)

    def _watch_targets(self) -> list[tuple[str, Slot]]:
        with self._lock:
            if not self._listeners:
                return []
            by_study = {entry.principal.study: entry.user for entry in self._sessions.values()}
        return [(study, self._pool.slot(user, study)) for study, user in by_study.items()]

    def _purge(self) -> None:
        # Under the lock: expired sessions go, then the oldest beyond the bound.
        now = monotonic()
        for key in [
            k for k, s in self._sessions.items() if now - s.last_seen > 2 * self.config.idle_timeout
        ]:
            del self._sessions[key]
        while len(self._sessions) >= self.config.max_sessions:
            oldest = min(self._sessions, key=lambda k: self._sessions[k].last_seen)
            del self._sessions[oldest]


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
